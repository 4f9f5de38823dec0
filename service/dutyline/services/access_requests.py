"""The AuthZEN Access Request and Approval Profile (draft 1) on Dutyline's approvals (docs/authzen-profiles.md).

A `needs_approval` answer over AuthZEN is a *requestable denial*: `decision: false` with `context.access_request`,
whose `binding_token` is a compact JWS (HS256, keyed from DUTYLINE_SECRET_KEY or a stored secret) carrying the
denied request inline (subject, resource, action, the authorization-relevant context members: those the rules
applying to the request read), the organisation, the policy version, the evaluation id and the expiry. Making one
is pure computation: the decision path does no I/O for it (`Requestable.context`).

Submitting it (`AccessRequests.submit`) verifies the token (signature, audience, expiry, that it opened no other
task) and that the submission is the request it was issued for, member by member, then opens a Dutyline approval
for it (`ApprovalService.open_for`: decided again, bound to the request) and records the task. The task's status is
the approval's (pending → pending, approved → approved with a re-evaluation result naming the approval, rejected →
denied, approved but past its validity → expired, cancelled through the task → cancelled). Re-evaluation presents
`context.approval` (its `id` is the approval's id), which the decision path resolves like `approval_id`.

A callback given at submission is delivered by the scheduler thread once the approval is decided (`Callbacks`):
claimed with a lease by a conditional update (one replica sends it), signed with DUTYLINE_CALLBACK_SECRET, retried
with exponential backoff, every attempt recorded.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import msgspec
from msgspec import UNSET, UnsetType
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dutyline.errors import DutylineError, Invalid, Issue
from dutyline.services import egress
from dutyline.services.approvals import ApprovalService, NotApprovable
from dutyline.services.decisions import Answer, Question
from dutyline.services.notifications import utcnow
from dutyline.services.policies import PolicyService
from dutyline.services.reach import CURRENT as REACH
from dutyline.services.shapes import Shape
from dutyline.store import access_requests as store
from dutyline.store import approvals as approval_store
from dutyline.store import events
from dutyline.store.tables import AccessRequestRow, ApprovalRow

log = logging.getLogger("dutyline.access_requests")

CAPABILITY = "urn:openid:authzen:capability:access-request"
ISSUER = "urn:dutyline:pdp"  # the binding token's `iss`
AUDIENCE = "urn:dutyline:access-requests"  # its `aud`: the access request service of this deployment
KEY_ID = "dutyline-binding-1"
TEMPLATE = "dutyline_approval"
# Context members that are the profile's machinery (never authorization input), and volatile ones.
MACHINERY = frozenset({"access_request", "evaluation_id", "evaluated_at", "reason", "approval", "approval_id", "time"})
EVENTS = ("approved", "denied", "expired", "cancelled", "failed", "partial")
MAX_CALLBACK_URL = 2048
MAX_CALLBACK_STATE = 4096
CALLBACK_ATTEMPTS = 8
CALLBACK_BATCH = 10  # callbacks sent in one pass of the scheduler
_PROBLEM = "urn:openid:authzen:access-request:error:"

TaskStatus = Literal["pending", "approved", "denied", "expired", "cancelled"]


class Problem(DutylineError):
    """An error of the access request or task status endpoint, answered as `application/problem+json` with one of
    the profile's problem types (`kind`: not_requestable, expired_denial, invalid_denial_binding, duplicate_request,
    unknown_task, task_expired, invalid_task_state)."""

    STATUS: Mapping[str, tuple[int, str]] = {
        "not_requestable": (400, "Access is not requestable"),
        "expired_denial": (410, "The requestable denial has expired"),
        "invalid_denial_binding": (400, "The access request cannot be bound to the denied decision"),
        "duplicate_request": (409, "The Idempotency-Key was used for another request"),
        "unknown_task": (404, "Unknown task"),
        "task_expired": (410, "The task has expired"),
        "invalid_task_state": (409, "The task cannot do that in its current state"),
    }

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.status, self.title = self.STATUS[kind]

    @property
    def type(self) -> str:
        return _PROBLEM + self.kind


# --- shapes -------------------------------------------------------------------------------------------------


class Display(Shape):
    title: str
    description: str


class AccessRequestHint(Shape):
    """`context.access_request` of a requestable denial."""

    endpoint: str
    template: str
    expires_at: str
    binding_token: str
    request_schema_url: str
    display: Display


class BindingClaims(msgspec.Struct, frozen=True, kw_only=True):
    """What a binding token protects: the JWS payload `sign` writes and `verify` reads back. Subject, resource,
    action and context are the AuthZEN request's own objects, free JSON by the specification."""

    iss: str
    aud: str | list[str]
    iat: int
    exp: int
    jti: str
    denial_expires_at: str
    evaluation_id: str | None
    binding_context_members: list[str]
    subject: dict[str, Any]
    resource: dict[str, Any]
    action: dict[str, Any]
    context: dict[str, Any]
    organisation: str
    policy_version: int
    rules: list[str]


