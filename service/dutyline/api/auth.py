"""Who is calling: console sessions (cookie + CSRF header) and API tokens (`Authorization: Bearer`).

Every /admin endpoint starts with `admin_caller`. The decision endpoints ask for a token only when
DUTYLINE_REQUIRE_AUTH is on (`DecisionAuthMiddleware`, added by the app only then, so that the decision
path pays nothing when it is off).
"""

from __future__ import annotations

import asyncio
import datetime as dt

import msgspec
from litestar import Request, Response
from litestar.datastructures import Cookie, State
from litestar.types import ASGIApp, Receive, Scope, Send

from dutyline.errors import Forbidden, Unauthenticated
from dutyline.runtime import Runtime
from dutyline.services.access import Caller, Login, csrf_matches

COOKIE = "dutyline_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Paths of the decision API that DUTYLINE_REQUIRE_AUTH protects (metadata, health and metrics stay open).
DECISION_PREFIXES = ("/v1/", "/access/", "/orgs/")


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    kind, _, value = authorization.partition(" ")
    return value.strip() or None if kind.lower() == "bearer" else None


async def admin_caller(request: Request, state: State) -> tuple[Runtime, Caller]:
    """The runtime and the authenticated caller; 401 without valid credentials, 403 for a cookie session's
    state-changing request without the session's CSRF token in X-CSRF-Token."""
    runtime: Runtime = state.runtime
    token = bearer(request.headers.get("authorization"))
    if token is not None:
        caller = await asyncio.to_thread(runtime.access.token_caller, token)
        if caller is None:
            raise Unauthenticated("the bearer token is unknown, expired or revoked")
        if caller.scope == "decide":  # not even reads of its own user, tokens or session (docs/admin-api.md)
            raise Forbidden("a decide token may call the decision API only, never the admin API")
        return runtime, caller
    session_token = request.cookies.get(COOKIE)
    if not session_token:
        raise Unauthenticated("log in (POST /admin/login) or send Authorization: Bearer <token>")
    caller = await asyncio.to_thread(runtime.access.session_caller, session_token)
    if caller is None:
        raise Unauthenticated("the session has expired or was ended; log in again")
    if request.method not in SAFE_METHODS and not csrf_matches(caller.csrf_token, request.headers.get(CSRF_HEADER)):
        raise Forbidden("missing or wrong X-CSRF-Token: send the csrf_token from login or GET /admin/session")
    return runtime, caller


def is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded.split(",")[0].strip().lower() == "https"


def session_cookie(request: Request, login: Login) -> Cookie:
    max_age = max(0, int((login.expires_at - dt.datetime.now(dt.timezone.utc)).total_seconds()))
    return Cookie(
        key=COOKIE, value=login.token, path="/", httponly=True, samesite="strict", secure=is_https(request), max_age=max_age
    )


def cleared_cookie(request: Request) -> Cookie:
    return Cookie(key=COOKIE, value="", path="/", httponly=True, samesite="strict", secure=is_https(request), max_age=0)


_ENCODE = msgspec.json.Encoder()


class DecisionAuthMiddleware:
    """With DUTYLINE_REQUIRE_AUTH on: the decision API needs a bearer token whose scopes include decide or
    admin. A token's answer is cached a few seconds, so the database is read once per token, not per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(DECISION_PREFIXES):
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope["headers"] if k == b"authorization"), b"").decode("latin-1")
        token = bearer(header)
        if token is not None:
            runtime: Runtime = scope["app"].state.runtime
            ok = runtime.access.cached_may_decide(token)
            if ok is None:
                ok = await asyncio.to_thread(runtime.access.may_decide, token)
            if ok:
                await self.app(scope, receive, send)
                return
            status, message = 403, "this token may not call the decision API (it needs the decide or admin scope)"
            if not await asyncio.to_thread(runtime.access.token_caller, token):
                status, message = 401, "the bearer token is unknown, expired or revoked"
        else:
            status, message = 401, "this server requires Authorization: Bearer <token> (DUTYLINE_REQUIRE_AUTH)"
        body = _ENCODE.encode({"status": status, "error": "unauthenticated" if status == 401 else "forbidden", "message": message})
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="dutyline"'))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def json_response(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(_ENCODE.encode(payload), media_type="application/json", status_code=status, headers=headers)
