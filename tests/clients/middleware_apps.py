"""The same small application in each framework the enforcement adapters serve (Litestar, Starlette, FastAPI over
ASGI; Flask, Django over WSGI), each on a real server on a loopback port (uvicorn, wsgiref), asking the test
counter of tests/data/workflow through an enforcer:

- `POST /counter/transactions/{tid}` enters a transaction: `transaction` `enter`, the amount from the JSON body,
  the moment from the query (`?at=`, optional);
- `POST /counter/transactions/{tid}/authorize`: `transaction` `authorize` (a teller has no duty to);
- `GET /counter/health`: not marked, never asked about.

Allowed, each answers what it did (the amount read from the body the enforcer read before it) and the id of the
decision that let it (from the framework's place for it).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import django
import flask
import uvicorn
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, JsonResponse
from django.test import override_settings
from django.urls import path as route
from fastapi import APIRouter, Depends, FastAPI
from litestar import Litestar, get, post
from litestar import Request as LitestarRequest
from litestar.params import FromPath, JSONBody
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from dutyline_client import AsyncClient, Client
from dutyline_client.asgi import DutylineMiddleware, Refused, dutyline_middleware, enforcing, refused_response
from dutyline_client.enforce import AsyncEnforcer, Enforcer, body, path, query, requires
from dutyline_client.wsgi import protect_flask

ENTER = requires(
    "transaction", "enter", resource_id=path("tid"), context={"amount": body("amount")}, at=query("at", default=None)
)
AUTHORIZE = requires("transaction", "authorize", resource_id=path("tid"))

ASGI = ("fastapi", "litestar", "starlette")
WSGI = ("django", "flask")
FRAMEWORKS = (*ASGI, *WSGI)


# What an authentication layer in front of the route would have established: the person a token stands for. The
# applications authenticate with it (`X-Token`) the way their framework would (a `user` in the ASGI scope, Django's
# `request.user`); Flask's is the user name of HTTP Basic credentials (`request.authorization`).
TOKENS = {"tok-ann": "ann"}


@dataclass(frozen=True)
class User:
    username: str


def asgi_authenticated(app: Any) -> Any:
    """The ASGI scope's `user`, as Starlette's AuthenticationMiddleware and Litestar's authentication set it."""

    async def authenticated(scope: dict[str, Any], receive: Any, send: Any) -> None:
        token = dict(scope.get("headers", [])).get(b"x-token", b"").decode()
        if token in TOKENS:
            scope["user"] = User(TOKENS[token])
        await app(scope, receive, send)

    return authenticated


class DjangoTokenMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        token = request.headers.get("X-Token", "")
        if token in TOKENS:
            request.user = User(TOKENS[token])  # type: ignore[assignment]
        return self.get_response(request)


# --- the applications ---------------------------------------------------------------------------------------------


def litestar_app(enforcer: AsyncEnforcer) -> Any:
    @post("/counter/transactions/{tid:str}", status_code=200)
    @ENTER
    async def enter(
        tid: FromPath[str], data: JSONBody[dict[str, Any]], request: LitestarRequest[Any, Any, Any]
    ) -> dict[str, Any]:
        return {"entered": tid, "amount": data["amount"], "decision_id": request.state.dutyline.decision_id}

    @post("/counter/transactions/{tid:str}/authorize", status_code=200)
    @AUTHORIZE
    async def authorize(tid: FromPath[str]) -> dict[str, Any]:
        return {"authorized": tid}

    @get("/counter/health")
    async def health() -> dict[str, Any]:
        return {"ok": True}

    # logging_config=None: Litestar's own would replace the root logger's handlers, where pytest reads the log
    middleware = [dutyline_middleware(enforcer)]
    return Litestar(route_handlers=[enter, authorize, health], middleware=middleware, logging_config=None)


@ENTER
async def _starlette_enter(request: StarletteRequest) -> JSONResponse:
    amount = (await request.json())["amount"]
    tid, decision_id = request.path_params["tid"], request.state.dutyline.decision_id
    return JSONResponse({"entered": tid, "amount": amount, "decision_id": decision_id})


@AUTHORIZE
async def _starlette_authorize(request: StarletteRequest) -> JSONResponse:
    return JSONResponse({"authorized": request.path_params["tid"]})


async def _starlette_health(request: StarletteRequest) -> JSONResponse:
    return JSONResponse({"ok": True})


def starlette_app(enforcer: AsyncEnforcer) -> Any:
    """With the app-level middleware, and a mount (whose routes it reaches too)."""
    app = Starlette(
        middleware=[Middleware(DutylineMiddleware, enforcer=enforcer)],
        routes=[
            Mount(
                "/counter",
                routes=[
                    Route("/transactions/{tid}", _starlette_enter, methods=["POST"]),
                    Route("/transactions/{tid}/authorize", _starlette_authorize, methods=["POST"]),
                    Route("/health", _starlette_health),
                ],
            )
        ],
    )
    return app


