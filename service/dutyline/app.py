"""The one place that wires the service together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from litestar import Litestar, Router
from litestar.config.compression import CompressionConfig
from litestar.logging.config import LoggingConfig
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components
from litestar.types import ControllerRouterHandler

from dutyline import __version__
from dutyline.api import (
    access_requests,
    admin_access,
    admin_home,
    admin_orgs,
    approvals,
    authzen,
    bench,
    cases,
    changes,
    check,
    console,
    decision_log,
    metrics,
    queries,
    reference,
    usage,
)
from dutyline.api.auth import DecisionAuthMiddleware, anonymous_mode
from dutyline.api.errors import HANDLERS
from dutyline.api.guards import DEPENDENCIES
from dutyline.api.headers import security_headers
from dutyline.api.health import HealthController
from dutyline.api.middleware import RequestIdMiddleware
from dutyline.api.openapi import ExactShapes, request_bodies
from dutyline.api.scopes import within_reach
from dutyline.logs import bind_request_ids
from dutyline.runtime import Runtime
from dutyline.settings import Settings

if TYPE_CHECKING:
    from dutyline.services.tracing import SpanExporter, Tracing

log = logging.getLogger("dutyline")

# How long a thread may hold the interpreter lock before another waiting for it gets it (CPython: 5 ms).
# The decision-log writer, the change listener and compiles run on threads beside the event loop; with the
# default, a decision waits up to 5 ms behind them (measured at 1M lines: HTTP p99 9–10 ms at 4 connections,
# 4.7 ms with 0.5 ms, throughput unchanged).
GIL_SWITCH_INTERVAL = 0.0005


def create_app(settings: Settings | None = None, span_exporter: SpanExporter | None = None) -> Litestar:
    """The app. With tracing on (`Settings.otel`), spans go to `span_exporter` when given (tests: an in-memory one),
    else over OTLP/HTTP to the settings' endpoint."""
    settings = settings or Settings.from_env()
    anonymous = anonymous_mode(settings)
    bind_request_ids()
    tracing = _start_tracing(settings, span_exporter)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        _say_who_may_decide(settings)
        runtime = await asyncio.to_thread(Runtime.start, settings, tracing)
        app.state.runtime = runtime
        await runtime.changes.start()
        refresher = asyncio.create_task(_refresh_loop(runtime))
        restore = _on_stop_signal(runtime.changes.close)
        try:
            yield
        finally:
            restore()
            runtime.changes.close()
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            await asyncio.to_thread(runtime.close)
            if tracing is not None:
                await asyncio.to_thread(tracing.shutdown)

    # The decision API: every route behind one guard, which keeps a caller within the organisations it reaches.
    decision_api: list[ControllerRouterHandler] = [
        *authzen.ROUTES,
        *access_requests.ROUTES,
        *check.ROUTES,
        *queries.ROUTES,
        *decision_log.ROUTES,
        *approvals.ROUTES,
        *cases.ROUTES,
        *usage.ROUTES,
    ]
    others: list[ControllerRouterHandler] = [
        HealthController,
        *metrics.ROUTES,
        *(bench.ROUTES if settings.bench_echo else []),
        *admin_access.ROUTES,
        *admin_orgs.ROUTES,
        *admin_home.ROUTES,
        *console.ROUTES,
        *reference.ROUTES,
    ]
    decision_api.extend(changes.ROUTES)
    route_handlers = [*decision_api, *others]
    return Litestar(
        route_handlers=[Router(path="/", route_handlers=decision_api, guards=[within_reach]), *others],
        plugins=[ExactShapes()],
        dependencies=DEPENDENCIES,  # services and the admin caller, by name (api/guards.py)
        lifespan=[lifespan],
        middleware=[
            *_traced(tracing),  # outermost: the request's span covers everything below
            DefineMiddleware(RequestIdMiddleware),
            *([DefineMiddleware(DecisionAuthMiddleware, anonymous=anonymous)] if anonymous != "anyone" else []),
        ],
        exception_handlers=HANDLERS,  # type: ignore[arg-type]
        before_send=[security_headers],  # on every answer, errors and unknown paths too
        request_max_body_size=settings.max_body_bytes,
        logging_config=_logging(settings),
        openapi_config=OpenAPIConfig(
            title="Dutyline",
            version=__version__,
            description="Organisation-aware authorization: AuthZEN 1.0, explained checks, queries and the decision log.",
            path="/schema",
            # Scalar only (Swagger UI's page starts itself with an inline script, which the CSP forbids), its
            # assets served by the service itself: the page works without internet (api/reference.py).
            render_plugins=[reference.OfflineScalar()],
            components=Components(request_bodies=request_bodies(route_handlers)),
        ),
        # Level 6 (zlib's default), not Litestar's 9: on a 0.7 MB listing page 9 costs 66 ms of the event loop for
        # 3 % less than 6 does in 10 ms.
        compression_config=CompressionConfig(
            backend="gzip",
            minimum_size=4096,
            gzip_compress_level=6,
            exclude=changes.STREAMS,  # events go out as they happen, never held in a compressor's buffer
        ),
    )


