"""The AuthZEN access request profile over HTTP: submit an access request, read and cancel its task, the request
schema and the (empty) key set of binding tokens (`services.access_requests`, docs/authzen-profiles.md).

Errors of these endpoints are `application/problem+json` (RFC 9457) with the profile's problem types, or
`about:blank` for other bad input; authentication failures are the decision API's own (401/403 JSON)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath

from dutyline.api.auth import acting_person
from dutyline.api.body import decode, read_body, read_json
from dutyline.api.errors import dutyline_error
from dutyline.api.openapi import ERRORS, answers, header, reads, takes
from dutyline.errors import DutylineError, Forbidden, Invalid, NotFound, Unauthenticated
from dutyline.runtime import Runtime
from dutyline.services.access_requests import (
    REQUEST_SCHEMA,
    Caller,
    CancelBody,
    Problem,
    Submission,
    TaskResponse,
    verify,
)
from dutyline.services.reach import CURRENT as REACH
from dutyline.services.shapes import Shape

PROBLEM = "application/problem+json"
IdempotencyKey = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


class ProblemDetails(Shape):
    """An RFC 9457 problem: `type` is one of the profile's URNs (or `about:blank`), `detail` names the field."""

    type: str
    title: str
    status: int
    detail: str


class KeySet(Shape):
    """A JWK Set; empty: binding tokens are HMAC-signed and verified by Dutyline alone."""

    keys: list[dict[str, Any]]


_TITLES = {400: "Bad request", 404: "Not found", 409: "Conflict", 410: "Gone", 413: "Payload too large"}


def _problem(_: Request, exc: DutylineError) -> Response[Any]:
    if isinstance(exc, Problem):
        body = ProblemDetails(exc.type, exc.title, exc.status, str(exc))
    elif isinstance(exc, (Unauthenticated, Forbidden)):  # the decision API's own answers, as everywhere else
        return dutyline_error(_, exc)
    else:
        status = 404 if isinstance(exc, NotFound) else 409 if not isinstance(exc, Invalid) else 400
        body = ProblemDetails("about:blank", _TITLES.get(status, "Error"), status, str(exc))
    return Response(body, status_code=body.status, media_type=PROBLEM)


def _problems(success: dict[int, Any], *statuses: int) -> dict[int, ResponseSpec]:
    specs = answers(success, 401, 403, 413, 503)
    for status in statuses:
        specs[status] = ResponseSpec(
            ProblemDetails, description=ERRORS.get(status, "Gone: expired"), media_type=PROBLEM, generate_examples=False
        )
    return specs


def _root(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _caller() -> Caller:
    return Caller(REACH.get().holder)


IDEMPOTENCY = header("Idempotency-Key", "The same key and body again return the same task (a different body: 409)")


@post(
    "/access/v1/requests",
    status_code=202,
    tags=["authzen"],
    summary="Access Request Endpoint (submit an access request for a requestable denial)",
    responses=_problems({202: TaskResponse}, 400, 409, 410),
    operation_class=takes(Submission, "AccessRequestSubmission", parameters=(IDEMPOTENCY,)),
    exception_handlers={DutylineError: _problem},
)
async def submit(request: Request, runtime: NamedDependency[Runtime]) -> Response[TaskResponse]:
    body = await read_json(request, Submission)
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= 255:
        raise Invalid("Idempotency-Key: from 1 to 255 characters")
    if body.denial is not None and body.denial.binding_token:  # a console user acts as their own person
        claims = verify(runtime.access_requests.requestable.key, body.denial.binding_token)
        organisation = claims.organisation
        await acting_person(request, runtime, lambda: organisation, str(body.subject.get("id", "")), "subject")
    answer = await asyncio.to_thread(runtime.access_requests.submit, body, _caller(), key, _root(request))
    return Response(answer, status_code=202, headers={"Location": answer.task.status_endpoint})


@get(
    "/access/v1/requests/{task_id:str}",
    tags=["authzen"],
    summary="Task Status Endpoint",
    responses=_problems({200: TaskResponse}, 400, 404),
    exception_handlers={DutylineError: _problem},
)
async def task_status(request: Request, runtime: NamedDependency[Runtime], task_id: FromPath[str]) -> TaskResponse:
    # asyncio.to_thread carries the caller's reach (a context variable) into the worker thread
    return await asyncio.to_thread(runtime.access_requests.status, task_id, _root(request))


@post(
    "/access/v1/requests/{task_id:str}/cancel",
    status_code=200,
    tags=["authzen"],
    summary="Cancel a pending access request",
    responses=_problems({200: TaskResponse}, 400, 404, 409),
    operation_class=takes(CancelBody, "Cancellation", required=False),
    exception_handlers={DutylineError: _problem},
)
async def cancel(request: Request, runtime: NamedDependency[Runtime], task_id: FromPath[str]) -> TaskResponse:
    raw = await read_body(request)
    body = decode(raw, CancelBody) if raw.strip() else CancelBody()
    return await asyncio.to_thread(runtime.access_requests.cancel, task_id, _root(request), body)


@get(
    "/access/v1/request-schema",
    tags=["authzen"],
    summary="The JSON Schema of what an access request may add (request_schema_url)",
    responses=answers({}),
    operation_class=reads(),
)
async def request_schema() -> dict[str, Any]:
    return REQUEST_SCHEMA


@get(
    "/.well-known/dutyline-jwks.json",
    tags=["authzen"],
    summary="The JWK Set of the profile's signed values (jwks_uri): empty, binding tokens are HMAC-signed",
    responses=answers({200: KeySet}),
)
async def key_set() -> KeySet:
    return KeySet([])


ROUTES = [submit, task_status, cancel, request_schema, key_set]
