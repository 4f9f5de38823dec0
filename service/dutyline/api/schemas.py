"""The JSON shapes the HTTP API answers with, as msgspec structs: the OpenAPI document is generated from them
(`api.openapi.answers`), and handlers build them where they make the answer themselves, so that what is
documented is what is sent. Answers a service builds as plain data (users, changes, versions) are checked against
these shapes by the API tests and the fuzz test (tests/hardening/test_fuzz.py). Answers a service returns as structs
(approvals, cases, notifications, the decision log) are documented from those structs, where they are defined.

Every struct forbids unknown fields: in the document that is `additionalProperties: false`, so an answer with
a key its struct does not declare does not match the document. Fields an answer sometimes leaves out are
`UNSET` by default; fields always sent but sometimes null are `X | None` without a default. A shape holding a
choice between structs is a TypedDict (msgspec cannot inspect a struct holding an untagged union of structs,
and Litestar documents structs through that), documented as exactly as a struct.

Two request bodies are here too, documented more exactly than the handler decodes them in one pass: a new rule
pack (its `pack` is checked as a rule pack by the editor) and the options of a restore.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypedDict

import msgspec
from msgspec import UNSET, UnsetType

from dutyline.engines.explain import Reason
from dutyline.engines.queries import HeldPermission
from dutyline.errors import IssueCode
from dutyline.orgmodel.document import Organisation
from dutyline.rulemodel.document import RulePack
from dutyline.services.log_reader import OrgDecision


class _Shape(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    pass


Outcome = Literal["allow", "deny", "needs_approval"]


class Texts(_Shape):
    """A text in Chinese and English."""

    zh: str
    en: str


class ErrorDetail(_Shape):
    """Why one item of a batch could not be decided (the status a request with only that item would get)."""

    status: int
    message: str


# --- AuthZEN ------------------------------------------------------------------------------------------------


class DutylineExplanation(_Shape):
    decision_id: str
    policy_version: int
    organisation: str | None
    outcome: Outcome
    code: str
    reasons: list[Reason]


class Explanation(_Shape):
    """AuthZEN's reason fields and Dutyline's own detail; in `context` when the caller asks with ?explain=true."""

    id: str
    reason_admin: Texts
    reason_user: Texts
    dutyline: DutylineExplanation


class ItemError(_Shape):
    """The `context` of a batch item that could not be evaluated (decided false)."""

    error: ErrorDetail


class Decision(_Shape):
    """An AuthZEN access evaluation response."""

    decision: bool
    context: Explanation | UnsetType = UNSET


class _Decided(TypedDict):
    decision: bool


class EvaluationResult(_Decided, total=False):
    """A result of a batch: `context` is the explanation when asked for, or why the item could not be evaluated."""

    context: Explanation | ItemError


class EvaluationResults(TypedDict):
    """An AuthZEN access evaluations (batch) response, one result per evaluation (fewer when the semantic stops
    at the first deny or permit)."""

    evaluations: list[EvaluationResult]


class Found(_Shape):
    """A subject or resource found by a search."""

    type: str
    id: str


class FoundAction(_Shape):
    name: str


class NextPage(_Shape):
    """`next_token` is empty on the last page."""

    next_token: str


class SearchResults(_Shape):
    """An AuthZEN subject or resource search response."""

    results: list[Found]
    page: NextPage


class ActionSearchResults(_Shape):
    """An AuthZEN action search response."""

    results: list[FoundAction]
    page: NextPage


class PdpMetadata(_Shape):
    """AuthZEN PDP metadata (`.well-known/authzen-configuration`)."""

    policy_decision_point: str
    access_evaluation_endpoint: str
    access_evaluations_endpoint: str
    search_subject_endpoint: str
    search_resource_endpoint: str
    search_action_endpoint: str


# --- decisions ----------------------------------------------------------------------------------------------


class FiredRule(_Shape):
    rule: str
    kind: str
    effect: Literal["deny", "needs_approval", "notify"]
    message: Texts
    detail: dict[str, Any]


class ApproverStep(_Shape):
    """A post of the approver chain, and the people who hold it now."""

    post: str
    people: list[str]


class Obligation(_Shape):
    """A post to notify; `instead_of` the vacant post it is told for (null: the rule's own post). `notify` is null
    when the named post is vacant and nobody up its reporting line holds a post either."""

    notify: str | None
    instead_of: str | None = None


class DecidedAsOf(_Shape):
    """The versions that decided a check with `as_of`: the organisation's, and each rule pack's."""

    at: str
    version: int
    rule_versions: dict[str, int]


class UsedApproval(_Shape):
    """The approval a check was allowed through: who approved it and when, and what is left of it."""

    id: str
    approved_by: str
    approved_at: str
    uses: int
    uses_left: int
    expires_at: str


class CheckResult(_Shape):
    """A check decided, with its explanation."""

    decision: Outcome
    decision_id: str
    policy_version: int
    organisation: str
    subject: str
    code: str
    reasons: list[Reason]
    rules: list[FiredRule]
    approvers: list[ApproverStep]
    obligations: list[Obligation]
    as_of: DecidedAsOf | UnsetType = UNSET
    approval: UsedApproval | UnsetType = UNSET  # only when allowed through an approval (one of its uses taken)


class CheckError(_Shape):
    """A check of a batch that could not be decided."""

    decision: Literal["error"]
    error: ErrorDetail


class CheckResults(TypedDict):
    results: list[CheckResult | CheckError]
    policy_version: int


# --- queries ------------------------------------------------------------------------------------------------


class PersonPermissions(_Shape):
    organisation: str
    person: str
    policy_version: int
    at: float
    permissions: list[HeldPermission]


class HeldPost(_Shape):
    post: str
    kind: Literal["primary", "concurrent", "acting"]
    valid_from: str | None
    valid_to: str | None


class PersonAllowed(_Shape):
    id: str
    posts: list[HeldPost]


class NamedPost(_Shape):
    id: str
    name: Texts


class WhoMay(_Shape):
    """The people (a page of them) and the posts that may do an action on a resource."""

    organisation: str
    policy_version: int
    resource: str
    action: str
    people: list[PersonAllowed]
    posts: list[NamedPost]
    total_people: int
    next_token: str


class LineHolder(_Shape):
    person: str
    kind: Literal["primary", "concurrent", "acting"]
    valid_to: str | None


class LineStep(_Shape):
    post: str
    name: Texts
    holders: list[LineHolder]
    vacant: bool


class ReportingLine(_Shape):
    organisation: str
    post: str
    holders: list[str]
    line: list[LineStep]


# --- approvals, usage ---------------------------------------------------------------


class Unapprovable(_Shape):
    """409 from opening an approval: the request is not decided needs_approval, or nobody can approve it."""

    status: int
    error: str
    message: str
    decision: CheckResult


class UsageRecorded(_Shape):
    """A ledger entry; amounts and totals are exact decimals, sent as JSON numbers as written."""

    id: int
    organisation: str
    rule: str
    person: str
    period: str
    amount: float  # negative for a reversal
    total: float
    used_at: str
    recorded_at: str
    reverses: int | None  # the entry this one reverses


class UsageTotal(_Shape):
    organisation: str
    rule: str
    person: str
    period: str
    total: float


# --- admin: access ------------------------------------------------------------------------------------------


class RoleGrant(_Shape):
    role: str
    organisation: str


class Session(_Shape):
    """Who is logged in: roles, permissions (`resource:action`) per organisation (`*`: all), CSRF token."""

    username: str
    scope: str
    csrf_token: str | None
    expires_at: str | None
    roles: list[RoleGrant]
    permissions: dict[str, list[str]]


class LoggedOut(_Shape):
    logged_out: bool


class User(_Shape):
    username: str
    display_name: str
    active: bool
    has_password: bool
    roles: list[RoleGrant]
    people: dict[str, str]  # {organisation: person}: whom the user acts as there on approvals and cases
    created_at: str
    updated_at: str


class Users(_Shape):
    items: list[User]


class Token(_Shape):
    id: str
    name: str
    user: str
    scopes: list[str]
    # What it reaches on the decision API (["*"]: every organisation; []: none, a read token). None: issued before
    # tokens had organisations; it reaches its user's, as a console session does.
    organisations: list[str] | None
    created_at: str
    expires_at: str | None
    revoked_at: str | None


class IssuedToken(Token, kw_only=True):
    """A new token; `token` is its secret, shown this once."""

    token: str


class Tokens(_Shape):
    items: list[Token]


class Revoked(_Shape):
    revoked: str


class AuditEntry(_Shape):
    seq: int
    at: str
    actor: str
    action: str
    organisation: str | None
    target: str
    detail: dict[str, Any]
    hash: str
    prev_hash: str


class AuditTrail(_Shape):
    """A page of the audit trail, newest first; `next_before` pages on (null on the last page)."""

    items: list[AuditEntry]
    next_before: int | None


class AuditBreak(_Shape):
    seq: int
    message: str


class AuditCheck(_Shape):
    entries: int
    ok: bool
    broken: AuditBreak | None
    # The newest entry, `SEQ:HASH`, to keep elsewhere and check against later (`dutyline audit verify --head`).
    head: str | None


class Change(_Shape):
    """A change waiting for four-eyes approval or for its effective time, or one decided."""

    id: str
    organisation: str
    target: str
    method: Literal["create", "put", "patch", "delete"]
    value: Any
    reason: Literal["four_eyes", "scheduled"]
    status: Literal["pending", "scheduled", "applied", "rejected", "failed"]
    author: str
    comment: str
    created_at: str
    effective_at: str | None
    decided_by: str | None
    decided_at: str | None
    version: int | None
    message: str  # why it failed (the first problem in words), or the decider's note
    issues: list[IssueView] = []  # every problem a failed change had (file, line, path, message)


class Changes(_Shape):
    items: list[Change]


# --- admin: organisations -----------------------------------------------------------------------------------


class OrgSummary(_Shape):
    """`revision`: the document's own counter (one a save); `version`: the policy version that made that revision
    (the id of its history entry); the global policy version is `policy_version` of the list."""

    id: str
    name: Texts
    version: int
    revision: int


class Orgs(_Shape):
    items: list[OrgSummary]
    policy_version: int  # the global policy version now (what /v1/check answers carry)


class Applied(_Shape):
    """A change applied: the global policy version it made (`policy_version`; `version` is the same number, the id
    of the new history entry), the revision of the document it changed (the organisation's own counter for the
    document and its entities, the rule pack's for a pack: one more than before), and the object's new value and
    ETag (null when deleted). Unchanged (`changed` false): the versions it is still at."""

    organisation: str
    target: str
    version: int
    changed: bool
    etag: str | None
    value: Any
    policy_version: int
    revision: int


class OrgDocument(_Shape):
    """`revision`: the document's own counter; `version`: the policy version that made that revision (its history
    entry); `policy_version`: the global policy version now."""

    organisation: str
    version: int
    etag: str
    document: Organisation
    revision: int
    policy_version: int


class OrgSettings(_Shape):
    """An organisation's four-eyes switches as in force: its own, else the defaults (DUTYLINE_*_FOUR_EYES)."""

    organisation: str
    rules_four_eyes: bool  # rule pack changes wait for a second person
    org_four_eyes: bool  # org chart changes (the document, its entities, creating, deleting) wait too


class Entities(_Shape):
    """Every entity of one kind (the collection's entries of the organisation document), with their ETags."""

    organisation: str
    version: int
    items: list[dict[str, Any]]
    etags: dict[str, str]
    revision: int  # the organisation document's
    policy_version: int


class StoredPack(_Shape):
    """`revision`: the pack's own counter; `version`: the policy version that made that revision."""

    name: str
    version: int
    etag: str
    pack: RulePack
    revision: int


class Packs(_Shape):
    organisation: str
    items: list[StoredPack]
    policy_version: int


class NewRulePack(msgspec.Struct):
    """A rule pack to create, and its name (unique in the organisation)."""

    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=64)]
    pack: RulePack
    comment: str = ""


