"""The admin API's door: who is calling (the `caller` dependency) and what they may do (the `requires` guard).

A route says what it needs where it is declared:

    @get("/admin/orgs/{org_id:str}/versions", guards=[requires(AdminPermission.ORG_CHART_READ)])
    async def versions(org_id: FromPath[str], versions: Versions, caller: Caller) -> ...

The guard authenticates the request (a bearer token, or a console session with its CSRF token on a state-changing
request) and asks the admin policy for the permission in the organisation the path names (`org_id`, or another
parameter, or every organisation with `organisation=None`). Authentication happens once per request: the caller is
kept in the request's scope, where the `caller` dependency finds it. A route whose permission depends on its body or
on a stored record (approving a change of some kind) takes `caller` and asks `AccessService.require` itself.

Services reach handlers as dependencies (`DEPENDENCIES`, by the runtime attribute's name: `editor: Editor`), not
through `state.runtime`. The decision hot path (`api/check.py`, `api/authzen.py`) reads the runtime from the app's
state directly: a dependency costs a few µs per request there, which the benchmarks see.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, cast

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import Provide
from litestar.handlers import BaseRouteHandler

from dutyline.api.auth import authenticated, runtime_of
from dutyline.engines.admin_policy import ALL, AdminPermission
from dutyline.runtime import Runtime
from dutyline.services.access import Caller

Guard = Callable[[ASGIConnection, BaseRouteHandler], Coroutine[Any, Any, None]]


def requires(permission: AdminPermission, organisation: str | None = "org_id") -> Guard:
    """A guard: the caller holds `permission` in the organisation named by the path parameter `organisation`
    (None: in every organisation, `*`)."""

    async def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        caller = await authenticated(connection)
        where = ALL if organisation is None else connection.path_params[organisation]
        runtime_of(connection).access.require(caller, permission, where)

    guard.__name__ = guard.__qualname__ = f"requires_{permission.name.lower()}"
    return guard


async def signed_in(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """A guard for what any authenticated caller may do with its own session, user and tokens."""
    await authenticated(connection)


async def _caller(request: Request) -> Caller:
    return await authenticated(request)


def _runtime(state: State) -> Runtime:
    return cast("Runtime", state.runtime)


def _service(name: str) -> Provide:
    def provide(state: State) -> Any:
        return getattr(state.runtime, name)

    provide.__name__ = f"provide_{name}"
    return Provide(provide, sync_to_thread=False)


# Every handler may ask for these runtime attributes by name (the services, and the page tokens' key). `caller`
# authenticates when no guard has done so yet.
SERVICES = (
    "access",
    "approvals",
    "audit_trail",
    "cases",
    "decisions",
    "editor",
    "ledger",
    "listings",
    "log_reader",
    "org_search",
    "outbox",
    "overview",
    "page_key",
    "policies",
    "queries",
    "versions",
    "waits",
)
DEPENDENCIES: dict[str, Provide] = {
    "caller": Provide(_caller),
    "runtime": Provide(_runtime, sync_to_thread=False),
    **{name: _service(name) for name in SERVICES},
}
