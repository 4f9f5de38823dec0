"""Prometheus exposition of this process's metrics."""

from __future__ import annotations

from litestar import Response, get
from litestar.di import NamedDependency
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dutyline.api.openapi import answers
from dutyline.services.metrics import POLICY_VERSION
from dutyline.services.policies import PolicyService


@get(
    "/metrics",
    tags=["operations"],
    summary="Prometheus metrics",
    sync_to_thread=False,
    responses=answers({200: str}, media_type="text/plain"),
)
def metrics(policies: NamedDependency[PolicyService]) -> Response[bytes]:
    POLICY_VERSION.set(policies.current.version)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


ROUTES = [metrics]
