"""Approvals over HTTP: open one for a request that needs approval, the approver's inbox, approve, reject."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, Parameter

from dutyline.api.auth import acting_person
from dutyline.api.body import read_json
from dutyline.api.check import CheckRequest, CheckResource, CheckSubject, Text, question_of, result_of
from dutyline.api.middleware import request_id_of
from dutyline.api.openapi import DECIDE, answers, takes
from dutyline.api.schemas import Unapprovable
from dutyline.runtime import Runtime
from dutyline.services.approvals import Approval, ApprovalRecord, ApprovalService, NotApprovable
from dutyline.services.decisions import DecisionService

Comment = Annotated[str, msgspec.Meta(max_length=4000)]


class Approvals(msgspec.Struct, forbid_unknown_fields=True):
    items: list[Approval]


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


def _unapprovable(_: Request, exc: NotApprovable) -> Response[Unapprovable]:
    """The 409 of a request that needs no approval (or that nobody can give): it comes back with its decision."""
    body = Unapprovable(409, "conflict", str(exc), result_of(exc.answer))  # type: ignore[arg-type]
    return Response(body, status_code=409)


@post(
    "/v1/approvals",
    status_code=201,
    tags=["approvals"],
    summary="Open an approval for a request that needs one",
    responses=answers({409: Unapprovable}, *DECIDE, 413, 503),
    operation_class=takes(ApprovalBody),
    exception_handlers={NotApprovable: _unapprovable},
)
async def open_approval(
    request: Request,
    runtime: NamedDependency[Runtime],
    approvals: NamedDependency[ApprovalService],
    decisions: NamedDependency[DecisionService],
) -> ApprovalRecord:
    body = await read_json(request, ApprovalBody)
    approvals.check_uses(body.uses)
    await acting_person(request, runtime, lambda: body.organisation, body.subject.id, "subject")
    check = CheckRequest(
        organisation=body.organisation,
        subject=body.subject,
        resource=body.resource,
        action=body.action,
        at=body.at,
        context=body.context,
    )
    question = question_of(decisions.policies, check, request_id_of(request.scope))
    return await asyncio.to_thread(approvals.open_for, question, body.comment, body.uses, body.at)


@get(
    "/v1/approvals",
    tags=["approvals"],
    summary="Approvals; with approver=, that person's inbox",
    sync_to_thread=True,
    responses=answers({}, *DECIDE, 404, 503),
)
def list_approvals(
    approvals: NamedDependency[ApprovalService],
    organisation: FromQuery[str | None] = None,
    approver: Annotated[
        str | None, Parameter(description="A person: approvals waiting at a post they hold now")
    ] = None,
    status: Annotated[str | None, Parameter(description="pending, approved or rejected")] = None,
    requester: FromQuery[str | None] = None,
    limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
) -> Approvals:
    return Approvals(approvals.list(organisation, approver, status, requester, limit))


@get(
    "/v1/approvals/{approval_id:str}",
    tags=["approvals"],
    summary="One approval with its history",
    sync_to_thread=True,
    responses=answers({}, *DECIDE, 404, 503),
)
def get_approval(approvals: NamedDependency[ApprovalService], approval_id: FromPath[str]) -> ApprovalRecord:
    return approvals.get(approval_id)


async def _decide(
    request: Request, runtime: Runtime, approvals: ApprovalService, approval_id: str, approve: bool
) -> ApprovalRecord:
    body = await read_json(request, DecideBody)
    person = await acting_person(request, runtime, lambda: approvals.organisation_of(approval_id), body.person)
    return await asyncio.to_thread(approvals.decide, approval_id, person, approve, body.comment)


@post(
    "/v1/approvals/{approval_id:str}/approve",
    status_code=200,
    tags=["approvals"],
    summary="Approve (an eligible approver only)",
    responses=answers({}, *DECIDE, 404, 409, 413, 503),
    operation_class=takes(DecideBody),
)
async def approve(
    request: Request,
    runtime: NamedDependency[Runtime],
    approvals: NamedDependency[ApprovalService],
    approval_id: FromPath[str],
) -> ApprovalRecord:
    return await _decide(request, runtime, approvals, approval_id, True)


@post(
    "/v1/approvals/{approval_id:str}/reject",
    status_code=200,
    tags=["approvals"],
    summary="Reject (an eligible approver only)",
    responses=answers({}, *DECIDE, 404, 409, 413, 503),
    operation_class=takes(DecideBody),
)
async def reject(
    request: Request,
    runtime: NamedDependency[Runtime],
    approvals: NamedDependency[ApprovalService],
    approval_id: FromPath[str],
) -> ApprovalRecord:
    return await _decide(request, runtime, approvals, approval_id, False)


ROUTES = [open_approval, list_approvals, get_approval, approve, reject]
