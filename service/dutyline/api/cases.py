"""Cases over HTTP: open, list, read with history, resolve; and the notification outbox."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, Parameter

from dutyline.api.auth import acting_person
from dutyline.api.body import read_json
from dutyline.api.check import Text
from dutyline.api.openapi import DECIDE, answers, takes
from dutyline.api.scopes import IN_BODY
from dutyline.orgmodel.windows import when
from dutyline.runtime import Runtime
from dutyline.services.cases import Case, CaseRecord, CaseService
from dutyline.services.notifications import Outbox, OutboxNotification

Comment = Annotated[str, msgspec.Meta(max_length=4000)]


class Cases(msgspec.Struct, forbid_unknown_fields=True):
    items: list[Case]


class Notifications(msgspec.Struct, forbid_unknown_fields=True):
    items: list[OutboxNotification]


class CaseBody(msgspec.Struct):
    organisation: Text
    type: Text
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    subject: Text | None = None
    data: dict[str, Any] = {}


class ResolveBody(msgspec.Struct):
    person: Text | None = None  # attested by a bearer token's client; a console session acts as its linked person
    comment: Comment = ""


@post(
    "/v1/cases",
    status_code=201,
    tags=["cases"],
    summary="Open a case, assigned to its type's owner post",
    responses=answers({}, *DECIDE, 404, 413, 503),
    operation_class=takes(CaseBody),
    opt=IN_BODY,
)
async def open_case(request: Request, cases: NamedDependency[CaseService]) -> CaseRecord:
    body = await read_json(request, CaseBody)
    return await asyncio.to_thread(cases.open, body.organisation, body.type, body.title, body.subject, body.data)


@get(
    "/v1/cases",
    tags=["cases"],
    summary="Cases, newest first",
    sync_to_thread=True,
    responses=answers({}, *DECIDE, 503),
)
def list_cases(
    cases: NamedDependency[CaseService],
    organisation: FromQuery[str | None] = None,
    status: Annotated[str | None, Parameter(description="open, escalated or resolved")] = None,
    post: Annotated[str | None, Parameter(description="Cases assigned to this post now")] = None,
    limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
) -> Cases:
    return Cases(cases.list(organisation, status, post, limit))


@get(
    "/v1/cases/{case_id:str}",
    tags=["cases"],
    summary="One case with its event history",
    sync_to_thread=True,
    responses=answers({}, *DECIDE, 404, 503),
)
def get_case(cases: NamedDependency[CaseService], case_id: FromPath[str]) -> CaseRecord:
    return cases.get(case_id)


@post(
    "/v1/cases/{case_id:str}/resolve",
    status_code=200,
    tags=["cases"],
    summary="Resolve a case",
    responses=answers({}, *DECIDE, 404, 409, 413, 503),
    operation_class=takes(ResolveBody),
)
async def resolve_case(
    request: Request, runtime: NamedDependency[Runtime], cases: NamedDependency[CaseService], case_id: FromPath[str]
) -> CaseRecord:
    body = await read_json(request, ResolveBody)
    person = await acting_person(request, runtime, lambda: cases.organisation_of(case_id), body.person)
    return await asyncio.to_thread(cases.resolve, case_id, person, body.comment)


@get(
    "/v1/notifications",
    tags=["cases"],
    summary="The notification outbox, oldest first",
    sync_to_thread=True,
    responses=answers({}, *DECIDE, 503),
)
def notifications(
    outbox: NamedDependency[Outbox],
    organisation: FromQuery[str | None] = None,
    post: FromQuery[str | None] = None,
    since: Annotated[str | None, Parameter(description="ISO date-time, inclusive")] = None,
    after_id: Annotated[
        int | None, Parameter(description="Only notifications after this id (paging)", ge=0, le=2**31 - 1)
    ] = None,
    limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
) -> Notifications:
    return Notifications(
        outbox.list(
            organisation,
            post,
            (when(since, None, "since", "an ISO date-time") if since is not None else None),
            after_id,
            limit,
        )
    )


ROUTES = [open_case, list_cases, get_case, resolve_case, notifications]
