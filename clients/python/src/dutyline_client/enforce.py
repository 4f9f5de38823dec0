"""Enforcement in a caller's web application (docs/clients.md, "Enforce in a web application"): each route declares
what it asks Dutyline (`@requires("transaction", "enter", resource_id=path("id"), context={"amount":
body("amount")})`), an `Enforcer` asks it for the caller's authenticated identity, and the framework's adapter
(`dutyline_client.asgi` for Litestar, Starlette and FastAPI; `dutyline_client.wsgi` for Flask and Django) lets an
allow through and answers anything else itself, as a `Refusal` in JSON:

- no identity: 401 `unauthenticated`; a value the route needs missing or malformed: 400 `invalid`, its `issues`
  naming the field (`body.amount`), before Dutyline is asked;
- a deny: 403 `forbidden` with Dutyline's reasons (`reason` in Chinese and English);
- a needs_approval: 403 `needs_approval` with `approval` (an `ApprovalRequest`: the approval opened for it, its
  approvers, and the header that presents it when the request is sent again once approved);
- Dutyline unreachable: the client's fail-closed answer, 503 `unavailable` (logged on `dutyline_client`).

Nothing here imports a web framework: adapters hand in an `Incoming` (what a route's values are read from).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import msgspec

from dutyline_client.async_client import AsyncClient
from dutyline_client.client import Client
from dutyline_client.errors import DutylineError, InvalidRequest
from dutyline_client.models import ApprovalRecord, ApproverStep, CheckResult, Reason, Texts

log = logging.getLogger("dutyline_client")
F = TypeVar("F")

APPROVAL_HEADER = "Dutyline-Approval"
# The largest body an adapter reads to find the values a route needs (bytes; `max_body=` of an enforcer): a bigger
# one is a 413 before the rest is read, so that the check cannot be made to hold a body without end in memory.
MAX_BODY = 1_048_576


# --- what a route's values are read from ----------------------------------------------------------------------


class _NoBody:
    pass


_UNREAD = _NoBody()


@dataclass
class Incoming:
    """A request as the adapters see it: path parameters, query (first value of each), headers (names in lower
    case), the body when the route reads it, and the framework's own object (`native`: the ASGI scope, Flask's or
    Django's request) for identities that live there."""

    path_params: Mapping[str, Any]
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes = b""
    native: Any = None
    _json: Any = field(default=_UNREAD, repr=False)

    def json(self) -> Any:
        if self._json is _UNREAD:
            if not self.body.strip():
                raise BadInput([Issue("body", "missing", "body: a JSON object is required")])
            try:
                self._json = msgspec.json.decode(self.body)
            except msgspec.DecodeError as exc:
                raise BadInput([Issue("body", "invalid", f"body: not JSON ({exc})")]) from None
        return self._json


class Issue(msgspec.Struct, frozen=True):
    """A value a route needs that the request does not give: where (`body.amount`, `path.id`, `query.at`,
    `header.x-user`), `missing` or `invalid`, and a sentence."""

    path: str
    code: Literal["missing", "invalid"]
    message: str


class BadInput(Exception):
    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("; ".join(i.message for i in issues))
        self.issues = issues


_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class Source:
    """Where one value comes from: `path`, `query`, `header`, `body` (a dotted path into the JSON body) or
    `native` (a dotted path of attributes or keys of the framework's request), optionally converted (`int`,
    `Decimal`...). Missing with no `default`: a 400 naming the field."""

    kind: Literal["path", "query", "header", "body", "native"]
    name: str
    default: Any = _MISSING
    convert: Callable[[Any], Any] | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}.{self.name}"

    def read(self, incoming: Incoming) -> Any:
        found = self._find(incoming)
        if found is _MISSING:
            if self.default is not _MISSING:
                return self.default
            raise BadInput([Issue(self.label, "missing", f"{self.label}: required, not given")])
        if self.convert is None:
            return found
        try:
            return self.convert(found)
        except (TypeError, ValueError, ArithmeticError):
            wanted = getattr(self.convert, "__name__", "the expected type")
            raise BadInput([Issue(self.label, "invalid", f"{self.label}: {found!r} is not {wanted}")]) from None

    def _find(self, incoming: Incoming) -> Any:
        if self.kind == "path":
            return incoming.path_params.get(self.name, _MISSING)
        if self.kind == "query":
            return incoming.query.get(self.name, _MISSING)
        if self.kind == "header":
            return incoming.headers.get(self.name.lower(), _MISSING)
        found: Any = incoming.json() if self.kind == "body" else incoming.native
        for step in self.name.split("."):
            if isinstance(found, Mapping):
                found = found.get(step, _MISSING)
            elif self.kind == "native":
                found = getattr(found, step, _MISSING)
            else:
                return _MISSING  # a JSON value that is not an object has no fields
            if found is _MISSING:
                return _MISSING
        if self.kind == "body" and found is None:
            return _MISSING  # `"amount": null` says no more than leaving it out
        return found


