"""Liveness and readiness."""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, get
from litestar.datastructures import State

from dutyline.api.openapi import answers
from dutyline.runtime import Runtime


class Health(msgspec.Struct, forbid_unknown_fields=True):
    status: str
    policy_version: int = 0
    organisations: int = 0
    database: str = "ok"


class HealthController(Controller):
    tags = ["operations"]

    @get("/healthz", summary="The process is alive")
    async def healthz(self, state: State) -> Health:
        runtime: Runtime = state.runtime
        return Health("ok", runtime.policies.current.version, len(runtime.policies.current.orgs))

    @get(
        "/readyz", summary="The database is reachable and the policy is loaded", sync_to_thread=True,
        responses=answers({200: Health, 503: Health}),
    )
    def readyz(self, state: State) -> Response[Health]:
        runtime: Runtime = state.runtime
        current = runtime.policies.current
        database_ok = runtime.database_ok()
        ready = database_ok and current.version > 0
        body = Health(
            "ready" if ready else "not ready", current.version, len(current.orgs), "ok" if database_ok else "unreachable"
        )
        return Response(body, status_code=200 if ready else 503)