class ChangeOptions(msgspec.Struct):
    """What a write says besides its value, in a JSON object body (or the X-Change-Comment and X-Effective-At
    headers and `?preview=true`)."""

    comment: Annotated[str, msgspec.Meta(max_length=4000)] = ""
    effective_at: str | None = None
    preview: bool = False


class VersionInfo(_Shape):
    """One entry of the history: `version` the global policy version it made (its id), `revision` the revision of
    its document (the organisation's, or rule pack `name`'s own counter) it made."""

    version: int
    kind: Literal["org", "rules"]
    name: str | None
    deleted: bool
    author: str
    comment: str
    created_at: str
    revision: int


class Versions(_Shape):
    """Versions newest first; `next_before` pages on (null on the last page)."""

    organisation: str
    items: list[VersionInfo]
    next_before: int | None


class Version(TypedDict):
    """A version (as in `VersionInfo`) and its document: the organisation's or a rule pack's (null for a deletion)."""

    version: int
    kind: Literal["org", "rules"]
    name: str | None
    deleted: bool
    author: str
    comment: str
    created_at: str
    revision: int
    document: Organisation | RulePack | None


class ChangedIds(_Shape):
    added: list[str]
    removed: list[str]
    changed: list[str]


class VersionDiff(VersionInfo, kw_only=True):
    """What a version changed: a unified diff of the YAML exports, and the ids added, removed and changed per
    kind of entity (`fields`: the other top-level keys that changed)."""

    previous_version: int | None
    diff: str
    summary: dict[str, ChangedIds | list[str]]


