"""What Dutyline answers, as msgspec structs named after the schemas of its OpenAPI document (`/schema/openapi.json`).

Each struct has the fields of the schema of the same name; the client's tests compare them with the live document.
Unknown fields are ignored when decoding, so that a newer server adding a field does not break an older client.
Amounts and totals of the usage ledger are `Decimal`: the server sends them digit for digit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

import msgspec

Outcome = Literal["allow", "deny", "needs_approval"]


class _Model(msgspec.Struct, kw_only=True):
    """Answers are shared (the decision cache hands the same one to every caller that asks): read them, do not
    change them."""


class Texts(_Model):
    """A text in Chinese and English."""

    zh: str
    en: str


class DutyInfo(_Model):
    owner: str
    number: str
    text: str
    en: str


class Reason(_Model):
    """Why: the duty (with the post it was held through, acting or not) that granted or denied, or the rule."""

    code: str
    zh: str
    en: str
    post: str | None = None
    via_post: str | None = None
    acting: bool = False
    valid_from: str | None = None
    valid_to: str | None = None
    stands_in_for: str | None = None
    duty: DutyInfo | None = None
    rule: str | None = None


class FiredRule(_Model):
    rule: str
    kind: str
    effect: Literal["deny", "needs_approval", "notify"]
    message: Texts
    detail: dict[str, Any]


class ApproverStep(_Model):
    """A post of the approver chain, nearest first, and the people who hold it now."""

    post: str
    people: list[str]


class Obligation(_Model):
    """A post to notify; `instead_of` the vacant post it is told for."""

    notify: str | None
    instead_of: str | None = None


class DecidedAsOf(_Model):
    at: str
    version: int
    rule_versions: dict[str, int]


class UsedApproval(_Model):
    """The approval a check was allowed through, and what is left of it."""

    id: str
    approved_by: str
    approved_at: str
    uses: int
    uses_left: int
    expires_at: str


class CheckResult(_Model):
    """A `/v1/check` answer. `code` is `dutyline_unreachable` or `dutyline_unavailable` when the client answered
    itself because Dutyline could not (`fail_open` decides the outcome; `decision_id` is empty then)."""

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
    as_of: DecidedAsOf | None = None
    approval: UsedApproval | None = None

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"

    @property
    def needs_approval(self) -> bool:
        return self.decision == "needs_approval"

    @property
    def answered_locally(self) -> bool:
        """True when Dutyline gave no answer and this is the client's fail-closed (or fail-open) one."""
        return self.decision_id == ""


class ErrorDetail(_Model):
    status: int
    message: str


class CheckError(_Model):
    """A check of a batch that could not be decided (the status a request with only it would get)."""

    decision: Literal["error"]
    error: ErrorDetail


class CheckResults(_Model):
    """`/v1/checks`: one result per check, in order."""

    results: list[CheckResult | CheckError]
    policy_version: int


# --- AuthZEN ------------------------------------------------------------------------------------------------


class DutylineExplanation(_Model):
    decision_id: str
    policy_version: int
    organisation: str | None
    outcome: Outcome
    code: str
    reasons: list[Reason]


class Explanation(_Model):
    """AuthZEN's reason fields and Dutyline's own detail (`explain=True`)."""

    id: str
    reason_admin: Texts
    reason_user: Texts
    dutyline: DutylineExplanation


class ItemError(_Model):
    error: ErrorDetail


class Display(_Model):
    title: str
    description: str


class AccessRequestHint(_Model):
    """`context.access_request` of a requestable denial: submit it with `Client.submit_access_request`."""

    endpoint: str
    template: str
    expires_at: str
    binding_token: str
    request_schema_url: str
    display: Display


class ApprovalRef(_Model):
    """The approval a task resolved to: re-evaluate with it (`Client.reevaluate`), unchanged."""

    id: str
    approved_until: str
    approved_at: str | None = None


class NotificationProperties(_Model):
    to: str
    body: str
    topic: str | None = None


class NotificationObligation(_Model):
    """An obligation of the AuthZEN obligations profile (Dutyline returns `notification`s of its rules)."""

    id: str
    type: str
    properties: NotificationProperties


