"""Reading the decision log."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromQuery, Parameter

from dutyline.api.openapi import DECIDE, answers
from dutyline.api.paging import LogPosition, PageTokens, log_cursor, log_position
from dutyline.orgmodel.windows import when
from dutyline.services.log_reader import LogFilter, LoggedDecision, LogReader

Simulated = Literal["exclude", "include", "only"]
SIMULATED = "Decisions asked to try a question out (the console's simulator): left out unless `include` or `only`"


class DecisionLog(msgspec.Struct, forbid_unknown_fields=True):
    """A page of the decision log, newest first; `next_token` is empty on the last page."""

    items: list[LoggedDecision]
    next_token: str


@get(
    "/v1/decisions",
    tags=["decisions"],
    summary="The decision log, newest first",
    sync_to_thread=True,
    responses=answers({}, *DECIDE, 503),
)
def decisions(
    page_key: NamedDependency[bytes],
    log_reader: NamedDependency[LogReader],
    organisation: FromQuery[str | None] = None,
    subject: FromQuery[str | None] = None,
    resource_type: FromQuery[str | None] = None,
    resource_id: FromQuery[str | None] = None,
    action: FromQuery[str | None] = None,
    outcome: FromQuery[str | None] = None,
    request_id: FromQuery[str | None] = None,
    since: Annotated[str | None, Parameter(description="ISO date-time, inclusive")] = None,
    until: Annotated[str | None, Parameter(description="ISO date-time, exclusive")] = None,
    page_token: FromQuery[str | None] = None,
    limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
    simulated: Annotated[Simulated, Parameter(description=SIMULATED)] = "exclude",
) -> DecisionLog:
    where = LogFilter(
        organisation,
        subject,
        resource_type,
        resource_id,
        action,
        outcome,
        (when(since, None, "since", "an ISO date-time") if since is not None else None),
        (when(until, None, "until", "an ISO date-time") if until is not None else None),
        request_id,
        simulated,
    )
    tokens = PageTokens(page_key, "/v1/decisions", where, "page_token")
    position = tokens.read(page_token, LogPosition)
    page = log_reader.page(where, limit, log_cursor(position) if position is not None else None)
    next_token = tokens.issue(log_position(page.following)) if page.following is not None else ""
    return DecisionLog(page.items, next_token)


ROUTES = [decisions]