def path(name: str, convert: Callable[[Any], Any] | None = None, *, default: Any = _MISSING) -> Source:
    """A path parameter of the route (`/transactions/{id}`: `path("id")`)."""
    return Source("path", name, default, convert)


def query(name: str, convert: Callable[[Any], Any] | None = None, *, default: Any = _MISSING) -> Source:
    """A query parameter (its first value), text unless converted."""
    return Source("query", name, default, convert)


def header(name: str, convert: Callable[[Any], Any] | None = None, *, default: Any = _MISSING) -> Source:
    """A request header (any case)."""
    return Source("header", name, default, convert)


def body(name: str, convert: Callable[[Any], Any] | None = None, *, default: Any = _MISSING) -> Source:
    """A field of the JSON body, dotted for nested objects (`body("payment.amount")`)."""
    return Source("body", name, default, convert)


def native(name: str, convert: Callable[[Any], Any] | None = None, *, default: Any = _MISSING) -> Source:
    """Attributes or keys of the framework's request, dotted: `native("user.username")` reads `request.user.username`
    (Django, Flask), or `scope["user"].username` over ASGI (what Starlette's and Litestar's authentication set)."""
    return Source("native", name, default, convert)


Value = Source | str | int | float | bool | None


def _value(value: Value, incoming: Incoming) -> Any:
    return value.read(incoming) if isinstance(value, Source) else value


# --- what a route asks ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Requirement:
    """What one route asks Dutyline; as a decorator it marks the route's function (`__dutyline__`) for the
    adapters to find. Fixed values are given as they are, request values as `Source`s."""

    resource: str
    action: str
    resource_id: Value = None
    context: Mapping[str, Value] = field(default_factory=dict)
    organisation: Value = None  # None: the enforcer's
    at: Value = None

    @property
    def reads_body(self) -> bool:
        values = [self.resource_id, self.organisation, self.at, *self.context.values()]
        return any(isinstance(v, Source) and v.kind == "body" for v in values)

    def __call__(self, function: F) -> F:
        try:
            function.__dutyline__ = self  # type: ignore[attr-defined]
        except AttributeError:
            raise TypeError(f"@requires marks a function; put it beneath the route decorator ({function!r})") from None
        return function


def requires(
    resource: str,
    action: str,
    *,
    resource_id: Value = None,
    context: Mapping[str, Value] | None = None,
    organisation: Value = None,
    at: Value = None,
) -> Requirement:
    """Declare what a route asks: `@requires("transaction", "enter", resource_id=path("id"), context={"amount":
    body("amount")})`, beneath the framework's route decorator."""
    return Requirement(resource, action, resource_id, dict(context or {}), organisation, at)


def requirement_of(*candidates: Any) -> Requirement | None:
    """The requirement a route's function (or a framework's handler wrapping it in `fn`) was marked with."""
    for candidate in candidates:
        for thing in (candidate, getattr(candidate, "fn", None)):
            found = getattr(thing, "__dutyline__", None)
            if isinstance(found, Requirement):
                return found
    return None


# --- what the application answers instead -----------------------------------------------------------------------


class CheckArguments(msgspec.Struct, kw_only=True):
    """The check a route made, as the client's `check` and `open_approval` take it (`client.open_approval(**it)`)."""

    organisation: str
    subject: str
    resource: str
    action: str
    resource_id: str | None = None
    context: dict[str, Any] = {}
    at: str | None = None


class ApprovalRequest(msgspec.Struct, kw_only=True):
    """What a needs_approval asks for. `id` is the approval opened for this request (or the one presented with it,
    `status` telling where it stands); null when the enforcer does not open approvals or opening failed: open it
    with `client.open_approval(**request)`. `approvers`: who can approve, nearest first. Once approved, send the same
    request again with the id in the `present` header."""

    id: str | None
    status: Literal["pending", "approved", "rejected", "unopened", "unknown"]
    approvers: list[ApproverStep]
    href: str | None  # the approval in Dutyline's API (the client's `approval(id)`)
    present: str
    request: CheckArguments
    due_at: str | None = None
    expires_at: str | None = None