class RequestableDenial(Shape):
    """The context of a requestable denial (a needs_approval over AuthZEN)."""

    evaluation_id: str | None
    evaluated_at: str
    reason: str
    access_request: AccessRequestHint


class ApprovalRef(Shape):
    """The approval a completed task resolved to; presented unchanged at `context.approval` on re-evaluation."""

    id: str
    approved_until: str
    approved_at: str | UnsetType = UNSET


class TaskResult(Shape):
    mode: Literal["reevaluate"]
    approval: ApprovalRef


class TaskLinks(Shape):
    cancel: str


class Task(Shape):
    id: str
    status: TaskStatus
    status_endpoint: str
    expires_at: str | UnsetType = UNSET
    links: TaskLinks | UnsetType = UNSET
    display: Display | UnsetType = UNSET


class TaskResponse(Shape):
    """A task handle, with its result once approved (`result.mode` is always `reevaluate`)."""

    task: Task
    result: TaskResult | UnsetType = UNSET


class Callback(msgspec.Struct, forbid_unknown_fields=False):
    endpoint: str  # checked by `validate_callback`
    state: str | None = None
    events: list[str] | None = None


class Denial(msgspec.Struct, forbid_unknown_fields=False):
    expires_at: str
    binding_token: str | None = None
    evaluation_id: str | None = None
    evaluated_at: str | None = None
    reason: str | None = None
    template: str | None = None


class Submission(msgspec.Struct, forbid_unknown_fields=False):
    """An access request as the profile submits it (unknown members are ignored: the profile's extension points)."""

    subject: dict[str, Any]
    resource: dict[str, Any] | None = None
    action: dict[str, Any] | None = None
    items: list[Any] | None = None
    context: dict[str, Any] | None = None
    denial: Denial | None = None
    requested_access: dict[str, Any] | None = None
    callback: Callback | None = None
    client: dict[str, Any] | None = None


class CancelBody(msgspec.Struct, forbid_unknown_fields=False):
    reason: str | None = None
    comment: str | None = None


# --- binding tokens -----------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_HEADER = _b64(json.dumps({"alg": "HS256", "kid": KEY_ID, "typ": "JWT"}, separators=(",", ":")).encode())


