"""The JSON shapes the HTTP API answers with, as msgspec structs: the OpenAPI document is generated from them
(`api.openapi.answers`), and handlers build them where they make the answer themselves, so that what is
documented is what is sent. Most answers are the structs services return, documented from those structs where
they are defined (`services/`); the shapes here are the envelopes and documents handlers build themselves.

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
from dutyline.orgmodel.document import Organisation
from dutyline.rulemodel.document import RulePack
from dutyline.services.access import Token, User
from dutyline.services.access_requests import AccessRequestHint, ApprovalRef
from dutyline.services.editing import Change, StoredPack
from dutyline.services.log_reader import OrgDecision
from dutyline.services.shapes import Shape, Texts
from dutyline.services.verdicts import ApproverStep, FiredRule
from dutyline.services.versions import VersionInfo

_Shape = Shape  # the answers' base, shared with the services that build them

Outcome = Literal["allow", "deny", "needs_approval"]


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


class NotificationProperties(_Shape):
    """The obligations profile's `notification`: tell `to` (a post of the organisation) `body`."""

    to: str
    body: str
    topic: str | UnsetType = UNSET


class NotificationObligation(_Shape):
    """An obligation of the AuthZEN obligations profile: a rule that notifies (Dutyline also writes it to its
    outbox)."""

    id: str
    type: Literal["notification"]
    properties: NotificationProperties


class ProfileContext(_Shape):
    """The `context` of a decision the AuthZEN profiles say something about: a requestable denial (`evaluation_id`,
    `evaluated_at`, `reason`, `access_request`), a re-evaluation with an approval (`approval` when allowed through
    it; `reason`, `next_action` and perhaps a fresh `access_request` when not), obligations; with the explanation's
    fields too when asked with ?explain=true."""

    id: str | UnsetType = UNSET
    reason_admin: Texts | UnsetType = UNSET
    reason_user: Texts | UnsetType = UNSET
    dutyline: DutylineExplanation | UnsetType = UNSET
    evaluation_id: str | UnsetType = UNSET
    evaluated_at: str | UnsetType = UNSET
    reason: str | UnsetType = UNSET
    access_request: AccessRequestHint | UnsetType = UNSET
    approval: ApprovalRef | UnsetType = UNSET
    next_action: Literal["request", "retry", "none"] | UnsetType = UNSET
    retry_after: int | UnsetType = UNSET
    obligations: list[NotificationObligation] | UnsetType = UNSET


class _Decided(TypedDict):
    decision: bool


class Decision(_Decided, total=False):
    """An AuthZEN access evaluation response (`context`: the explanation asked for, or what the profiles add)."""

    context: Explanation | ProfileContext


class EvaluationResult(_Decided, total=False):
    """A result of a batch: `context` is the explanation when asked for, what the profiles add, or why the item
    could not be evaluated."""

    context: Explanation | ProfileContext | ItemError


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
    # The access request profile (its endpoint, the binding tokens' key set: empty, they are HMAC-signed and only
    # Dutyline verifies them) and the obligations profile (what obligations it may return).
    access_request_endpoint: str
    jwks_uri: str
    capabilities: list[str]
    supported_obligations: list[str]


# --- decisions ----------------------------------------------------------------------------------------------


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


class Unapprovable(_Shape):
    """409 from opening an approval: the request is not decided needs_approval, or nobody can approve it."""

    status: int
    error: str
    message: str
    decision: CheckResult


# --- admin: access (users, tokens, sessions and the audit trail are the services' own structs) ---------------


class LoggedOut(_Shape):
    logged_out: bool


class Users(_Shape):
    items: list[User]


class Tokens(_Shape):
    items: list[Token]


class Revoked(_Shape):
    revoked: str


class Changes(_Shape):
    items: list[Change]


# --- admin: organisations -----------------------------------------------------------------------------------


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


class Versions(_Shape):
    """Versions newest first; `next_before` pages on (null on the last page)."""

    organisation: str
    items: list[VersionInfo]
    next_before: int | None


# The two answers below are the services' `Version` and `DocumentAsOf` (`services.versions`), which carry the
# stored document as plain data; documented here with the document's own shape, which the service's struct
# cannot declare (an untagged union of structs).
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


class DocumentAsOf(VersionInfo, kw_only=True):
    at: str
    document: Organisation


class OrgDecisions(_Shape):
    """A page of the organisation's decision log, newest first; `next_token` is empty on the last page."""

    items: list[OrgDecision]
    next_token: str
