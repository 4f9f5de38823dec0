"""Enforcement for ASGI applications: Litestar, Starlette and FastAPI (docs/clients.md). Plain ASGI, importing no
framework: the middleware runs once the framework has routed the request (it needs the route's function and path
parameters), which is where each framework puts it:

- Litestar: `Litestar(route_handlers=[...], middleware=[dutyline_middleware(enforcer)])` (Litestar runs its
  middleware per route handler, after routing);
- Starlette and FastAPI: `protect(app, enforcer)` once the routes are declared (it wraps each marked route).

Each route's function is marked with `@requires(...)` beneath the route decorator; unmarked routes pass untouched.
The allowing `CheckResult` is left in the request's state as `dutyline` (`request.state.dutyline`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from dutyline_client.enforce import AsyncEnforcer, Incoming, Refusal, Requirement, requirement_of

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class DutylineMiddleware:
    """Enforces `requirement` (or the one the routed function carries: Litestar's `route_handler`, Starlette's
    `endpoint` in the scope) before `app` runs."""

    def __init__(self, app: ASGIApp, enforcer: AsyncEnforcer, requirement: Requirement | None = None) -> None:
        self.app = app
        self.enforcer = enforcer
        self.requirement = requirement

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        requirement = self.requirement
        if requirement is None and scope["type"] == "http":
            requirement = requirement_of(scope.get("route_handler"), scope.get("endpoint"))
        if requirement is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        content = b""
        if requirement.reads_body:
            content, receive = await _buffered(receive)
        incoming = Incoming(
            path_params=scope.get("path_params") or {},
            query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)[::-1]),
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])},
            body=content,
            native=scope,
        )
        outcome = await self.enforcer.enforce(requirement, incoming)
        if isinstance(outcome, Refusal):
            await _refuse(send, outcome)
            return
        state = scope.setdefault("state", {})
        if isinstance(state, MutableMapping):
            state["dutyline"] = outcome
        await self.app(scope, receive, send)


def dutyline_middleware(enforcer: AsyncEnforcer) -> Callable[[ASGIApp], ASGIApp]:
    """Litestar's form of middleware: a function of the app it wraps."""

    def wrap(app: ASGIApp) -> ASGIApp:
        return DutylineMiddleware(app, enforcer)

    return wrap


def protect(app: Any, enforcer: AsyncEnforcer) -> None:
    """Starlette and FastAPI: wrap each route (of `app`, a router, or a mount, recursively) whose endpoint carries
    `@requires`, where Starlette has routed the request and set its path parameters. Call it after the routes are
    declared; routes added later are not protected."""
    for route in getattr(app, "routes", []):
        requirement = requirement_of(getattr(route, "endpoint", None))
        if requirement is not None:
            route.app = DutylineMiddleware(route.app, enforcer, requirement)
        elif getattr(route, "routes", None):
            protect(route, enforcer)


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """Read the whole body, and a `receive` that hands it to the app as if unread."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    content = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": content, "more_body": False}
        return await receive()

    return content, replay


async def _refuse(send: Send, refusal: Refusal) -> None:
    content = refusal.encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