def sign(key: bytes, claims: BindingClaims) -> str:
    """A compact JWS (HS256) of `claims`."""
    payload = _b64(
        json.dumps(msgspec.to_builtins(claims), separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()
    )
    signature = hmac.new(key, f"{_HEADER}.{payload}".encode(), hashlib.sha256).digest()
    return f"{_HEADER}.{payload}.{_b64(signature)}"


def verify(key: bytes, token: str) -> BindingClaims:
    """The claims of a token `sign` made with `key`; `Problem(invalid_denial_binding)` for anything else."""
    parts = token.split(".")
    if len(parts) != 3 or len(token) > 65536:
        raise Problem("invalid_denial_binding", "denial.binding_token is not a compact JWS issued by this PDP")
    header, payload, signature = parts
    expected = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    try:
        given = _unb64(signature)
        claims = json.loads(_unb64(payload)) if hmac.compare_digest(expected, given) else None
        algorithm = json.loads(_unb64(header)).get("alg")
    except (ValueError, AttributeError):
        claims, algorithm = None, None
    if not isinstance(claims, dict) or algorithm != "HS256":
        raise Problem("invalid_denial_binding", "denial.binding_token: the signature does not verify (altered?)")
    aud = claims.get("aud")
    if aud != AUDIENCE and not (isinstance(aud, list) and AUDIENCE in aud):
        raise Problem("invalid_denial_binding", f"denial.binding_token: its audience is not {AUDIENCE}")
    try:
        return msgspec.convert(claims, BindingClaims)
    except msgspec.ValidationError as error:  # signed by this key, yet not a binding this PDP writes
        raise Problem("invalid_denial_binding", f"denial.binding_token: {error}") from None


def rfc3339(moment: float | dt.datetime) -> str:
    when = moment if isinstance(moment, dt.datetime) else dt.datetime.fromtimestamp(moment, dt.UTC)
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _without_actor(subject: Mapping[str, Any]) -> dict[str, Any]:
    """A subject as binding compares it: `properties.act` left out (the PEP may move the actor to client.actor)."""
    out = dict(subject)
    properties = out.get("properties")
    if isinstance(properties, dict) and "act" in properties:
        out["properties"] = {k: v for k, v in properties.items() if k != "act"}
    return out


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _same(a: Any, b: Any) -> bool:
    """The profile's structural comparison (numbers compared as numbers: 5 and 5.0 are equal in JSON)."""
    return canonical(_numbers(a)) == canonical(_numbers(b))


def _numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Requestable:
    """Makes the context of requestable denials: pure, no I/O (it runs on the decision path of a needs_approval)."""

    key: bytes
    window: float  # seconds a requestable denial may be submitted

    def context(
        self,
        answer: Answer,
        policies: PolicyService,
        base: str,
        subject: Mapping[str, Any],
        resource: Mapping[str, Any],
        action: Mapping[str, Any],
        context: Mapping[str, Any] | None,
    ) -> RequestableDenial:
        """`evaluation_id`, `evaluated_at`, `reason` and `access_request` of a needs_approval answer."""
        org = answer.organisation
        assert org is not None
        now = time.time()
        expires = rfc3339(now + self.window)
        members = sorted(relevant_members(policies, org.id, answer.question.resource_type, answer.question.action))
        given = context or {}
        claims = BindingClaims(
            iss=ISSUER,
            aud=AUDIENCE,
            iat=int(now),
            exp=int(now + self.window),
            jti=uuid.uuid4().hex,
            denial_expires_at=expires,
            evaluation_id=answer.decision_id,
            binding_context_members=members,
            subject=_without_actor(subject),
            resource=dict(resource),
            action=dict(action),
            context={m: given[m] for m in members if m in given},
            organisation=org.id,
            policy_version=answer.policy_version,
            rules=sorted({h.rule for h in answer.verdict.hits if h.effect == "needs_approval"}),
        )
        posts = [s.post for s in answer.verdict.approvers]
        rules = ", ".join(claims.rules)
        return RequestableDenial(
            evaluation_id=answer.decision_id,
            evaluated_at=rfc3339(now),
            reason="approval_required",
            access_request=AccessRequestHint(
                endpoint=f"{base}/access/v1/requests",
                template=TEMPLATE,
                expires_at=expires,
                binding_token=sign(self.key, claims),
                request_schema_url=f"{base}/access/v1/request-schema",
                display=Display(
                    title="Request approval",
                    description=f"Approval by {posts[0] if posts else 'an approver'} is required (rule {rules}).",
                ),
            ),
        )


def relevant_members(policies: PolicyService, org_id: str, resource_type: str, action: str) -> set[str]:
    """The context members the rules applying to (resource type, action) read: the authorization-relevant context."""
    rules = policies.current.rules.get(org_id)
    members: set[str] = set()
    for compiled in rules.for_request(resource_type, action) if rules is not None else ():
        for item in compiled.inputs:
            head, _, rest = item.path.partition(".")
            if head == "context" and rest:
                members.add(rest.split(".", 1)[0])
    return members - MACHINERY


# The JSON Schema `request_schema_url` names: what a PEP may add to a submission (nothing is required).
REQUEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Dutyline access request augmentations",
    "type": "object",
    "properties": {
        "context": {
            "type": "object",
            "properties": {
                "business_justification": {
                    "type": "string",
                    "maxLength": 4000,
                    "description": "Why the access is needed; the approval's comment.",
                }
            },
        },
        "requested_access": {"type": "object"},
    },
}


