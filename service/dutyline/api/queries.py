"""Questions about the policy as a whole: what a person may do, who may do something, the reporting line."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Annotated, Any

import msgspec
from litestar import Response, get
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, Parameter

from dutyline.api.openapi import DECIDE, answers
from dutyline.api.paging import ListingPosition, PageTokens
from dutyline.api.schemas import (
    HeldPost,
    LineHolder,
    LineStep,
    NamedPost,
    PersonAllowed,
    PersonPermissions,
    ReportingLine,
    Texts,
    WhoMay,
)
from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.decision import Check
from dutyline.engines.queries import holders_of, permissions_of, reporting_line
from dutyline.errors import Invalid, Issue, NotFound
from dutyline.orgmodel.windows import instant, zone
from dutyline.runtime import Runtime
from dutyline.services.listings import subjects_to_decide, who_may

_ENCODE = msgspec.json.Encoder()
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


def _json(payload: Any) -> Response[bytes]:
    return Response(_ENCODE.encode(payload), media_type="application/json")


def _org(runtime: Runtime, org_id: str) -> CompiledOrg:
    org = runtime.policies.current.get(org_id)
    if org is None:
        raise NotFound(f"organisation {org_id!r} not found")
    return org


async def _org_as_of(runtime: Runtime, org_id: str, as_of: str | None) -> tuple[CompiledOrg, float | None]:
    """The organisation now, or (with `as_of`) as it was in force then, from the version history."""
    if as_of is None:
        return _org(runtime, org_id), None
    current = runtime.policies.current.get(org_id)
    try:
        moment = instant(as_of, zone(current.document.timezone) if current is not None else zone("UTC"))
    except ValueError:
        raise Invalid(
            f"as_of: {as_of!r} is not a date or date-time", [Issue("<request>", 0, "as_of", "not a date-time")]
        ) from None
    when = dt.datetime.fromtimestamp(moment, dt.UTC)
    past = await asyncio.to_thread(runtime.versions.compiled_at, org_id, when)
    if past is None:
        raise NotFound(f"organisation {org_id!r} did not exist at {when.isoformat()}")
    return past, moment


def _at(org: CompiledOrg, at: str | None) -> float:
    if at is None:
        return time.time()
    try:
        return instant(at, zone(org.document.timezone))
    except ValueError:
        raise Invalid(
            f"at: {at!r} is not a date or date-time", [Issue("<request>", 0, "at", "not a date-time")]
        ) from None


def _names(org: CompiledOrg, kind: str, ident: str) -> Texts:
    for entry in getattr(org.document, kind):
        if entry.id == ident:
            return Texts(entry.name.zh, entry.name.en)
    return Texts(ident, ident)


@get(
    "/v1/orgs/{org_id:str}/people/{person:str}/permissions",
    tags=["queries"],
    summary="What a person may do",
    responses=answers({200: PersonPermissions}, *DECIDE, 404, 503),
)
async def person_permissions(
    state: State, org_id: FromPath[str], person: FromPath[str], at: At = None, as_of: AsOf = None
) -> Response[bytes]:
    runtime: Runtime = state.runtime
    org, then = await _org_as_of(runtime, org_id, as_of)
    person_id = org.identities.get(person)
    if person_id is None:
        raise NotFound(f"person {person!r} not found in {org_id!r}")
    moment = _at(org, at) if at is not None or then is None else then
    held = permissions_of(org, person_id, moment)
    version = org.version if then is not None else runtime.policies.current.version
    return _json(PersonPermissions(org.id, person_id, version, moment, held))


@get(
    "/v1/orgs/{org_id:str}/who",
    tags=["queries"],
    summary="Who may do an action on a resource (people and posts)",
    responses=answers({200: WhoMay}, *DECIDE, 404, 503),
)
async def who(
    state: State,
    org_id: FromPath[str],
    resource: Annotated[str, Parameter(description="Resource type")],
    action: FromQuery[str],
    resource_id: FromQuery[str | None] = None,
    at: At = None,
    page_token: FromQuery[str | None] = None,
    limit: Limit = 100,
    as_of: AsOf = None,
) -> Response[bytes]:
    runtime: Runtime = state.runtime
    org, then = await _org_as_of(runtime, org_id, as_of)
    if resource not in org.actions or action not in org.actions[resource]:
        raise Invalid(
            f"{resource!r} has no action {action!r} in {org_id!r}'s catalogue",
            [Issue("<request>", 0, "resource" if resource not in org.actions else "action", "not in the catalogue")],
        )
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
    moment = token.at if token is not None else _at(org, at) if at is not None or then is None else then
    check = Check("", resource, action, moment, resource_id=resource_id)
    key = runtime.listings.key(org, "who", check)
    listing = await runtime.listings.get(key, subjects_to_decide(org, check), lambda: who_may(org, check))
    page, next_token = tokens.page_of(listing.ids, token, limit, moment)
    return _json(
        WhoMay(
            organisation=org.id,
            policy_version=org.version if then is not None else runtime.policies.current.version,
            resource=resource,
            action=action,
            people=[
                PersonAllowed(
                    p,
                    [
                        HeldPost(a.post, a.kind, a.valid_from, a.valid_to)
                        for a in org.assignments[p]
                        if a.active(moment)
                    ],
                )
                for p in page
            ],
            posts=[NamedPost(p, Texts(zh, en)) for p, zh, en in listing.posts],
            total_people=len(listing.ids),
            next_token=next_token,
        )
    )


@get(
    "/v1/orgs/{org_id:str}/posts/{post:str}/reporting-line",
    tags=["queries"],
    summary="The posts above a post",
    responses=answers({200: ReportingLine}, *DECIDE, 404),
)
async def line(state: State, org_id: FromPath[str], post: FromPath[str], at: At = None) -> Response[bytes]:
    runtime: Runtime = state.runtime
    org = _org(runtime, org_id)
    if post not in org.posts:
        raise NotFound(f"post {post!r} not found in {org_id!r}")
    moment = _at(org, at)
    steps = reporting_line(org, post, moment)
    line = [
        LineStep(
            s.post,
            _names(org, "posts", s.post),
            [LineHolder(h.person, h.assignment.kind, h.assignment.valid_to) for h in s.holders],
            vacant=not s.holders,
        )
        for s in steps
    ]
    return _json(ReportingLine(org.id, post, [h.person for h in holders_of(org, post, moment)], line))


ROUTES = [person_permissions, who, line]
