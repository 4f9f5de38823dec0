"""The usage ledger over HTTP: record what the caller's system executed, or reverse an entry; read a person's totals."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Annotated

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from dutyline.api.auth import COOKIE, acting_person, bearer
from dutyline.api.body import read_json
from dutyline.api.check import Text
from dutyline.api.openapi import DECIDE, answers, takes
from dutyline.engines.admin_policy import ALL
from dutyline.engines.compiler import CompiledOrg
from dutyline.errors import Forbidden
from dutyline.runtime import Runtime
from dutyline.services.ledger import MAX_AMOUNT, Ledger, UsageRecorded, UsageTotal, parse_amount

# Amounts and totals are exact decimals: sent as JSON numbers, digit for digit (Litestar's encoder would round them,
# so these routes encode their answers themselves).
_ENCODE = msgspec.json.Encoder(decimal_format="number")


class UsageBody(msgspec.Struct):
    """Usage against a cumulative limit: a positive amount, or the reversal of an earlier entry (`reverses`: its
    opposite; `amount` may then be left out, and if given must be that entry's)."""

    person: Text
    rule: Text
    amount: Annotated[float, msgspec.Meta(gt=0, lt=float(MAX_AMOUNT))] | None = None
    at: str | None = None
    decision_id: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    reverses: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)] | None = None


class _UsageFields(UsageBody):
    """`UsageBody` as decoded: `amount` as the JSON text sent, so that it is kept exactly as written (a float
    would round 20 digits to 17) and a text or a boolean is refused rather than converted."""

    amount: msgspec.Raw = msgspec.Raw(b"null")  # type: ignore[assignment]


def _amount(raw: msgspec.Raw) -> object:
    """The JSON value of `amount`, a number as an exact Decimal (the ledger's `parse_amount` judges it)."""
    text = bytes(raw).decode()
    if text[:1] in ('"', "[", "{") or text in ("true", "false", "null"):
        return msgspec.json.decode(text)
    return Decimal(text)


# Roles that act in an organisation (auditors only read).
_RECORDING_ROLES = frozenset({"system_admin", "hr_admin", "compliance_officer"})


async def recording_as(request: Request, runtime: Runtime, org: CompiledOrg, person: str) -> str:
    """The one answer to "may this caller record usage in `org` as `person`?": the person to record it as, or
    Forbidden saying why.

    - A console session (its cookie, and no bearer token) records only as the person its user is linked to in
      `org` (as it approves and resolves: `acting_person`), whether or not DUTYLINE_REQUIRE_AUTH is on.
    - With DUTYLINE_REQUIRE_AUTH on, a bearer token records only in an organisation its user holds a role in that
      acts there: system_admin, or hr_admin or compliance_officer of `org` (tokens carry no organisation scope of
      their own yet; when they do, ask it here). Its client attests `person`, as for approvals.
    - Otherwise (the setting off, no cookie) the caller attests `person`: the decision API is open by design.
    """
    token = bearer(request.headers.get("authorization"))
    if token is None and request.cookies.get(COOKIE):
        return await acting_person(request, runtime, lambda: org.id, person)
    if token is None or not runtime.settings.require_auth:
        return person
    caller = await asyncio.to_thread(runtime.access.token_caller, token)
    if caller is None:  # the middleware let it through a moment ago: revoked meanwhile
        raise Forbidden("the bearer token is unknown, expired or revoked")
    roles = await asyncio.to_thread(runtime.access.roles_of, caller)
    if not any(r["role"] in _RECORDING_ROLES and r["organisation"] in (org.id, ALL) for r in roles):
        raise Forbidden(
            f"{caller.username} may not record usage in {org.id!r}: a token records usage only in an organisation "
            "its user is system_admin, hr_admin or compliance_officer of"
        )
    return person


@post(
    "/v1/orgs/{org_id:str}/usage",
    status_code=201,
    tags=["approvals"],
    summary="Record usage against a cumulative limit",
    responses=answers({201: UsageRecorded}, *DECIDE, 404, 409, 413, 503),
    operation_class=takes(UsageBody),
)
async def record_usage(
    request: Request, runtime: NamedDependency[Runtime], ledger: NamedDependency[Ledger], org_id: FromPath[str]
) -> Response[bytes]:
    body = await read_json(request, _UsageFields)
    org = ledger.organisation(org_id)
    amount = _amount(body.amount)
    parsed = None if amount is None else parse_amount(amount)  # 400 naming `amount` before anything else
    person = await recording_as(request, runtime, org, body.person)
    recorded = await asyncio.to_thread(
        ledger.record, org, person, body.rule, parsed, body.at, body.decision_id, body.reverses
    )
    return Response(_ENCODE.encode(recorded), media_type="application/json", status_code=201)


@get(
    "/v1/orgs/{org_id:str}/usage",
    tags=["approvals"],
    summary="A person's total against a cumulative limit",
    responses=answers({200: UsageTotal}, *DECIDE, 404, 503),
    sync_to_thread=False,  # in memory: the ledger's totals
)
def usage_total(
    ledger: NamedDependency[Ledger],
    org_id: FromPath[str],
    person: FromQuery[str],
    rule: FromQuery[str],
    at: FromQuery[str | None] = None,
) -> Response[bytes]:
    return Response(_ENCODE.encode(ledger.total(org_id, person, rule, at)), media_type="application/json")


ROUTES = [record_usage, usage_total]