# --- the access request service -----------------------------------------------------------------------------


def validate_callback(callback: Callback, allowed: tuple[str, ...], secret: str) -> None:
    """A callback endpoint Dutyline may call: http(s), at most 2,048 characters, no credentials, a host name or an
    address that is not loopback, private, link-local, shared or otherwise internal (in any spelling the resolver
    accepts) unless allowed (DUTYLINE_CALLBACK_ALLOW), and only when callbacks can be signed. What a name resolves
    to is checked when the callback is sent (`egress`)."""
    url = callback.endpoint
    if len(url) > MAX_CALLBACK_URL:
        raise _bad("callback.endpoint", f"a URL of at most {MAX_CALLBACK_URL} characters")
    parts = urlsplit(url)
    host = egress.normal_host(parts.hostname or "")
    try:
        parts.port  # noqa: B018 (a port out of range raises)
    except ValueError:
        raise _bad("callback.endpoint", f"{url[:200]!r} has no valid port") from None
    if parts.scheme not in ("http", "https") or not host or not _HOST.fullmatch(host):
        raise _bad("callback.endpoint", f"{url[:200]!r} is not an http(s) URL with a host name or address")
    if parts.username is not None or parts.password is not None:
        raise _bad("callback.endpoint", "credentials in the URL are not accepted (the callback is signed)")
    if not secret:
        raise _bad("callback", "this server cannot sign callbacks (DUTYLINE_CALLBACK_SECRET is not set); poll instead")
    if host not in {egress.normal_host(h) for h in allowed} and _internal(host):
        raise _bad(
            "callback.endpoint",
            f"{host} is a loopback, private or link-local address (allow it with DUTYLINE_CALLBACK_ALLOW)",
        )
    if callback.state is not None and len(callback.state) > MAX_CALLBACK_STATE:
        raise _bad("callback.state", f"at most {MAX_CALLBACK_STATE} characters")
    unknown = sorted(set(callback.events or ()) - set(EVENTS))
    if unknown:
        raise _bad("callback.events", f"{unknown[0]!r} is not one of {', '.join(EVENTS)}")


# A host name (letters, digits, hyphens, dots; IDNs as punycode) or an IPv6 literal (brackets already removed).
_HOST = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,252})|[0-9a-f:.]+")


def _bad(field: str, message: str) -> Invalid:
    return Invalid(f"{field}: {message}", [Issue("<request>", 0, field, message)])


