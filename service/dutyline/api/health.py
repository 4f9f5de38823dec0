"""Liveness and readiness, each with the organisations this process does not decide at their newest version.

An organisation whose newest stored version cannot be used (unreadable, not compilable, refused by the rule
host) is reported by both, and turns neither non-200: every replica reads the same database, so a 503 would take
all of them out for one organisation's problem, and a restart would only turn a stale organisation (decided on
its last good version) into an unavailable one. See docs/hardening.md.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency

from dutyline.api.openapi import answers
from dutyline.engines.policyset import PolicySet
from dutyline.runtime import Runtime


class OrgHealth(msgspec.Struct, forbid_unknown_fields=True):
    """An organisation not decided at its newest stored version, and why."""

    organisation: str
    state: Literal["stale", "unavailable"]  # stale: decided at `serving_version`; unavailable: every decision a deny
    serving_version: int | None  # the policy version it is decided at (None: unavailable)
    failed_version: int  # the stored version (of its document or a rule pack) that cannot be used
    stage: Literal["decode", "compile", "load"]
    reason: str


class Health(msgspec.Struct, forbid_unknown_fields=True):
    status: str  # healthz: ok or degraded; readyz: ready, degraded or not ready
    policy_version: int = 0
    organisations: int = 0  # organisations decided (stale ones included, unavailable ones not)
    database: str = "ok"
    not_current: list[OrgHealth] = []


def _not_current(current: PolicySet) -> list[OrgHealth]:
    return [
        OrgHealth(p.organisation, p.state, p.serving, p.version, p.stage, p.reason)
        for p in sorted(current.problems.values(), key=lambda p: p.organisation)
    ]


# A probe that has not answered within this is "unreachable": a liveness check must answer promptly, and a
# database that takes this long for SELECT 1 cannot serve a write either.
PROBE_TIMEOUT = 2.0


async def _database_reachable(runtime: Runtime) -> bool:
    """A real round trip (SELECT 1) on every call, never a remembered answer: the database can go at any moment."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(runtime.database_ok), PROBE_TIMEOUT)
    except TimeoutError:
        return False


class HealthController(Controller):
    tags = ["operations"]

    @get(
        "/healthz",
        summary="The process is alive: 200 whatever the database or an organisation's policy state (degraded says which)",
    )
    async def healthz(self, runtime: NamedDependency[Runtime]) -> Health:
        current = runtime.policies.current
        problems = _not_current(current)
        database_ok = await _database_reachable(runtime)
        status = "ok" if database_ok and not problems else "degraded"
        return Health(status, current.version, len(current.orgs), "ok" if database_ok else "unreachable", problems)

    @get(
        "/readyz",
        summary="The database is reachable and the policy is loaded (an organisation not current: degraded, 200)",
        responses=answers({200: Health, 503: Health}),
    )
    async def readyz(self, runtime: NamedDependency[Runtime]) -> Response[Health]:
        current = runtime.policies.current
        database_ok = await _database_reachable(runtime)
        # Not ready without the database or a policy; nor when no stored organisation can be decided at all.
        ready = database_ok and current.version > 0 and (bool(current.orgs) or not current.problems)
        problems = _not_current(current)
        status = ("degraded" if problems else "ready") if ready else "not ready"
        body = Health(status, current.version, len(current.orgs), "ok" if database_ok else "unreachable", problems)
        return Response(body, status_code=200 if ready else 503)