class DocumentAsOf(VersionInfo, kw_only=True):
    at: str
    document: Organisation


class PermissionChange(_Shape):
    person: str
    gained: list[HeldPermission]
    lost: list[HeldPermission]


class TimedPermissionChange(_Shape):
    """A permission someone gains or loses under the change, from `since` until `until` (None: from then on)."""

    person: str
    change: Literal["gained", "lost"]
    permission: HeldPermission
    since: str
    until: str | None


class LimitChange(_Shape):
    """A limit that binds someone differently under the change: the most they may do without approval, before
    and after (None: no limit), from `since` until `until`."""

    person: str
    rule: str
    before: float | None
    after: float | None
    since: str
    until: str | None


class RuleFieldChange(_Shape):
    """One field of a rule before → after (`field` empty: the rule added or removed), with the line people read."""

    rule: str
    field: str
    before: Any
    after: Any
    zh: str
    en: str


class ChainChange(_Shape):
    """A post whose line of superiors changes, nearest first (empty: the post is not there)."""

    post: str
    before: list[str]
    after: list[str]


class VerdictView(_Shape):
    decision: Outcome
    code: str
    rules: list[FiredRule]
    approvers: list[ApproverStep]


class CheckCompared(_Shape):
    current: VerdictView
    proposed: VerdictView
    changed: bool


