"""Who is calling: console sessions (cookie + CSRF header) and API tokens (`Authorization: Bearer`).

An /admin request is authenticated once (`authenticated`, asked by the guards and the `caller` dependency of
`api/guards.py`). The decision endpoints ask for a token or a console session
(`DecisionAuthMiddleware`) when DUTYLINE_REQUIRE_AUTH is on, and, with it off, from any request that does not
reach the server on a loopback address unless DUTYLINE_ALLOW_ANONYMOUS is on (`anonymous_mode`); the middleware
then sets the caller's reach for the request (`services.reach`), which `api/scopes.py` and the decision service
check. With anonymous access allowed everywhere the app does not add it, so the decision path pays nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
from collections.abc import Callable
from typing import Any, Literal, cast

import msgspec
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, HTTPScope, Receive, Scope, Send

from dutyline.errors import Forbidden, Invalid, Issue, Unauthenticated
from dutyline.runtime import Runtime
from dutyline.services.access import Caller, Login, csrf_matches
from dutyline.services.reach import CURRENT, Reach
from dutyline.settings import Settings

COOKIE = "dutyline_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Paths of the decision API that DUTYLINE_REQUIRE_AUTH protects (metadata, health and metrics stay open).
DECISION_PREFIXES = ("/v1/", "/access/", "/orgs/")
NO_CSRF = "missing or wrong X-CSRF-Token: send the csrf_token from login or GET /admin/session"
EXPIRED = "the session has expired or was ended; log in again"
_CALLER = "dutyline.caller"  # where the authenticated caller is kept in the request's scope state


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    kind, _, value = authorization.partition(" ")
    return value.strip() or None if kind.lower() == "bearer" else None


def runtime_of(connection: ASGIConnection) -> Runtime:
    return cast("Runtime", connection.app.state.runtime)


async def authenticated(connection: ASGIConnection) -> Caller:
    """The request's authenticated admin caller: 401 without valid credentials; 403 for a decide-scoped token, and
    for a console session's state-changing request without the session's CSRF token in X-CSRF-Token. Once per
    request: the caller is kept in the request's scope state (the `requires` guard and the `caller` dependency of
    `api/guards.py` both ask)."""
    kept: dict[str, Any] = connection.scope.setdefault("state", {})
    caller = kept.get(_CALLER)
    if caller is None:
        caller = kept[_CALLER] = await _authenticate(connection, runtime_of(connection))
    return cast("Caller", caller)


async def _authenticate(connection: ASGIConnection, runtime: Runtime) -> Caller:
    token = bearer(connection.headers.get("authorization"))
    if token is not None:
        caller = await asyncio.to_thread(runtime.access.token_caller, token)
        if caller is None:
            raise Unauthenticated("the bearer token is unknown, expired or revoked")
        if caller.scope == "decide":  # not even reads of its own user, tokens or session (docs/admin-api.md)
            raise Forbidden("a decide token may call the decision API only, never the admin API")
        return caller
    session_token = connection.cookies.get(COOKIE)
    if not session_token:
        raise Unauthenticated("log in (POST /admin/login) or send Authorization: Bearer <token>")
    caller = await asyncio.to_thread(runtime.access.session_caller, session_token)
    if caller is None:
        raise Unauthenticated(EXPIRED)
    method = connection.scope.get("method", "GET")
    if method not in SAFE_METHODS and not csrf_matches(caller.csrf_token, connection.headers.get(CSRF_HEADER)):
        raise Forbidden(NO_CSRF)
    return caller


async def acting_person(
    request: Request, runtime: Runtime, organisation: Callable[[], str], claimed: str | None, field: str = "person"
) -> str:
    """Who a change to approvals or cases is made as. A console session (its cookie, and no bearer token) acts as
    the person its user is linked to in `organisation` (a callable: read only for a session): `claimed` may be
    left out, and naming anyone else is a 403 (`AccessService.acting_person`). A bearer token's client, or any
    caller when DUTYLINE_REQUIRE_AUTH is off and no cookie is sent, attests `claimed` itself (400 when missing).
    A cookie that is no (longer a) session is a 401 even with the setting off: only the console sends one."""
    session_token = None if bearer(request.headers.get("authorization")) else request.cookies.get(COOKIE)
    if not session_token:
        if claimed is None:
            raise Invalid(f"Object missing required field `{field}`", [Issue("<request>", 0, field, "required")])
        return claimed
    caller = runtime.access.cached_session_caller(session_token)
    if caller is None:
        caller = await asyncio.to_thread(runtime.access.session_caller, session_token)
    if caller is None:
        raise Unauthenticated(EXPIRED)
    user: Caller = caller
    return await asyncio.to_thread(lambda: runtime.access.acting_person(user, organisation(), claimed))


def is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded.split(",")[0].strip().lower() == "https"


def session_cookie(request: Request, login: Login) -> Cookie:
    max_age = max(0, int((login.expires_at - dt.datetime.now(dt.UTC)).total_seconds()))
    return Cookie(
        key=COOKIE,
        value=login.token,
        path="/",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
        max_age=max_age,
    )


def cleared_cookie(request: Request) -> Cookie:
    return Cookie(key=COOKIE, value="", path="/", httponly=True, samesite="strict", secure=is_https(request), max_age=0)


_ENCODE = msgspec.json.Encoder()


# Who may call the decision API without credentials: nobody; only requests that reach the server on a loopback
# address; or anyone (the middleware is then not added at all).
AnonymousMode = Literal["never", "loopback", "anyone"]


def anonymous_mode(settings: Settings) -> AnonymousMode:
    """DUTYLINE_REQUIRE_AUTH: never. Off, bound to an address other than loopback (0.0.0.0, ::, a LAN address):
    never, unless DUTYLINE_ALLOW_ANONYMOUS, which makes it anyone. Off and bound to loopback: loopback (a request
    that reaches the server on another address, say through a second listener, still needs credentials)."""
    if settings.require_auth:
        return "never"
    if settings.allow_anonymous:
        return "anyone"
    return "loopback" if is_loopback(settings.host) else "never"


def is_loopback(host: str | None) -> bool:
    """Whether `host` (an address, or `localhost`) is a loopback address; a name or anything else is not."""
    if host is None:
        return False
    if host.strip().lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


class DecisionAuthMiddleware:
    """The decision API needs a bearer token whose scopes include decide or admin, or a console session (the
    console's simulator, approvals and cases pages call it), unless `anonymous` lets the request through without.
    A session is ambient authority (the browser sends its cookie by itself), so a state-changing request with it
    needs the session's CSRF token, as on /admin. Answers are cached a few seconds, so the database is read once
    per token or session, not per request. The caller's reach is set for the rest of the request."""

    def __init__(self, app: ASGIApp, anonymous: AnonymousMode = "never") -> None:
        self.app = app
        self.anonymous = anonymous

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(DECISION_PREFIXES):
            await self.app(scope, receive, send)
            return
        if self.anonymous == "loopback" and _reached_locally(scope):
            await self.app(scope, receive, send)  # anonymous from this host: taken as before, credentials or not
            return
        outcome = await _caller_reach(scope)
        if isinstance(outcome, Reach):
            token = CURRENT.set(outcome)
            try:
                await self.app(scope, receive, send)
            finally:
                CURRENT.reset(token)
            return
        status, message = outcome
        body = _ENCODE.encode(
            {"status": status, "error": "unauthenticated" if status == 401 else "forbidden", "message": message}
        )
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="dutyline"'))
        await send(
            cast("HTTPResponseStartEvent", {"type": "http.response.start", "status": status, "headers": headers})
        )
        await send(cast("HTTPResponseBodyEvent", {"type": "http.response.body", "body": body}))


def _reached_locally(scope: Scope) -> bool:
    """Whether the request reached the server on a loopback address (or a Unix socket): it came from this host."""
    server = scope.get("server")
    if server is None:
        return False
    host, port = server[0], server[1]
    return port is None or is_loopback(host)


async def _caller_reach(scope: Scope) -> Reach | tuple[int, str]:
    """The reach of the request's caller, or why the decision API refuses it (status and message)."""
    runtime: Runtime = scope["app"].state.runtime
    token = bearer(_header(scope, b"authorization"))
    if token is not None:
        cached = runtime.access.cached_token_caller(token)
        caller = cached[0] if cached is not None else await asyncio.to_thread(runtime.access.token_caller, token)
        if caller is None:
            return 401, "the bearer token is unknown, expired or revoked"
        if not caller.may_decide:
            return 403, "this token may not call the decision API (it needs the decide or admin scope)"
        return caller.reach
    session_token = _cookie(scope, COOKIE)
    if session_token is None:
        if not runtime.settings.require_auth:
            return 401, (
                "this server requires Authorization: Bearer <token> or a console session: it is reached on an address "
                "other than loopback, and DUTYLINE_ALLOW_ANONYMOUS is off"
            )
        return 401, "this server requires Authorization: Bearer <token> or a console session (DUTYLINE_REQUIRE_AUTH)"
    caller = runtime.access.cached_session_caller(session_token)
    if caller is None:
        caller = await asyncio.to_thread(runtime.access.session_caller, session_token)
    if caller is None:
        return 401, EXPIRED
    given = _header(scope, CSRF_HEADER.encode())
    if cast("HTTPScope", scope)["method"] not in SAFE_METHODS and not csrf_matches(caller.csrf_token, given):
        return 403, NO_CSRF
    return caller.reach


def _header(scope: Scope, name: bytes) -> str:
    """The request's first header `name` (lower case), or ''."""
    return next((v for k, v in scope["headers"] if k == name), b"").decode("latin-1")


def _cookie(scope: Scope, name: str) -> str | None:
    """A cookie of the request (HTTP/2 may send them in several Cookie headers)."""
    for key, header in scope["headers"]:
        if key == b"cookie":
            for pair in header.decode("latin-1").split(";"):
                cookie, _, value = pair.strip().partition("=")
                if cookie == name and value:
                    return value
    return None


def json_response(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(_ENCODE.encode(payload), media_type="application/json", status_code=status, headers=headers)
