"""The one place that wires the service together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator

from litestar import Litestar
from litestar.config.compression import CompressionConfig
from litestar.logging.config import LoggingConfig
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components
from litestar.openapi.plugins import ScalarRenderPlugin

from dutyline import __version__
from dutyline.api import admin_access, admin_orgs, approvals, authzen, bench, cases, check, console, decision_log, metrics, queries, usage
from dutyline.api.auth import DecisionAuthMiddleware
from dutyline.api.errors import HANDLERS
from dutyline.api.headers import security_headers
from dutyline.api.health import HealthController
from dutyline.api.middleware import RequestIdMiddleware
from dutyline.api.openapi import ExactShapes, request_bodies
from dutyline.runtime import Runtime
from dutyline.settings import Settings

log = logging.getLogger("dutyline")

# How long a thread may hold the interpreter lock before another waiting for it gets it (CPython: 5 ms).
# The decision-log writer, the change listener and compiles run on threads beside the event loop; with the
# default, a decision waits up to 5 ms behind them (measured at 1M lines: HTTP p99 9–10 ms at 4 connections,
# 4.7 ms with 0.5 ms, throughput unchanged).
GIL_SWITCH_INTERVAL = 0.0005


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        runtime = await asyncio.to_thread(Runtime.start, settings)
        app.state.runtime = runtime
        refresher = asyncio.create_task(_refresh_loop(runtime))
        try:
            yield
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            await asyncio.to_thread(runtime.close)

    route_handlers = [
        HealthController,
        *authzen.ROUTES,
        *check.ROUTES,
        *queries.ROUTES,
        *decision_log.ROUTES,
        *metrics.ROUTES,
        *approvals.ROUTES,
        *cases.ROUTES,
        *usage.ROUTES,
        *(bench.ROUTES if settings.bench_echo else []),
        *admin_access.ROUTES,
        *admin_orgs.ROUTES,
        *console.ROUTES,
    ]
    return Litestar(
        route_handlers=route_handlers,
        plugins=[ExactShapes()],
        lifespan=[lifespan],
        middleware=[
            DefineMiddleware(RequestIdMiddleware),
            *([DefineMiddleware(DecisionAuthMiddleware)] if settings.require_auth else []),
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
            # Scalar only: Swagger UI's page starts itself with an inline script, which the CSP forbids.
            render_plugins=[ScalarRenderPlugin()],
            components=Components(request_bodies=request_bodies(route_handlers)),
        ),
        # Level 6 (zlib's default), not Litestar's 9: on a 0.7 MB listing page 9 costs 66 ms of the event loop for
        # 3 % less than 6 does in 10 ms.
        compression_config=CompressionConfig(backend="gzip", minimum_size=4096, gzip_compress_level=6),
    )


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
