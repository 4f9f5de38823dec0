"""`GET /v1/changes`: the change stream, as server-sent events (the use case is `services.changes`).

Behind the decision API's door like every /v1 route: a token or console session when DUTYLINE_REQUIRE_AUTH is on,
and the caller's reach (`api/scopes.py`): a token issued for some organisations hears only theirs (`organisation`
narrows it further; one outside the reach is a 403). What is checked before the stream starts is answered as a
plain error (JSON): a bad `since` or Last-Event-ID (400, naming it), too many streams open (503).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from dutyline.api.auth import COOKIE, bearer
from dutyline.api.openapi import DECIDE, answers
from dutyline.engines.admin_policy import AdminPermission
from dutyline.errors import Invalid, Issue
from dutyline.runtime import Runtime
from dutyline.services.access import Caller
from dutyline.services.changes import MAX_VERSION, Event, PolicyChange
from dutyline.services.reach import CURRENT

# How long an EventSource waits before it reconnects after the stream ends (milliseconds; sent once).
RECONNECT_MS = 1000
_ENCODE = msgspec.json.Encoder()

DESCRIPTION = """Server-sent events (`text/event-stream`), one per new policy version, from this replica and every
other one on the same database. Each `change` event has the policy version as its `id` and a `PolicyChange` as its
data: when it was stored, the organisation, the document (the organisation's or a rule pack's) and the entities it
added, removed or changed. A `ready` event (data `{"policy_version": N}`, id N) says the caller has every change up to
N: at once when the stream starts without `since`, else once the replay is done. Comments (`: keep-alive`) come every
DUTYLINE_CHANGES_KEEPALIVE seconds while nothing happens.

Resume with `since=V` (every change after V; 0 for the whole history) or the `Last-Event-ID` header (which an
EventSource sends by itself when it reconnects; it wins over `since`). A caller whose token reaches some
organisations only hears theirs. `author` and `comment` are sent only to a caller that may read the organisation's
version history (`org_chart:read`, or `rule_pack:read` for a rule pack, in the admin API)."""

Since = Annotated[
    int | None,
    QueryParameter(
        ge=0,
        le=MAX_VERSION,
        description="Replay every change after this policy version first (0: the whole history); default: live only.",
    ),
]
Organisations = Annotated[
    list[str] | None,
    QueryParameter(name="organisation", description="Only these organisations' changes (repeat it for several)."),
]
LastEventId = Annotated[
    str | None,
    HeaderParameter(name="Last-Event-ID", description="The id of the last event received: resume after it."),
]


@get(
    "/v1/changes",
    tags=["changes"],
    summary="The change stream: each new policy version, as server-sent events",
    description=DESCRIPTION,
    responses=answers({200: PolicyChange}, *DECIDE, 503, media_type="text/event-stream"),
)
async def changes(
    request: Request,
    runtime: NamedDependency[Runtime],
    since: Since = None,
    organisations: Organisations = None,
    last_event_id: LastEventId = None,
) -> ServerSentEvent:
    feed = runtime.changes
    field, start = "since", since
    if last_event_id is not None and last_event_id.strip():
        field, start = "Last-Event-ID", _event_id(last_event_id)
    start = await asyncio.to_thread(feed.starting_point, start, field)
    reach = CURRENT.get()
    heard = frozenset(organisations) if organisations else reach.organisations
    if organisations and reach.organisations is not None:  # the guard refused any outside the reach already
        heard = frozenset(organisations) & reach.organisations
    caller = await _admin_caller(request, runtime)
    readable: dict[tuple[str, str], bool] = {}

    def authors(organisation: str, kind: str) -> bool:
        if caller is None:
            return False
        key = (organisation, kind)
        if key not in readable:
            permission = AdminPermission.ORG_CHART_READ if kind == "org" else AdminPermission.RULE_PACK_READ
            readable[key] = runtime.access.allowed(caller, permission, organisation)
        return readable[key]

    # Credentials that stood when the stream opened are looked at again at each keep-alive (those the server took
    # no notice of, anonymous on loopback, are not).
    signed_in = await _still_signed_in(request, runtime) and _credentials(request)

    async def alive() -> bool:
        return not signed_in or await _still_signed_in(request, runtime)

    # Anonymous callers (DUTYLINE_REQUIRE_AUTH off) are told apart by their address.
    holder = (
        reach.holder if _credentials(request) else f"{reach.holder} at {request.client.host if request.client else '?'}"
    )
    slot = feed.reserve(holder)
    events = feed.events(slot, start, heard, authors, alive)
    return ServerSentEvent(_messages(events), headers={"Cache-Control": "no-store"})


async def _messages(events: AsyncIterator[object]) -> AsyncIterator[ServerSentEventMessage]:
    retry: int | None = RECONNECT_MS
    async for item in events:
        if isinstance(item, Event):
            data = _ENCODE.encode(item.data).decode()
            yield ServerSentEventMessage(data=data, event=item.name, id=item.id, retry=retry)
        else:
            yield ServerSentEventMessage(data=None, comment="keep-alive", retry=retry)
        retry = None


def _event_id(text: str) -> int:
    """A Last-Event-ID: a policy version this stream gave (digits only)."""
    value = text.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 19 or int(value) > MAX_VERSION:
        raise Invalid(
            f"Last-Event-ID: not a policy version: {text[:40]!r} (the id of an event of this stream)",
            [Issue("<request>", 0, "Last-Event-ID", "a whole number from 0")],
        )
    return int(value)


async def _admin_caller(request: Request, runtime: Runtime) -> Caller | None:
    """The caller as the admin API knows it (its admin roles say whether it may read history), or None: anonymous,
    or credentials that are not the admin API's (a decide token reads no history)."""
    token = bearer(request.headers.get("authorization"))
    if token is not None:
        caller = await asyncio.to_thread(runtime.access.token_caller, token)
        return caller if caller is not None and caller.scope != "decide" else None
    session = request.cookies.get(COOKIE)
    if session:
        return await asyncio.to_thread(runtime.access.session_caller, session)
    return None


def _credentials(request: Request) -> bool:
    return bearer(request.headers.get("authorization")) is not None or bool(request.cookies.get(COOKIE))


async def _still_signed_in(request: Request, runtime: Runtime) -> bool:
    """Whether the credentials the stream was opened with still stand (a revoked token, an ended session: no)."""
    token = bearer(request.headers.get("authorization"))
    if token is not None:
        return await asyncio.to_thread(runtime.access.token_caller, token) is not None
    session = request.cookies.get(COOKIE)
    if session:
        return await asyncio.to_thread(runtime.access.session_caller, session) is not None
    return True


ROUTES = [changes]
STREAMS = ["/v1/changes"]  # paths answered as streams (not compressed)