class Refusal(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The answer an adapter gives instead of the route (`status`: 400, 401, 403, 413 or 503). `error` is for programs
    to branch on, with `code` (the decision's, or `no_identity`, `bad_input`, `dutyline_unreachable`...);
    `reason` is the decisive sentence in Chinese and English, `reasons` Dutyline's own."""

    status: int
    error: Literal["invalid", "unauthenticated", "forbidden", "needs_approval", "unavailable"]
    code: str
    message: str
    reason: Texts
    issues: list[Issue] = []
    reasons: list[Reason] = []
    decision_id: str = ""
    approval: ApprovalRequest | None = None

    def encode(self) -> bytes:
        return msgspec.json.encode(self)


_NO_IDENTITY = Texts(zh="未识别调用者身份,拒绝访问", en="no authenticated identity: access denied")


def _invalid(issues: list[Issue]) -> Refusal:
    message = "; ".join(i.message for i in issues)
    return Refusal(
        status=400,
        error="invalid",
        code="bad_input",
        message=message,
        reason=Texts(zh=f"请求缺少或含有无效的字段:{', '.join(i.path for i in issues)}", en=message),
        issues=issues,
    )


def too_large(limit: int) -> Refusal:
    """The 413 of a body above `max_body` (read no further than that)."""
    message = f"body: larger than {limit} bytes, the most this route reads to check it"
    return Refusal(
        status=413,
        error="invalid",
        code="body_too_large",
        message=message,
        reason=Texts(zh=f"请求体超过 {limit} 字节,无法检查", en=message),
        issues=[Issue("body", "invalid", message)],
    )


def _decisive(result: CheckResult) -> Texts:
    # The last reason is the one that settled it (a rule after the duty that granted, a pending approval after the
    # rule that asked for it).
    last = result.reasons[-1] if result.reasons else None
    return Texts(zh=last.zh, en=last.en) if last else Texts(zh="拒绝", en="denied")


# --- the enforcer -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Asked:
    arguments: CheckArguments
    approval_id: str | None


class _Rules:
    """What both enforcers share; only the client's calls differ (sync or async)."""

    def __init__(
        self,
        *,
        subject: Source | Callable[[Incoming], str | None],
        organisation: Value = None,
        approval_header: str = APPROVAL_HEADER,
        open_approvals: bool = True,
        base_url: str,
        max_body: int = MAX_BODY,
    ) -> None:
        self.subject = subject
        self.max_body = max_body
        self.organisation = organisation
        self.approval_header = approval_header
        self.open_approvals = open_approvals
        self._base_url = base_url

    def _ask(self, requirement: Requirement, incoming: Incoming) -> _Asked | Refusal:
        if len(incoming.body) > self.max_body:
            return too_large(self.max_body)
        subject = self._identity(incoming)
        if not subject:
            return Refusal(
                status=401, error="unauthenticated", code="no_identity", message=_NO_IDENTITY.en, reason=_NO_IDENTITY
            )
        issues: list[Issue] = []

        def read(value: Value) -> Any:
            try:
                return _value(value, incoming)
            except BadInput as bad:
                issues.extend(bad.issues)
                return None

        organisation = read(requirement.organisation if requirement.organisation is not None else self.organisation)
        resource_id = read(requirement.resource_id)
        context = {name: read(value) for name, value in requirement.context.items()}
        at = read(requirement.at)
        if not issues and not organisation:
            issues.append(
                Issue("organisation", "missing", "organisation: neither the route nor the enforcer names one")
            )
        if issues:
            return _invalid(sorted(set(issues), key=lambda i: i.path))
        arguments = CheckArguments(
            organisation=str(organisation),
            subject=subject,
            resource=requirement.resource,
            action=requirement.action,
            resource_id=None if resource_id is None else str(resource_id),
            context=context,
            at=None if at is None else str(at),
        )
        presented = incoming.headers.get(self.approval_header.lower()) or None
        return _Asked(arguments, presented)

    def _identity(self, incoming: Incoming) -> str | None:
        try:
            if isinstance(self.subject, Source):
                found = self.subject.read(incoming)
            else:
                found = self.subject(incoming)
        except BadInput:
            return None
        except Exception:  # an identity that cannot be read is no identity: fail closed, and say why in the log
            log.exception("the caller's identity could not be read; answered 401")
            return None
        return str(found) if found not in (None, "") else None

    def _settled(self, asked: _Asked, result: CheckResult) -> CheckResult | Refusal | None:
        """The result when it allows, a refusal, or None: a needs_approval whose approval the enforcer looks up (the
        one presented) or opens, before `_needs_approval` words the refusal."""
        if result.allowed:
            return result
        if result.decision == "deny":
            local = result.answered_locally
            return Refusal(
                status=503 if local else 403,
                error="unavailable" if local else "forbidden",
                code=result.code,
                message=_decisive(result).en,
                reason=_decisive(result),
                reasons=result.reasons,
                decision_id=result.decision_id,
            )
        if asked.approval_id is not None or self.open_approvals:
            return None  # the approval presented, to say where it stands, or one to open
        return self._needs_approval(asked, result, None)

    def _needs_approval(self, asked: _Asked, result: CheckResult, record: ApprovalRecord | None) -> Refusal:
        if record is not None and record.requester != asked.arguments.subject:
            record = None  # someone else's: say nothing of it
        approval_id = record.id if record is not None else asked.approval_id
        status: Literal["pending", "approved", "rejected", "unopened", "unknown"] = (
            record.status if record is not None else "unknown" if approval_id else "unopened"
        )
        request = ApprovalRequest(
            id=approval_id,
            status=status,
            approvers=record.chain if record is not None else result.approvers,
            href=f"{self._base_url}/v1/approvals/{quote(approval_id, safe='')}" if approval_id else None,
            present=self.approval_header,
            request=asked.arguments,
            due_at=record.due_at if record is not None else None,
            expires_at=record.expires_at if record is not None else None,
        )
        return Refusal(
            status=403,
            error="needs_approval",
            code=result.code,
            message=_decisive(result).en,
            reason=_decisive(result),
            reasons=result.reasons,
            decision_id=result.decision_id,
            approval=request,
        )

    def _failed(self, error: DutylineError) -> Refusal:
        if isinstance(error, InvalidRequest):  # a value from the request that Dutyline cannot read (`at`)
            issues = [Issue(i.path, "invalid", i.message) for i in error.issues]
            return _invalid(issues or [Issue("request", "invalid", error.message)])
        log.warning("Dutyline refused the check (%s); answered 503 (fail closed)", error)
        return Refusal(
            status=503,
            error="unavailable",
            code="dutyline_error",
            message=f"Dutyline could not decide ({error.message}); denied (fail closed)",
            reason=Texts(zh="Dutyline 无法作出决定,按拒绝处理", en=f"Dutyline could not decide ({error.message})"),
        )


class Enforcer(_Rules):
    """Asks Dutyline, with a `Client`, what each marked route requires, for WSGI adapters.

    - `subject`: the caller's authenticated identity, a `Source` (`header("X-Authenticated-User")` set by the
      gateway, `native("user.username")`) or a function of the `Incoming`; none (or empty): 401.
    - `organisation`: fixed, or a `Source`; a route's own replaces it.
    - `open_approvals`: open the approval of a needs_approval (its id in the 403), unless one was presented in
      `approval_header`.
    """

    def __init__(
        self,
        client: Client,
        *,
        subject: Source | Callable[[Incoming], str | None],
        organisation: Value = None,
        approval_header: str = APPROVAL_HEADER,
        open_approvals: bool = True,
        max_body: int = MAX_BODY,
    ) -> None:
        super().__init__(
            subject=subject,
            organisation=organisation,
            approval_header=approval_header,
            open_approvals=open_approvals,
            base_url=client.base_url,
            max_body=max_body,
        )
        self.client = client

    def enforce(self, requirement: Requirement, incoming: Incoming) -> CheckResult | Refusal:
        """The allowing result (let the request through), or the refusal to answer instead."""
        asked = self._ask(requirement, incoming)
        if isinstance(asked, Refusal):
            return asked
        arguments = msgspec.structs.asdict(asked.arguments)  # as `check` and `open_approval` take them
        try:
            result = self.client.check(**arguments, approval_id=asked.approval_id)
            settled = self._settled(asked, result)
            if settled is not None:
                return settled
        except DutylineError as error:
            return self._failed(error)
        try:
            if asked.approval_id is not None:
                record = self.client.approval(asked.approval_id)
            else:
                record = self.client.open_approval(**arguments)
        except DutylineError as error:
            log.warning("the approval could not be read or opened (%s); the 403 says how to open one", error)
            record = None
        return self._needs_approval(asked, result, record)


class AsyncEnforcer(_Rules):
    """`Enforcer` with an `AsyncClient`, for ASGI adapters (the same arguments)."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        subject: Source | Callable[[Incoming], str | None],
        organisation: Value = None,
        approval_header: str = APPROVAL_HEADER,
        open_approvals: bool = True,
        max_body: int = MAX_BODY,
    ) -> None:
        super().__init__(
            subject=subject,
            organisation=organisation,
            approval_header=approval_header,
            open_approvals=open_approvals,
            base_url=client.base_url,
            max_body=max_body,
        )
        self.client = client

    async def enforce(self, requirement: Requirement, incoming: Incoming) -> CheckResult | Refusal:
        asked = self._ask(requirement, incoming)
        if isinstance(asked, Refusal):
            return asked
        arguments = msgspec.structs.asdict(asked.arguments)  # as `check` and `open_approval` take them
        try:
            result = await self.client.check(**arguments, approval_id=asked.approval_id)
            settled = self._settled(asked, result)
            if settled is not None:
                return settled
        except DutylineError as error:
            return self._failed(error)
        try:
            if asked.approval_id is not None:
                record = await self.client.approval(asked.approval_id)
            else:
                record = await self.client.open_approval(**arguments)
        except DutylineError as error:
            log.warning("the approval could not be read or opened (%s); the 403 says how to open one", error)
            record = None
        return self._needs_approval(asked, result, record)
