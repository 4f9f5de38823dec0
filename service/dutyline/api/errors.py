"""One mapping from Dutyline's exceptions to HTTP answers: a status and a message naming the field."""

from __future__ import annotations

import logging
from typing import Literal, cast

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from msgspec import UNSET, UnsetType

from dutyline.errors import (
    Conflict,
    DutylineError,
    Forbidden,
    Invalid,
    Issue,
    IssueCode,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
)
from dutyline.services.database import DatabaseError, failure_of

log = logging.getLogger("dutyline.api")


class IssueBody(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One place in the request that is wrong: the field (`path`) and why; for a document also its file, line
    and severity."""

    path: str
    message: str
    file: str | UnsetType = UNSET
    line: int | UnsetType = UNSET
    severity: Literal["error", "warning"] | UnsetType = UNSET
    code: IssueCode | UnsetType = UNSET  # what kind of problem, for programs (the message is for people)
    params: dict[str, str] | UnsetType = UNSET  # the values the console's catalogue words `code` with


class ErrorBody(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Every error answer: the HTTP status, a short name of the error (`invalid`, `not_found`, ...; `http` for
    one the framework raised), a message saying what to do, and for an invalid request each place it is wrong."""

    status: int
    error: str
    message: str
    issues: list[IssueBody] = []


_STATUS: list[tuple[type[DutylineError], int, str]] = [
    (Invalid, 400, "invalid"),
    (Unauthenticated, 401, "unauthenticated"),
    (Forbidden, 403, "forbidden"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (PreconditionFailed, 412, "precondition_failed"),
    (PreconditionRequired, 428, "precondition_required"),
    (TooManyRequests, 429, "too_many_requests"),
    (Unavailable, 503, "unavailable"),
]


def error_response(status: int, error: str, message: str, issues: list[IssueBody] | None = None) -> Response[ErrorBody]:
    return Response(ErrorBody(status, error, message, issues or []), status_code=status)


def _body(issue: Issue) -> IssueBody:
    return IssueBody(
        issue.path, issue.message, issue.file, issue.line, issue.severity, issue.code, issue.params or UNSET
    )


def dutyline_error(_: Request, exc: DutylineError) -> Response[ErrorBody]:
    for kind, status, name in _STATUS:
        if isinstance(exc, kind):
            issues = [_body(i) for i in getattr(exc, "issues", [])]
            response = error_response(status, name, str(exc), issues)
            if isinstance(exc, (TooManyRequests, Unavailable)) and exc.retry_after is not None:
                response.headers["Retry-After"] = str(exc.retry_after)
            elif isinstance(exc, Unauthenticated):
                response.headers["WWW-Authenticate"] = 'Bearer realm="dutyline"'
            return response
    return error_response(500, "internal", "internal error")


def http_error(_: Request, exc: HTTPException) -> Response[ErrorBody]:
    message = exc.detail
    issues: list[IssueBody] = []
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        issues = [
            IssueBody(str(e.get("key", "")), str(e.get("message", "")), code=IssueCode.SCHEMA)
            for e in exc.extra
            if isinstance(e, dict)
        ]
        if issues:
            message = "; ".join(f"{i.path}: {i.message}" if i.path else i.message for i in issues)
    return error_response(exc.status_code, "http", message, issues)


def internal_error(request: Request, exc: Exception) -> Response[ErrorBody]:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "internal error; it has been logged")


def database_error(request: Request, exc: Exception) -> Response[ErrorBody]:
    """The database is down, restarting or unreachable (or SQLite is locked): 503, so that callers retry.
    Decisions do not get here: they are made from the policy in memory. A value it refuses: 400."""
    failure = failure_of(cast("DatabaseError", exc))
    if failure.kind == "refused":
        return error_response(400, "invalid", f"a value in the request cannot be stored: {failure.reason}")
    if failure.kind == "other":
        return internal_error(request, exc)
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, failure.reason)
    response = error_response(503, "unavailable", "the database is unavailable; retry shortly")
    response.headers["Retry-After"] = "1"
    return response


HANDLERS = {
    DutylineError: dutyline_error,
    HTTPException: http_error,
    DatabaseError: database_error,
    Exception: internal_error,
}
