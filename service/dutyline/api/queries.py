"""Questions about the policy as a whole: what a person may do, who may do something, the reporting line.

The use cases are `services.queries`; here are their routes and the listing's page tokens.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, Parameter

from dutyline.api.openapi import DECIDE, answers
from dutyline.api.paging import ListingPosition, PageTokens
from dutyline.runtime import Runtime
from dutyline.services.queries import Asked, PersonPermissions, Queries, ReportingLine, WhoMay

At = Annotated[
    str | None, Parameter(description="Date or date-time (organisation's zone unless an offset is given); default now.")
]
AsOf = Annotated[
    str | None,
    Parameter(
        description="Answer on the organisation as it was in force then (from the version history); `at` defaults to it."
    ),
]
Limit = Annotated[int, Parameter(ge=1, le=1000)]


@get(
    "/v1/orgs/{org_id:str}/people/{person:str}/permissions",
    tags=["queries"],
    summary="What a person may do",
    responses=answers({200: PersonPermissions}, *DECIDE, 404, 503),
)
async def person_permissions(
    queries: NamedDependency[Queries],
    org_id: FromPath[str],
    person: FromPath[str],
    at: At = None,
    as_of: AsOf = None,
) -> PersonPermissions:
    asked = await _asked(queries, org_id, as_of)
    return queries.permissions(asked, person, at)


@get(
    "/v1/orgs/{org_id:str}/who",
    tags=["queries"],
    summary="Who may do an action on a resource (people and posts)",
    responses=answers({200: WhoMay}, *DECIDE, 404, 503),
)
async def who(
    queries: NamedDependency[Queries],
    runtime: NamedDependency[Runtime],
    org_id: FromPath[str],
    resource: Annotated[str, Parameter(description="Resource type")],
    action: FromQuery[str],
    resource_id: FromQuery[str | None] = None,
    at: At = None,
    page_token: FromQuery[str | None] = None,
    limit: Limit = 100,
    as_of: AsOf = None,
) -> WhoMay:
    asked = await _asked(queries, org_id, as_of)
    request = {
        "org": org_id,
        "resource": resource,
        "action": action,
        "resource_id": resource_id,
        "at": at,
        "as_of": as_of,
    }
    tokens = PageTokens(runtime.page_key, "/v1/orgs/{org}/who", request, "page_token")
    token = tokens.read(page_token, ListingPosition)
    # every page of a listing is asked about the instant of its first page (the token keeps it)
    found = await queries.who(asked, resource, action, resource_id, token.at if token is not None else asked.at(at))
    page, next_token = tokens.page_of(found.listing.ids, token, limit, found.at)
    return queries.who_page(found, page, next_token)


@get(
    "/v1/orgs/{org_id:str}/posts/{post:str}/reporting-line",
    tags=["queries"],
    summary="The posts above a post",
    responses=answers({200: ReportingLine}, *DECIDE, 404),
    sync_to_thread=False,  # in memory: the compiled organisation
)
def line(queries: NamedDependency[Queries], org_id: FromPath[str], post: FromPath[str], at: At = None) -> ReportingLine:
    return queries.reporting_line(org_id, post, at)


async def _asked(queries: Queries, org_id: str, as_of: str | None) -> Asked:
    """The organisation to answer on: `as_of` reads the version history, off the event loop."""
    if as_of is None:
        return queries.organisation(org_id)
    return await asyncio.to_thread(queries.organisation, org_id, as_of)


ROUTES = [person_permissions, who, line]