class DecisionContext(_Model):
    """The `context` of an AuthZEN decision: the explanation's fields (`id`, `reason_admin`, `reason_user`,
    `dutyline`) when asked with `explain=True`; what the profiles add (a requestable denial's `evaluation_id`,
    `evaluated_at`, `reason`, `access_request`; a re-evaluation's `approval`, `reason`, `next_action`,
    `retry_after`; `obligations`); or `error` for a batch item that could not be evaluated. One struct for all
    (schemas `Explanation`, `ProfileContext` and `ItemError`), since the answer does not say which it is. The
    client's own fail-closed answer gives `reason_admin` and `reason_user` only."""

    id: str | None = None
    reason_admin: Texts | None = None
    reason_user: Texts | None = None
    dutyline: DutylineExplanation | None = None
    error: ErrorDetail | None = None
    evaluation_id: str | None = None
    evaluated_at: str | None = None
    reason: str | None = None
    access_request: AccessRequestHint | None = None
    approval: ApprovalRef | None = None
    next_action: str | None = None
    retry_after: int | None = None
    obligations: list[NotificationObligation] | None = None


class Decision(_Model):
    """An AuthZEN decision (a `needs_approval` is `false` too, a requestable denial: `context.access_request`)."""

    decision: bool
    context: DecisionContext | None = None


class EvaluationResults(_Model):
    evaluations: list[Decision]


class Found(_Model):
    type: str
    id: str


class FoundAction(_Model):
    name: str


class NextPage(_Model):
    """`next_token` is empty on the last page."""

    next_token: str


class SearchResults(_Model):
    results: list[Found]
    page: NextPage


class ActionSearchResults(_Model):
    results: list[FoundAction]
    page: NextPage


class PdpMetadata(_Model):
    policy_decision_point: str
    access_evaluation_endpoint: str
    access_evaluations_endpoint: str
    search_subject_endpoint: str
    search_resource_endpoint: str
    search_action_endpoint: str
    access_request_endpoint: str | None = None
    jwks_uri: str | None = None
    capabilities: list[str] = []
    supported_obligations: list[str] = []


# --- the access request profile -----------------------------------------------------------------------------


class TaskResult(_Model):
    mode: str  # "reevaluate"; any other is not an approval
    approval: ApprovalRef


class TaskLinks(_Model):
    cancel: str


class Task(_Model):
    id: str
    status: str  # pending, approved, denied, expired, cancelled (any other: not approved)
    status_endpoint: str
    expires_at: str | None = None
    links: TaskLinks | None = None
    display: Display | None = None


class TaskResponse(_Model):
    """An access request's task, with its `result` once approved."""

    task: Task
    result: TaskResult | None = None


