"""Prometheus exposition of this process's metrics."""

from __future__ import annotations

from litestar import Response, get
from litestar.datastructures import State
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dutyline.api.openapi import answers
from dutyline.runtime import Runtime
from dutyline.services.metrics import POLICY_VERSION


@get(
    "/metrics",
    tags=["operations"],
    summary="Prometheus metrics",
    sync_to_thread=False,
    responses=answers({200: str}, media_type="text/plain"),
)
def metrics(state: State) -> Response[bytes]:
    runtime: Runtime = state.runtime
    POLICY_VERSION.set(runtime.policies.current.version)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


ROUTES = [metrics]