def fastapi_app(enforcer: AsyncEnforcer) -> Any:
    """With the app-wide dependency, and a router included (whose routes it reaches too)."""
    app = FastAPI(dependencies=[Depends(enforcing(enforcer))], exception_handlers={Refused: refused_response})

    @app.post("/counter/transactions/{tid}")
    @ENTER
    async def enter(tid: str, payload: dict[str, Any], request: StarletteRequest) -> dict[str, Any]:
        return {"entered": tid, "amount": payload["amount"], "decision_id": request.state.dutyline.decision_id}

    @app.get("/counter/health")
    async def health() -> dict[str, Any]:
        return {"ok": True}

    router = APIRouter(prefix="/counter")

    @router.post("/transactions/{tid}/authorize")
    @AUTHORIZE
    async def authorize(tid: str) -> dict[str, Any]:
        return {"authorized": tid}

    app.include_router(router)
    return app


def flask_app(enforcer: Enforcer) -> Any:
    app = flask.Flask(__name__)

    @app.post("/counter/transactions/<tid>")
    @ENTER
    def enter(tid: str) -> dict[str, Any]:
        amount = flask.request.get_json()["amount"]
        return {"entered": tid, "amount": amount, "decision_id": flask.g.dutyline.decision_id}

    @app.post("/counter/transactions/<tid>/authorize")
    @AUTHORIZE
    def authorize(tid: str) -> dict[str, Any]:
        return {"authorized": tid}

    @app.get("/counter/health")
    def health() -> dict[str, Any]:
        return {"ok": True}

    protect_flask(app, enforcer)
    return app


@ENTER
def _django_enter(request: HttpRequest, tid: str) -> JsonResponse:
    amount = json.loads(request.body)["amount"]
    decision_id = request.dutyline.decision_id  # type: ignore[attr-defined]
    return JsonResponse({"entered": tid, "amount": amount, "decision_id": decision_id})


@AUTHORIZE
def _django_authorize(request: HttpRequest, tid: str) -> JsonResponse:
    return JsonResponse({"authorized": tid})


def _django_health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


urlpatterns = [  # this module is the Django application's ROOT_URLCONF
    route("counter/transactions/<str:tid>", _django_enter),
    route("counter/transactions/<str:tid>/authorize", _django_authorize),
    route("counter/health", _django_health),
]


def django_app(enforcer: Enforcer) -> Any:
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="tests",
            ALLOWED_HOSTS=["127.0.0.1"],
            ROOT_URLCONF=__name__,
            MIDDLEWARE=[f"{__name__}.DjangoTokenMiddleware", "dutyline_client.wsgi.DjangoMiddleware"],
            INSTALLED_APPS=[],
            DUTYLINE_ENFORCER=None,
        )
        django.setup()
    handler = WSGIHandler()

    # Django's settings are one per process; each application here has its own enforcer, set while it answers
    # (the tests send one request at a time).
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with override_settings(DUTYLINE_ENFORCER=enforcer):
            return handler(environ, start_response)

    return app


# --- the servers ---------------------------------------------------------------------------------------------------


@contextmanager
def serve_asgi(app: Any, client: AsyncClient) -> Iterator[str]:
    """`app` on uvicorn in a thread of its own (its own event loop, where the enforcer's client is used and closed)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_config=None))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(sockets=[sock]),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(timeout=30)
        server.should_exit = True
        thread.join(timeout=30)
        loop.close()
        sock.close()


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_wsgi(app: Any, client: Client) -> Iterator[str]:
    """`app` on wsgiref's server in a thread."""
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=30)
        server.server_close()
        client.close()


@contextmanager
def served(framework: str, make_client: Callable[[type[Any]], Any], **enforcer: Any) -> Iterator[str]:
    """`framework`'s application on its server, its enforcer's client made by `make_client(Client or
    AsyncClient)`, the enforcer's other arguments `enforcer`."""
    if framework in ASGI:
        client = make_client(AsyncClient)
        builder = {"fastapi": fastapi_app, "litestar": litestar_app, "starlette": starlette_app}[framework]
        with serve_asgi(asgi_authenticated(builder(AsyncEnforcer(client, **enforcer))), client) as url:
            yield url
    else:
        sync = make_client(Client)
        builder = {"django": django_app, "flask": flask_app}[framework]
        with serve_wsgi(builder(Enforcer(sync, **enforcer)), sync) as url:
            yield url
