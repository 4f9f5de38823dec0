"""Reading the decision log."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, cast

import msgspec
from litestar import Response, get
from litestar.datastructures import State
from litestar.params import FromQuery, Parameter

from dutyline.api.openapi import DECIDE, answers
from dutyline.api.paging import LogPosition, PageTokens, log_cursor, log_position
from dutyline.api.schemas import DecisionLog, LoggedApproval, LoggedDecision, LoggedRequest, PartName, TruncatedPart
from dutyline.errors import Invalid, Issue
from dutyline.runtime import Runtime
from dutyline.store.decision_log import LogFilter, query, requests_of

_ENCODE = msgspec.json.Encoder()

Simulated = Literal["exclude", "include", "only"]
SIMULATED = "Decisions asked to try a question out (the console's simulator): left out unless `include` or `only`"


def _time(name: str, value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(
            f"{name}: {value!r} is not an ISO date-time", [Issue("<request>", 0, name, "not a date-time")]
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@get(
    "/v1/decisions",
    tags=["decisions"],
    summary="The decision log, newest first",
    sync_to_thread=True,
    responses=answers({200: DecisionLog}, *DECIDE, 503),
)
def decisions(
    state: State,
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
) -> Response[bytes]:
    runtime: Runtime = state.runtime
    where = LogFilter(
        organisation,
        subject,
        resource_type,
        resource_id,
        action,
        outcome,
        _time("since", since),
        _time("until", until),
        request_id,
        simulated,
    )
    tokens = PageTokens(runtime.page_key, "/v1/decisions", where, "page_token")
    position = tokens.read(page_token, LogPosition)
    with runtime.sessions() as session:
        rows, following = query(session, where, limit, log_cursor(position) if position is not None else None)
        requests = requests_of(session, rows)
    next_token = tokens.issue(log_position(following)) if following is not None else ""
    logged = runtime.versions.logged(rows)
    items = [
        LoggedDecision(
            decision_id=r.id,
            decided_at=r.decided_at.isoformat(),
            organisation=r.organisation,
            subject_type=r.subject_type,
            subject=r.subject,
            resource_type=r.resource_type,
            resource_id=r.resource_id,
            action=r.action,
            decision=r.outcome,
            code=r.code,
            reasons=logged[i].reasons,
            rules=logged[i].rules,
            approval=msgspec.convert(logged[i].approval, LoggedApproval) if logged[i].approval else None,
            request=LoggedRequest(
                q.subject_properties,
                q.resource_properties,
                q.context,
                q.at,
                [TruncatedPart(cast("PartName", t.part), t.bytes, t.kept_bytes, t.sha256) for t in q.truncated],
            ),
            policy_version=r.policy_version,
            latency_us=r.latency_us,
            request_id=r.request_id,
            approval_id=r.approval_id,
            simulated=r.simulated,
        )
        for i, (r, q) in enumerate(zip(rows, requests))
    ]
    return Response(_ENCODE.encode(DecisionLog(items, next_token)), media_type="application/json")


ROUTES = [decisions]