def _internal(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    address = egress.literal(host)
    return address is not None and egress.internal(address)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who submits or asks: `id` binds idempotency keys and tasks to the authenticated caller."""

    id: str


class AccessRequests:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        policies: PolicyService,
        approvals: ApprovalService,
        requestable: Requestable,
        callback_allow: tuple[str, ...] = (),
        callback_secret: str = "",
    ) -> None:
        self._sessions = sessions
        self._policies = policies
        self._approvals = approvals
        self.requestable = requestable
        self._allow = callback_allow
        self._secret = callback_secret

    def submit(self, submission: Submission, caller: Caller, idempotency_key: str | None, base: str) -> TaskResponse:
        """Verify the submission's binding to its denial, open the approval, record the task."""
        if submission.items is not None:
            raise Problem("not_requestable", "items: bundled access requests are not supported; submit each item")
        if submission.resource is None or submission.action is None:
            missing = "resource" if submission.resource is None else "action"
            raise Problem("invalid_denial_binding", f"{missing}: required (the denied evaluation's)")
        denial = submission.denial
        if denial is None or not denial.binding_token:
            raise Problem(
                "invalid_denial_binding",
                "denial.binding_token: required (this PDP keeps no evaluations; the token is the binding)",
            )
        claims = verify(self.requestable.key, denial.binding_token)
        self._bound(claims, submission, denial)
        if submission.callback is not None:
            validate_callback(submission.callback, self._allow, self._secret)
        organisation = claims.organisation
        REACH.get().require(organisation, "subject")
        body = msgspec.to_builtins(submission)
        digest = hashlib.sha256(canonical(body).encode()).hexdigest()
        with self._sessions() as session:
            if idempotency_key is not None:
                earlier = store.by_idempotency_key(session, caller.id, idempotency_key)
                if earlier is not None:
                    return self._repeat(session, earlier, digest, base, "Idempotency-Key")
            used = store.by_token(session, claims.jti)
            if used is not None:
                if used.caller == caller.id and used.body_digest == digest:
                    return self._repeat(session, used, digest, base, "binding token")
                raise Problem("invalid_denial_binding", "denial.binding_token: already used for another access request")
        context = dict(submission.context or {})
        justification = context.get("business_justification")
        question = Question(
            subject_id=str(submission.subject.get("id", "")),
            subject_type="post" if submission.subject.get("type") == "post" else "person",
            subject_properties=_properties(submission.subject),
            resource_type=str(submission.resource.get("type", "")),
            resource_id=_text(submission.resource.get("id")),
            resource_properties=_properties(submission.resource),
            action=str(submission.action.get("name", "")),
            context={k: v for k, v in context.items() if k not in MACHINERY} or None,
            organisation=organisation,
        )
        try:
            approval = self._approvals.open_for(
                question, justification if isinstance(justification, str) else "", 1, None
            )
        except NotApprovable as exc:
            raise Problem("not_requestable", f"decided again, the request {exc}") from None
        callback = submission.callback
        row = AccessRequestRow(
            id=f"arq_{secrets.token_hex(16)}",
            organisation=organisation,
            approval_id=approval.id,
            evaluation_id=claims.evaluation_id or "",
            token_id=claims.jti,
            caller=caller.id,
            idempotency_key=idempotency_key,
            body_digest=digest,
            request=canonical(body),
            template=denial.template or TEMPLATE,
            created_at=utcnow(),
            cancelled_at=None,
            callback_url=callback.endpoint if callback else None,
            callback_state=callback.state if callback else None,
            callback_events=json.dumps(callback.events or [] if callback else []),
            callback_status="waiting" if callback else "none",
            callback_attempts=0,
            callback_next_at=utcnow() if callback else None,
        )
        try:
            with self._sessions.begin() as session:
                session.add(row)
        except IntegrityError:  # a concurrent submission of the same key or token won
            raise Problem("duplicate_request", "the same binding token or Idempotency-Key was just used") from None
        with self._sessions() as session:
            return self._response(session, row, base)

    def _bound(self, claims: BindingClaims, submission: Submission, denial: Denial) -> None:
        """The submission is the denied request (member by member) and still fresh."""
        expires = claims.denial_expires_at
        if denial.expires_at != expires:
            raise Problem("invalid_denial_binding", "denial.expires_at: not the value the binding token protects")
        if time.time() > claims.exp:
            raise Problem("expired_denial", f"the requestable denial expired at {expires}; evaluate again")
        checks = (
            ("subject", _without_actor(submission.subject), claims.subject),
            ("resource", submission.resource, claims.resource),
            ("action", submission.action, claims.action),
        )
        for name, given, bound in checks:
            if not _same(given, bound):
                raise Problem("invalid_denial_binding", f"{name}: not the {name} of the denied evaluation")
        members = claims.binding_context_members
        context = submission.context or {}
        bound_context = claims.context
        for member in members:
            if (member in context) != (member in bound_context) or not _same(
                context.get(member), bound_context.get(member)
            ):
                raise Problem("invalid_denial_binding", f"context.{member}: not the value of the denied evaluation")

    def _repeat(self, session: Session, row: AccessRequestRow, digest: str, base: str, what: str) -> TaskResponse:
        if row.body_digest != digest:
            raise Problem("duplicate_request", f"this {what} was used for a different access request ({row.id})")
        return self._response(session, row, base)

    def organisation_of(self, task_id: str) -> str:
        """The organisation a task belongs to (the reach guard's question): `unknown_task` when there is none."""
        with self._sessions() as session:
            row = store.get(session, task_id) if len(task_id) <= 40 else None
        if row is None:
            raise Problem("unknown_task", f"task {task_id[:60]!r} is unknown")
        return row.organisation

    def status(self, task_id: str, base: str) -> TaskResponse:
        with self._sessions() as session:
            return self._response(session, self._task(session, task_id), base)

    def cancel(self, task_id: str, base: str, body: CancelBody) -> TaskResponse:
        """Cancel a pending task: the approval is withdrawn (rejected, so that nobody can approve it any more)."""
        now = utcnow()
        with self._sessions.begin() as session:
            row = self._task(session, task_id)
            approval = approval_store.get(session, row.approval_id)
            if row.cancelled_at is not None or approval is None or approval.status != "pending":
                state = "cancelled" if row.cancelled_at is not None else approval.status if approval else "gone"
                raise Problem("invalid_task_state", f"task {task_id} is already {state}; only a pending one cancels")
            comment = " ".join(p for p in (body.reason, body.comment) if p)[:4000]
            withdrawn = f"cancelled through access request {row.id}" + (f": {comment}" if comment else "")
            if not approval_store.change(
                session,
                approval.id,
                approval.revision,
                status="rejected",
                decided_at=now,
                decision_comment=withdrawn,
                due_at=None,
            ):
                raise Problem("invalid_task_state", f"task {task_id} changed meanwhile; read it again")
            events.add(
                session, approval_store.ENTITY, approval.id, approval.revision + 1, "cancelled", now,
                f"access-request:{row.caller}"[:200], from_post=approval.post, comment=withdrawn,
            )  # fmt: skip
            store.cancel(session, row.id, now)
        with self._sessions() as session:
            return self._response(session, self._task(session, task_id), base)

    def _task(self, session: Session, task_id: str) -> AccessRequestRow:
        row = store.get(session, task_id) if len(task_id) <= 40 else None
        if row is None or not REACH.get().admits(row.organisation):  # another's task is unknown to this caller
            raise Problem("unknown_task", f"task {task_id[:60]!r} is unknown")
        return row

    def _response(self, session: Session, row: AccessRequestRow, base: str) -> TaskResponse:
        approval = approval_store.get(session, row.approval_id)
        endpoint = f"{base}/access/v1/requests/{row.id}"
        status = task_status(row, approval, utcnow())
        result: TaskResult | UnsetType = UNSET
        expires: str | UnsetType = UNSET
        if status == "approved" and approval is not None and approval.expires_at is not None:
            ref = ApprovalRef(
                approval.id,
                rfc3339(approval.expires_at),
                rfc3339(approval.decided_at) if approval.decided_at else UNSET,
            )
            result, expires = TaskResult("reevaluate", ref), rfc3339(approval.expires_at)
        links = TaskLinks(f"{endpoint}/cancel") if status == "pending" else UNSET
        display = Display("Access request", _display(status, approval))
        return TaskResponse(Task(row.id, status, endpoint, expires, links, display), result)

    def attempts(self, task_id: str) -> list[tuple[int, str, int, str]]:
        """The callback's attempts: (attempt, event, HTTP status, error), for tests and operators."""
        with self._sessions() as session:
            return [(a.attempt, a.event, a.status, a.error) for a in store.attempts(session, task_id)]


def _display(status: str, approval: ApprovalRow | None) -> str:
    if status == "pending" and approval is not None:
        return f"Waiting for a holder of {approval.post} to decide approval {approval.id}."
    return f"The access request is {status}."


def task_status(row: AccessRequestRow, approval: ApprovalRow | None, now: dt.datetime) -> TaskStatus:
    """The profile's status of a task, from its approval (docs/authzen-profiles.md has the mapping)."""
    if row.cancelled_at is not None:
        return "cancelled"
    if approval is None or approval.status == "rejected":
        return "denied"
    if approval.status == "pending":
        return "pending"
    if approval.expires_at is None or now >= approval.expires_at:
        return "expired"
    return "approved"


def _properties(entity: Mapping[str, Any]) -> Mapping[str, Any] | None:
    properties = entity.get("properties")
    return properties if isinstance(properties, dict) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# --- callbacks ----------------------------------------------------------------------------------------------


class Callbacks:
    """Delivers completed tasks' callbacks (called by the scheduler thread of every replica): a callback is leased
    by one replica (`store.access_requests.claim_callbacks`), POSTed with `Dutyline-Signature: sha256=<HMAC of the
    body>`, and marked delivered on a 2xx, else retried after 1, 2, 4 … seconds (at most CALLBACK_ATTEMPTS).

    Each exchange is bounded by `timeout` seconds in all (`egress`: internal addresses refused at connection, no
    redirects, the answer's body unread), a pass sends at most `batch` callbacks, and the lease outlasts the
    longest pass, so that no other replica takes a callback while this one may still be sending it."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        secret: str,
        timeout: float = 5.0,
        allowed: tuple[str, ...] = (),
        batch: int = CALLBACK_BATCH,
        base_delay: float = 1.0,
    ) -> None:
        if not 0 < timeout <= 300:  # NaN and infinity too: a bound is the point
            raise ValueError(f"DUTYLINE_CALLBACK_TIMEOUT: {timeout} is not from 0 to 300 seconds")
        self._sessions = sessions
        self._key = secret.encode()
        self._client = egress.client(allowed, timeout)
        self._batch = batch
        self._lease = dt.timedelta(seconds=batch * timeout + 30.0)
        self._base_delay = base_delay

    def deliver(self) -> int:
        now = utcnow()
        with self._sessions.begin() as session:
            claimed = store.claim_callbacks(session, now, self._lease, self._batch)
        sent = 0
        for row, approval in claimed:
            attempt = row.callback_attempts + 1
            status = task_status(row, approval, now)
            event = status if status != "expired" else "approved"  # it was approved; the validity passed since
            wanted = json.loads(row.callback_events or "[]")
            if wanted and event not in wanted:
                with self._sessions.begin() as session:
                    store.skip(session, row.id)
                continue
            payload: dict[str, Any] = {"task": {"id": row.id, "status": event}}
            if row.callback_state is not None:
                payload["state"] = row.callback_state
            body = json.dumps(payload, separators=(",", ":")).encode()
            signature = hmac.new(self._key, body, hashlib.sha256).hexdigest()
            code, error, final = 0, "", False
            try:
                assert row.callback_url is not None
                headers = {"content-type": "application/json", "dutyline-signature": f"sha256={signature}"}
                with self._client.stream("POST", row.callback_url, content=body, headers=headers) as response:
                    code = response.status_code  # the body is not read: a receiver cannot make us hold it
                if not 200 <= code < 300:
                    error = f"HTTP {code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
                final = isinstance(exc.__cause__, egress.Refused)  # it will not become a public address by waiting
            at = utcnow()
            with self._sessions.begin() as session:
                if not error:
                    store.attempted(session, row.id, attempt, at, event, code, "", "delivered", None)
                    sent += 1
                elif final or attempt >= CALLBACK_ATTEMPTS:
                    store.attempted(session, row.id, attempt, at, event, code, error, "failed", None)
                    log.warning(
                        "callback of %s not delivered after %d attempt(s); giving up: %s", row.id, attempt, error
                    )
                else:
                    delay = dt.timedelta(seconds=min(self._base_delay * 2 ** (attempt - 1), 3600.0))
                    store.attempted(session, row.id, attempt, at, event, code, error, "waiting", at + delay)
        return sent

    def close(self) -> None:
        self._client.close()