class ProblemDetails(_Model):
    """An error of the access request endpoints (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str


# --- queries ------------------------------------------------------------------------------------------------


class HeldPermission(_Model):
    resource: str
    action: str
    posts: list[str]
    duties: list[str]
    conditional: bool  # the answer depends on the request: only a check with its attributes settles it


class PersonPermissions(_Model):
    organisation: str
    person: str
    policy_version: int
    at: float
    permissions: list[HeldPermission]


class HeldPost(_Model):
    post: str
    kind: Literal["primary", "concurrent", "acting"]
    valid_from: str | None
    valid_to: str | None


class PersonAllowed(_Model):
    id: str
    posts: list[HeldPost]


class NamedPost(_Model):
    id: str
    name: Texts


class WhoMay(_Model):
    organisation: str
    policy_version: int
    resource: str
    action: str
    people: list[PersonAllowed]
    posts: list[NamedPost]
    total_people: int
    next_token: str


class LineHolder(_Model):
    person: str
    kind: Literal["primary", "concurrent", "acting"]
    valid_to: str | None


class LineStep(_Model):
    post: str
    name: Texts
    holders: list[LineHolder]
    vacant: bool


class ReportingLine(_Model):
    organisation: str
    post: str
    holders: list[str]
    line: list[LineStep]


class TruncatedPart(_Model):
    part: str
    bytes: int
    kept_bytes: int
    sha256: str


class LoggedRequest(_Model):
    subject_properties: dict[str, Any] | None
    resource_properties: dict[str, Any] | None
    context: dict[str, Any] | None
    at: float | None
    truncated: list[TruncatedPart] = []


class LoggedApproval(_Model):
    id: str
    approved_by: str | None
    approved_at: str | None
    uses: int
    uses_left: int
    expires_at: str | None


class LoggedDecision(_Model):
    decision_id: str
    decided_at: str
    organisation: str | None
    subject_type: str
    subject: str
    resource_type: str
    resource_id: str | None
    action: str
    decision: str
    code: str
    reasons: list[Reason]
    request: LoggedRequest
    policy_version: int
    latency_us: int
    request_id: str | None
    approval_id: str | None
    rules: list[str]
    approval: LoggedApproval | None
    simulated: bool


class DecisionLog(_Model):
    """A page of the decision log, newest first; `next_token` is empty on the last page."""

    items: list[LoggedDecision]
    next_token: str


# --- approvals, cases, notifications, usage -----------------------------------------------------------------


class ResourceRef(_Model):
    type: str
    id: str | None


class WorkflowEvent(_Model):
    seq: int
    kind: str
    at: str
    from_post: str | None
    to_post: str | None
    actor: str
    comment: str


class Approval(_Model):
    id: str
    organisation: str
    status: Literal["pending", "approved", "rejected"]
    requester: str
    requester_posts: list[str]
    resource: ResourceRef
    action: str
    request: dict[str, Any]
    rules: list[str]
    chain: list[ApproverStep]
    level: int
    post: str
    comment: str
    decision_id: str
    created_at: str
    due_at: str | None
    decided_at: str | None
    decided_by: str | None
    decision_comment: str
    uses: int
    uses_left: int
    expires_at: str | None
    digest: str | None
    approved_amounts: dict[str, float | None]


class ApprovalRecord(Approval, kw_only=True):
    """An approval with its history."""

    events: list[WorkflowEvent]


class Approvals(_Model):
    items: list[Approval]


class Unapprovable(_Model):
    """The 409 of opening an approval for a request that does not need one (or that nobody can approve)."""

    status: int
    error: str
    message: str
    decision: CheckResult


class Case(_Model):
    id: str
    organisation: str
    type: str
    title: str
    subject: str | None
    data: dict[str, Any]
    post: str
    step: int
    status: Literal["open", "escalated", "resolved"]
    created_at: str
    due_at: str | None
    resolved_at: str | None
    resolved_by: str | None
    resolution: str


class CaseRecord(Case, kw_only=True):
    events: list[WorkflowEvent]


class Cases(_Model):
    items: list[Case]


class OutboxNotification(_Model):
    id: int
    organisation: str
    post: str
    people: list[str]
    kind: str
    subject_id: str
    message: Texts
    created_at: str
    delivered_at: str | None
    attempts: int


class Notifications(_Model):
    items: list[OutboxNotification]


class UsageRecorded(_Model):
    """A ledger entry (a reversal's amount is negative) and the period's total after it."""

    id: int
    organisation: str
    rule: str
    person: str
    period: str
    amount: Decimal
    total: Decimal
    used_at: str
    recorded_at: str
    reverses: int | None


class UsageTotal(_Model):
    organisation: str
    rule: str
    person: str
    period: str
    total: Decimal


class ChangedDocument(_Model):
    """The document a policy version made: the organisation's (`kind` org) or rule pack `name`'s."""

    organisation: str
    kind: Literal["org", "rules"]
    revision: int
    deleted: bool
    name: str | None = None
    fields: list[str] = []


class ChangedEntity(_Model):
    """An entity a policy version added, removed or changed (`kind`: people, posts, rules …)."""

    organisation: str
    kind: str
    id: str
    change: Literal["added", "removed", "changed"]


class PolicyChange(_Model):
    """A `change` event of the change stream: one new policy version (`author` and `comment` only for a caller that
    may read the organisation's history)."""

    policy_version: int
    at: str
    organisations: list[str]
    documents: list[ChangedDocument]
    entities: list[ChangedEntity]
    entities_truncated: bool = False
    author: str | None = None
    comment: str | None = None


class CaughtUp(_Model):
    """The `ready` event of the change stream: every change up to `policy_version` has been given; live from here."""

    policy_version: int


class IssueBody(_Model):
    """One place in a request that is wrong: the field (`path`) and why; `code` is for programs to branch on."""

    path: str
    message: str
    file: str | None = None
    line: int | None = None
    severity: Literal["error", "warning"] | None = None
    code: str | None = None
    # the values a message catalogue words `code` with (field, expected, got, suggestion …); empty when none
    params: dict[str, str] = {}


class ErrorBody(_Model):
    """Every error answer of Dutyline."""

    status: int
    error: str
    message: str
    issues: list[IssueBody] = []
