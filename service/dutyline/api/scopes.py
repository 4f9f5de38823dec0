"""One guard on every route of the decision API: a caller sees and acts on only the organisations it reaches.

The caller's reach (`services.reach`) is set for the request by `api/auth.py`; this guard checks every
organisation the request names, wherever it names it, before the handler runs:

- a path parameter `org` or `org_id` (AuthZEN per organisation, queries, usage): 403 outside the reach;
- a query parameter `organisation`, each value given: 403 outside; a route that takes one (the lists: decisions,
  approvals, cases, notifications) needs one from a caller that does not reach every organisation (400), so a
  list never mixes in another organisation's items;
- a record found by id (`approval_id`, `case_id`, an access request's `task_id`): 404 outside, with the same message as a missing one, so that
  ids of other organisations cannot be probed;
- the body's `organisation` on routes that say so (`opt={"organisation": "body"}`: opening a case): 403 outside.

Decisions (`/v1/check`, `/v1/checks`, AuthZEN, opening an approval) are checked where their organisation is
resolved (`services.decisions.resolve_organisation`), so one inferred from the subject is checked as well.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from dutyline.api.body import decode, read_body
from dutyline.errors import Invalid, Issue, NotFound
from dutyline.runtime import Runtime
from dutyline.services.reach import CURRENT

PATH_ORGANISATION = ("org", "org_id")
# Path parameter → (what the record is called, how to find its organisation).
RECORDS: dict[str, tuple[str, Callable[[Runtime, str], str]]] = {
    "approval_id": ("approval", lambda runtime, ident: runtime.approvals.organisation_of(ident)),
    "case_id": ("case", lambda runtime, ident: runtime.cases.organisation_of(ident)),
    "task_id": ("task", lambda runtime, ident: runtime.access_requests.organisation_of(ident)),
}
IN_BODY = {"organisation": "body"}  # the `opt` of a route whose body names its organisation


class _Named(msgspec.Struct):
    organisation: str


async def within_reach(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """The guard (see the module's docstring). Free for a caller that reaches every organisation."""
    reach = CURRENT.get()
    if reach.organisations is None:
        return
    params = connection.path_params
    for name in PATH_ORGANISATION:
        if name in params:
            reach.require(params[name], name)
    runtime: Runtime = connection.app.state.runtime
    for name, (kind, organisation_of) in RECORDS.items():
        if name in params:
            ident = params[name]
            if not reach.admits(await asyncio.to_thread(organisation_of, runtime, ident)):
                raise NotFound(f"{kind} {ident!r} not found")
    named = connection.query_params.getall("organisation", [])
    for value in named:
        reach.require(value, "organisation")
    if not named and "organisation" in handler.parsed_fn_signature.parameters:
        raise Invalid(
            f"organisation: required from {reach.holder}, which reaches only {reach.shown()}",
            [Issue("<request>", 0, "organisation", "required: name one of the organisations you reach")],
        )
    if handler.opt.get("organisation") == "body":
        body = decode(await read_body(Request(connection.scope, connection.receive)), _Named)
        reach.require(body.organisation, "organisation")