class IssueView(_Shape):
    file: str
    line: int
    path: str
    message: str
    severity: Literal["error", "warning"]
    code: IssueCode


class Preview(_Shape):
    """What a proposed change would do (nothing stored). An invalid proposal has its `issues` and nothing else;
    a valid one the permissions people gain and lose, changed approver chains and the checks decided both ways."""

    organisation: str
    current_version: int
    target: str
    summary: dict[str, ChangedIds | list[str]]
    valid: bool
    issues: list[IssueView]
    separation_of_duties: list[IssueView]
    at: float | UnsetType = UNSET
    note: str | UnsetType = UNSET
    # the moments previewed at: `at` (or the effective date), then each window start and end after it
    moments: list[str] | UnsetType = UNSET
    timeline: list[TimedPermissionChange] | UnsetType = UNSET  # gains and losses over those moments
    limits: list[LimitChange] | UnsetType = UNSET
    rule_changes: list[RuleFieldChange] | UnsetType = UNSET  # a rule pack change, field by field
    permissions: list[PermissionChange] | UnsetType = UNSET  # at `at`
    approver_chains: list[ChainChange] | UnsetType = UNSET
    checks: list[CheckCompared] | UnsetType = UNSET


class OrgDecisions(_Shape):
    """A page of the organisation's decision log, newest first; `next_token` is empty on the last page."""

    items: list[OrgDecision]
    next_token: str
