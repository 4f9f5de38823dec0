"""The one place that wires the service together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from litestar import Litestar
from litestar.openapi import OpenAPIConfig

from dutyline import __version__
from dutyline.api.health import HealthController
from dutyline.runtime import Runtime
from dutyline.settings import Settings

log = logging.getLogger("dutyline")


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        runtime = await asyncio.to_thread(Runtime.start, settings)
        app.state.runtime = runtime
        refresher = asyncio.create_task(_refresh_loop(runtime))
        try:
            yield
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            runtime.close()

    return Litestar(
        route_handlers=[HealthController],
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(title="Dutyline", version=__version__),
    )


async def _refresh_loop(runtime: Runtime) -> None:
    """Pick up changes other processes stored, so every replica converges on the newest version."""
    while True:
        await asyncio.sleep(runtime.settings.refresh_interval)
        try:
            await asyncio.to_thread(runtime.policies.refresh)
        except Exception:  # the database may be down; keep serving the policy we have and try again
            log.warning("policy refresh failed; serving version %s", runtime.policies.current.version, exc_info=True)
