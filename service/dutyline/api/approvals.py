"""Approvals over HTTP: open one for a request that needs approval, the approver's inbox, approve, reject."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, Parameter

from dutyline.api.auth import acting_person
from dutyline.api.body import read_json
from dutyline.api.check import CheckRequest, CheckResource, CheckSubject, Text, question_of, result_of
from dutyline.api.middleware import request_id_of
from dutyline.api.openapi import DECIDE, answers, takes
from dutyline.api.schemas import ApprovalRecord, Approvals, Unapprovable
from dutyline.runtime import Runtime
from dutyline.services.approvals import NotApprovable

_ENCODE = msgspec.json.Encoder()
Comment = Annotated[str, msgspec.Meta(max_length=4000)]


class ApprovalBody(msgspec.Struct):
    """The check that needs approval, as /v1/check takes it, and why the requester asks."""

    organisation: Text
    subject: CheckSubject
    resource: CheckResource
    action: Text
    at: str | None = None
    context: dict[str, Any] | None = None
    comment: Comment = ""
    # How many decisions the approval may allow once approved (at most DUTYLINE_APPROVAL_MAX_USES, default 100).
    uses: Annotated[int, msgspec.Meta(ge=1)] = 1


class DecideBody(msgspec.Struct):
    # Who decides: a bearer token's client attests it; a console session acts as its user's linked person, so it
    # may leave it out (docs/approvals-and-cases.md, "Who is acting").
    person: Text | None = None
    comment: Comment = ""


def _json(payload: Any, status: int = 200) -> Response[bytes]:
    return Response(_ENCODE.encode(payload), media_type="application/json", status_code=status)


@post(
    "/v1/approvals",
    status_code=201,
    tags=["approvals"],
    summary="Open an approval for a request that needs one",
    responses=answers({201: ApprovalRecord, 409: Unapprovable}, *DECIDE, 413, 503),
    operation_class=takes(ApprovalBody),
)
async def open_approval(request: Request, state: State) -> Response[bytes]:
    runtime: Runtime = state.runtime
    body = await read_json(request, ApprovalBody)
    runtime.approvals.check_uses(body.uses)
    await acting_person(request, runtime, lambda: body.organisation, body.subject.id, "subject")
    check = CheckRequest(
        organisation=body.organisation,
        subject=body.subject,
        resource=body.resource,
        action=body.action,
        at=body.at,
        context=body.context,
    )
    answer = runtime.decisions.answer(question_of(runtime.decisions.policies, check, request_id_of(request.scope)))
    asked = msgspec.to_builtins(check)
    asked = {k: asked[k] for k in ("subject", "resource", "action", "at", "context") if k in asked}
    try:
        approval = await asyncio.to_thread(runtime.approvals.open, answer, asked, body.comment, body.uses)
    except NotApprovable as exc:
        return _json(Unapprovable(409, "conflict", str(exc), result_of(exc.answer)), 409)  # type: ignore[arg-type]
    return _json(approval, 201)


@get(
    "/v1/approvals",
    tags=["approvals"],
    summary="Approvals; with approver=, that person's inbox",
    sync_to_thread=True,
    responses=answers({200: Approvals}, *DECIDE, 404, 503),
)
def list_approvals(
    state: State,
    organisation: FromQuery[str | None] = None,
    approver: Annotated[
        str | None, Parameter(description="A person: approvals waiting at a post they hold now")
    ] = None,
    status: Annotated[str | None, Parameter(description="pending, approved or rejected")] = None,
    requester: FromQuery[str | None] = None,
    limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
) -> Response[bytes]:
    runtime: Runtime = state.runtime
    return _json(Approvals(runtime.approvals.list(organisation, approver, status, requester, limit)))  # type: ignore[arg-type]


@get(
    "/v1/approvals/{approval_id:str}",
    tags=["approvals"],
    summary="One approval with its history",
    sync_to_thread=True,
    responses=answers({200: ApprovalRecord}, *DECIDE, 404, 503),
)
def get_approval(state: State, approval_id: FromPath[str]) -> Response[bytes]:
    runtime: Runtime = state.runtime
    return _json(runtime.approvals.get(approval_id))


@post(
    "/v1/approvals/{approval_id:str}/approve",
    status_code=200,
    tags=["approvals"],
    summary="Approve (an eligible approver only)",
    responses=answers({200: ApprovalRecord}, *DECIDE, 404, 409, 413, 503),
    operation_class=takes(DecideBody),
)
async def approve(request: Request, state: State, approval_id: FromPath[str]) -> Response[bytes]:
    runtime: Runtime = state.runtime
    body = await read_json(request, DecideBody)
    person = await acting_person(request, runtime, lambda: runtime.approvals.organisation_of(approval_id), body.person)
    return _json(await asyncio.to_thread(runtime.approvals.decide, approval_id, person, True, body.comment))


@post(
    "/v1/approvals/{approval_id:str}/reject",
    status_code=200,
    tags=["approvals"],
    summary="Reject (an eligible approver only)",
    responses=answers({200: ApprovalRecord}, *DECIDE, 404, 409, 413, 503),
    operation_class=takes(DecideBody),
)
async def reject(request: Request, state: State, approval_id: FromPath[str]) -> Response[bytes]:
    runtime: Runtime = state.runtime
    body = await read_json(request, DecideBody)
    person = await acting_person(request, runtime, lambda: runtime.approvals.organisation_of(approval_id), body.person)
    return _json(await asyncio.to_thread(runtime.approvals.decide, approval_id, person, False, body.comment))


ROUTES = [open_approval, list_approvals, get_approval, approve, reject]
