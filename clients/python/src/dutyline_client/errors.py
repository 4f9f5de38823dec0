"""One exception per kind of answer that is not a result: each carries the server's status, error name, message
and issues (the fields that are wrong), so that a caller branches on the class or on an issue's `code`, never on
the message."""

from __future__ import annotations

import msgspec

from dutyline_client.models import CheckResult, ErrorBody, IssueBody, ProblemDetails, Unapprovable


class DutylineError(Exception):
    """Dutyline answered with an error, or could not be asked."""

    status: int
    error: str
    message: str
    issues: list[IssueBody]

    def __init__(self, status: int, error: str, message: str, issues: list[IssueBody] | None = None) -> None:
        super().__init__(f"{status} {error}: {message}" if status else message)
        self.status = status
        self.error = error
        self.message = message
        self.issues = issues or []


class ClientError(DutylineError):
    """A 4xx: the request is wrong, or not allowed. Never retried."""


class InvalidRequest(ClientError):
    """400 (and 422): `message` names the field; `issues` lists each place."""


class Unauthenticated(ClientError):
    """401: no bearer token where one is required, or one that is unknown, expired or revoked."""


class Forbidden(ClientError):
    """403: the caller (or the person it acts as) may not do this; `message` says why."""


class NotFound(ClientError):
    """404: an unknown organisation, person, post, rule, approval or case."""


class Conflict(ClientError):
    """409: the state does not allow it (an approval no longer pending, a case already resolved). Opening an
    approval for a request that does not need one carries the check's answer in `decision`."""

    decision: CheckResult | None

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        issues: list[IssueBody] | None = None,
        decision: CheckResult | None = None,
    ) -> None:
        super().__init__(status, error, message, issues)
        self.decision = decision


class Gone(ClientError):
    """410: the requestable denial or the task has expired."""


class PayloadTooLarge(ClientError):
    """413: the body is larger than the server takes."""


class TooManyRequests(ClientError):
    """429: the caller is rate limited."""


class ServerError(DutylineError):
    """A 5xx other than 503 (a bug on the server: it has logged it)."""


class Unavailable(DutylineError):
    """503 after every retry: the server cannot answer now (a policy version not applied yet, the database down,
    too many waiting); `retry_after` is its hint in seconds."""

    retry_after: float | None

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        issues: list[IssueBody] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, error, message, issues)
        self.retry_after = retry_after


class Unreachable(DutylineError):
    """No answer at all after every retry: connection refused, reset, timed out. `status` is 0."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "unreachable", message)


_BY_STATUS: dict[int, type[ClientError]] = {
    400: InvalidRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    413: PayloadTooLarge,
    422: InvalidRequest,
    429: TooManyRequests,
}
_ERROR_BODY = msgspec.json.Decoder(ErrorBody)
_PROBLEM = msgspec.json.Decoder(ProblemDetails)
_PROFILE_PROBLEM = "urn:openid:authzen:access-request:error:"
_UNAPPROVABLE = msgspec.json.Decoder(Unapprovable)


def error_of(status: int, content: bytes, retry_after: float | None = None) -> DutylineError:
    """The exception for an error answer; a body that is not Dutyline's error shape (a proxy's page) keeps its
    first characters as the message."""
    body: ErrorBody | None
    try:
        body = _ERROR_BODY.decode(content)
    except (msgspec.DecodeError, msgspec.ValidationError):
        body = None
    if body is None:  # the access request endpoints answer RFC 9457 problems: `error` is the profile's name
        try:
            problem = _PROBLEM.decode(content)
            body = ErrorBody(status=status, error=problem.type.removeprefix(_PROFILE_PROBLEM), message=problem.detail)
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass
    if body is None:
        text = content[:500].decode("utf-8", errors="replace").strip()
        body = ErrorBody(status=status, error="http", message=text or f"HTTP {status}")
    if status == 503:
        return Unavailable(status, body.error, body.message, body.issues, retry_after)
    if status == 409:
        try:
            decision: CheckResult | None = _UNAPPROVABLE.decode(content).decision
        except (msgspec.DecodeError, msgspec.ValidationError):
            decision = None
        return Conflict(status, body.error, body.message, body.issues, decision)
    kind: type[DutylineError] = _BY_STATUS.get(status, ClientError if status < 500 else ServerError)
    return kind(status, body.error, body.message, body.issues)