def _start_tracing(settings: Settings, exporter: SpanExporter | None) -> Tracing | None:
    """Tracing when the settings ask for it and OpenTelemetry is installed (`pip install 'dutyline[otel]'`); else
    None, said in the log when it was asked for."""
    if not settings.otel:
        return None
    try:
        from dutyline.services import tracing
    except ImportError as exc:
        log.warning("tracing is off: OpenTelemetry is not installed (pip install 'dutyline[otel]'): %s", exc)
        return None
    return tracing.start(settings, exporter)


def _traced(tracing: Tracing | None) -> list[DefineMiddleware]:
    """The ASGI instrumentation's middleware (through Litestar's plugin config, which runs it around routing): a
    server span per request, child of the caller's W3C traceparent when it sends one; then, routed, its name."""
    if tracing is None:
        return []
    from litestar.plugins.opentelemetry import OpenTelemetryConfig

    from dutyline.services.tracing import NamedByRoute

    config = OpenTelemetryConfig(
        tracer_provider=tracing.provider,
        scope_span_details_extractor=tracing.span_details,
        server_request_hook_handler=tracing.on_request,
        exclude_spans=["receive", "send"],  # a span per ASGI message would double the spans of every request
    )
    return [config.middleware, DefineMiddleware(NamedByRoute)]


def _logging(settings: Settings) -> LoggingConfig:
    """JSON lines on stderr; pycasbin's per-decision logging stays off (see BASELINES.md)."""
    return LoggingConfig(
        root={"level": settings.log_level.upper(), "handlers": ["queue_listener"]},
        formatters={"standard": {"()": "dutyline.logs.JsonFormatter"}},
        loggers={
            "casbin": {"level": "WARNING", "propagate": False},
            "casbin.policy": {"level": "WARNING", "propagate": False},
            "casbin.enforcer": {"level": "WARNING", "propagate": False},
            "casbin.role_manager": {"level": "WARNING", "propagate": False},
            "dutyline": {"level": settings.log_level.upper(), "propagate": True},
        },
        log_exceptions="debug",
    )


def _say_who_may_decide(settings: Settings) -> None:
    """At start: a warning whenever the decision API takes anonymous callers, who decide, approve and resolve as
    whomever they name; a note when it refuses them only because of the address it is bound to."""
    mode = anonymous_mode(settings)
    if mode == "anyone":
        log.warning(
            "the decision API is open to anyone who reaches %s:%s: callers decide, approve and resolve as whomever "
            "they name (DUTYLINE_ALLOW_ANONYMOUS is on, DUTYLINE_REQUIRE_AUTH off); see docs/deployment.md",
            settings.host,
            settings.port,
        )
    elif mode == "loopback":
        log.warning(
            "the decision API is open to anonymous callers on this host (%s:%s): any local process, or a proxy in "
            "front of it, decides, approves and resolves as whomever it names; set DUTYLINE_REQUIRE_AUTH=true "
            "(docs/deployment.md)",
            settings.host,
            settings.port,
        )
    elif not settings.require_auth:
        log.warning(
            "bound to %s, not loopback: the decision API refuses anonymous callers although DUTYLINE_REQUIRE_AUTH is "
            "off (set DUTYLINE_REQUIRE_AUTH=true to say so, or DUTYLINE_ALLOW_ANONYMOUS=true to open it)",
            settings.host,
        )


def _on_stop_signal(stop: Callable[[], None]) -> Callable[[], None]:
    """Call `stop` (on the event loop) as soon as SIGTERM or SIGINT asks the server to stop, before passing the
    signal on to the server's own handler; returns what puts the handlers back.

    uvicorn stops by waiting for every open response to end before the lifespan's shutdown runs, and a change
    stream never ends by itself: without this, `dutyline serve` would wait for its subscribers to hang up. Only
    possible on the main thread (where uvicorn runs); elsewhere the streams end at the lifespan's shutdown."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}

    def handler(number: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(stop)
        passed = previous[number]
        if callable(passed):
            passed(number, frame)
        elif passed == signal.SIG_DFL:  # nobody else handles it: do what it would have done
            signal.signal(number, signal.SIG_DFL)
            signal.raise_signal(number)

    for number in previous:
        signal.signal(number, handler)

    def restore() -> None:
        for number, passed in previous.items():
            if signal.getsignal(number) is handler:
                signal.signal(number, passed)

    return restore


async def _refresh_loop(runtime: Runtime) -> None:
    """Pick up changes other processes stored, so every replica converges on the newest version."""
    while True:
        await asyncio.sleep(runtime.settings.refresh_interval)
        try:
            await asyncio.to_thread(runtime.policies.refresh)
            await asyncio.to_thread(runtime.ledger.refresh)
            await asyncio.to_thread(runtime.access.refresh)  # users and roles another replica changed
            await asyncio.to_thread(runtime.editor.apply_due)  # scheduled changes whose time has come
        except Exception:  # the database may be down; keep serving the policy we have and try again
            log.warning("policy refresh failed; serving version %s", runtime.policies.current.version, exc_info=True)
