"""The usage ledger over HTTP: record what the caller's system executed; read a person's totals."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import State

from dutyline.api.body import read_json
from dutyline.api.check import Text
from dutyline.api.openapi import DECIDE, answers, takes
from dutyline.api.schemas import UsageRecorded, UsageTotal
from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.rules import period_key
from dutyline.errors import Invalid, Issue, NotFound
from dutyline.orgmodel.windows import instant, zone
from dutyline.rulemodel import document as rm
from dutyline.runtime import Runtime
from dutyline.services.ledger import find_rule

_ENCODE = msgspec.json.Encoder()


class UsageBody(msgspec.Struct):
    person: Text
    rule: Text
    amount: float
    at: str | None = None
    decision_id: Annotated[str, msgspec.Meta(max_length=64)] | None = None


def _org(runtime: Runtime, org_id: str) -> CompiledOrg:
    org = runtime.policies.current.get(org_id)
    if org is None:
        raise NotFound(f"organisation {org_id!r} not found")
    return org


def _at(org: CompiledOrg, at: str | None) -> float:
    if at is None:
        return time.time()
    try:
        return instant(at, zone(org.document.timezone))
    except ValueError:
        raise Invalid(f"at: {at!r} is not a date or date-time", [Issue("<request>", 0, "at", "not a date-time")]) from None


@post(
    "/v1/orgs/{org_id:str}/usage", status_code=201, tags=["approvals"], summary="Record usage against a cumulative limit",
    responses=answers({201: UsageRecorded}, *DECIDE, 404, 413, 503), operation_class=takes(UsageBody),
)
async def record_usage(request: Request, state: State, org_id: str) -> Response[bytes]:
    runtime: Runtime = state.runtime
    body = await read_json(request, UsageBody)
    org = _org(runtime, org_id)
    rules = runtime.policies.current.rules.get(org.id)
    at = _at(org, body.at)
    recorded = await asyncio.to_thread(runtime.ledger.record_usage, org, rules, body.person, body.rule, body.amount, at, body.decision_id)
    payload = UsageRecorded(
        recorded.id, recorded.organisation, recorded.rule, recorded.person, recorded.period, recorded.amount, recorded.total,
        recorded.used_at.isoformat(), recorded.recorded_at.isoformat(),
    )
    return Response(_ENCODE.encode(payload), media_type="application/json", status_code=201)


@get(
    "/v1/orgs/{org_id:str}/usage", tags=["approvals"], summary="A person's total against a cumulative limit",
    responses=answers({200: UsageTotal}, *DECIDE, 404, 503),
)
async def usage_total(state: State, org_id: str, person: str, rule: str, at: str | None = None) -> Response[bytes]:
    runtime: Runtime = state.runtime
    org = _org(runtime, org_id)
    who = org.identities.get(person)
    if who is None:
        raise NotFound(f"person {person!r} not found in {org_id!r}")
    found = find_rule(runtime.policies.current.rules.get(org.id), rule)
    if not isinstance(found, rm.Limit) or found.period is None:
        raise NotFound(f"no limit with a period called {rule!r} in the rule packs of {org_id!r}")
    period = period_key(found.period, _at(org, at), org.document.timezone)
    payload = UsageTotal(org.id, rule, who, period, runtime.ledger.usage_total(org.id, rule, who, period))
    return Response(_ENCODE.encode(payload), media_type="application/json")


ROUTES = [record_usage, usage_total]
