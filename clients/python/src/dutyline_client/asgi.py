"""Enforcement for ASGI applications: Litestar, Starlette and FastAPI (docs/clients.md). Importing no framework
until one is used. The check needs the route's function and path parameters, so it runs once the framework has
routed the request:

- Litestar runs its middleware per route handler, after routing: `Litestar(..., middleware=[dutyline_middleware(
  enforcer)])` (or `DefineMiddleware(DutylineMiddleware, enforcer=enforcer)`) reads the handler from the scope.
- Starlette runs its middleware before routing: `Starlette(..., middleware=[Middleware(DutylineMiddleware,
  enforcer=enforcer)])` wraps each marked route (`protect`) when the app first serves, and those wrappers check;
  `protect(app, enforcer)` does the same at once.
- FastAPI routes included routers its own way: an app-wide dependency, `FastAPI(dependencies=[Depends(enforcing(
  enforcer))], exception_handlers={Refused: refused_response})`, which FastAPI runs for every route, included
  routers' too. `protect` refuses a FastAPI app rather than miss a route.

Each route's function is marked with `@requires(...)` beneath the route decorator; unmarked routes pass untouched.
The allowing `CheckResult` is left in the request's state as `dutyline` (`request.state.dutyline`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from dutyline_client.enforce import AsyncEnforcer, Incoming, Refusal, Requirement, requirement_of, too_large

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
        self._protected = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        requirement = self.requirement
        if requirement is None and "route_handler" not in scope and not self._protected:
            # Before routing (Starlette, FastAPI): the routes check, once wrapped. Nothing is awaited here, so no
            # other request sees them half wrapped.
            protect(scope.get("app"), self.enforcer)
            self._protected = True
        if requirement is None and scope["type"] == "http":
            requirement = requirement_of(scope.get("route_handler"), scope.get("endpoint"))
        if requirement is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        content = b""
        if requirement.reads_body:
            buffered = await _buffered(receive, self.enforcer.max_body)
            if buffered is None:
                await _refuse(send, too_large(self.enforcer.max_body))
                return
            content, receive = buffered
        outcome = await self.enforcer.enforce(requirement, _incoming(scope, content))
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
    `@requires`, where Starlette has routed the request and set its path parameters; once each. Routes added after
    it are not protected: prefer the app-level `DutylineMiddleware`, which calls it when the app first serves."""
    if type(app).__module__.split(".")[0] == "fastapi":
        # FastAPI serves an included router's routes through apps of its own, which no wrapper here would reach
        raise TypeError("FastAPI: enforce with FastAPI(dependencies=[Depends(enforcing(enforcer))], ...)")
    for route in getattr(app, "routes", []):
        requirement = requirement_of(getattr(route, "endpoint", None))
        if requirement is None:
            protect(route, enforcer)  # a mount's routes, if it has any
        elif not isinstance(route.app, DutylineMiddleware):
            route.app = DutylineMiddleware(route.app, enforcer, requirement)


class Refused(Exception):
    """Raised by the FastAPI dependency (`enforcing`) instead of the route; `refused_response` answers it."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


def enforcing(enforcer: AsyncEnforcer) -> Callable[..., Awaitable[None]]:
    """FastAPI: a dependency enforcing the `@requires` of the routed endpoint, for the app's `dependencies`."""
    from starlette.requests import Request

    async def enforce(request: Request) -> None:
        scope = request.scope
        requirement = requirement_of(scope.get("endpoint"), getattr(scope.get("route"), "endpoint", None))
        if requirement is None:
            return
        content = b""
        if requirement.reads_body:
            if int(request.headers.get("content-length") or 0) > enforcer.max_body:
                raise Refused(too_large(enforcer.max_body))
            content = await request.body()  # FastAPI keeps it for the route
        outcome = await enforcer.enforce(requirement, _incoming(scope, content))
        if isinstance(outcome, Refusal):
            raise Refused(outcome)
        request.state.dutyline = outcome

    # FastAPI reads what to inject from the signature; this module's annotations are text it could not resolve
    request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request)
    enforce.__signature__ = inspect.Signature([request], return_annotation=None)  # type: ignore[attr-defined]
    return enforce


async def refused_response(request: Any, refused: Exception) -> Any:
    """FastAPI's exception handler for `Refused`: the refusal, as the other adapters answer it."""
    from starlette.responses import Response

    refusal = refused.refusal if isinstance(refused, Refused) else None
    if refusal is None:
        raise refused
    return Response(refusal.encode(), status_code=refusal.status, media_type="application/json")


def _incoming(scope: Scope, content: bytes) -> Incoming:
    return Incoming(
        path_params=scope.get("path_params") or {},
        query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)[::-1]),
        headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])},
        body=content,
        native=scope,
    )


async def _buffered(receive: Receive, limit: int) -> tuple[bytes, Receive] | None:
    """Read the whole body, and a `receive` that hands it to the app as if unread; None once it passes `limit`
    bytes (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
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
