"""Decision tables: policy tests as data (`policies/tests/*.yaml`), run by `dutyline test` and pytest."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.decision import Decision, decide_person, decide_post
from dutyline.errors import Issue
from dutyline.orgmodel.source import SourceMap
from dutyline.orgmodel.windows import instant, zone


class _Struct(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    pass


class GrantedBy(_Struct):
    post: str
    duty: str | None = None
    acting: bool | None = None


class Case(_Struct, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1)]
    person: str | None = None
    post: str | None = None
    resource: str
    action: str
    at: str | None = None
    expect: Literal["allow", "deny"]
    granted_by: GrantedBy | None = None
    denied_by: GrantedBy | None = None


class DecisionTable(_Struct):
    org: str
    cases: list[Case]


@dataclass(frozen=True, slots=True)
class CaseResult:
    file: str
    line: int
    org: str
    name: str
    passed: bool
    message: str = ""


def parse_table(data: Any, source: SourceMap, type_: type = DecisionTable) -> tuple[Any, list[Issue]]:
    """Decode a test table (a decision table by default); on failure, the issue names the line."""
    try:
        return msgspec.convert(data, type_), []
    except msgspec.ValidationError as exc:
        text = str(exc)
        path: tuple[str | int, ...] = ()
        if "at `$" in text:
            raw = text.rsplit("at `$", 1)[1].rstrip("`")
            for part in raw.replace("]", "").replace("[", ".").split("."):
                if part:
                    path += (int(part),) if part.isdigit() else (part,)
        return None, [source.issue(path, text)]


def run_table(
    table: DecisionTable, source: SourceMap, orgs: dict[str, CompiledOrg], now: float | None = None
) -> Iterator[CaseResult]:
    """Run every case of a table against compiled organisations."""
    org = orgs.get(table.org)
    for index, case in enumerate(table.cases):
        line = source.line(("cases", index))
        if org is None:
            yield CaseResult(source.file, line, table.org, case.name, False, f"unknown organisation {table.org!r}")
            continue
        yield _run_case(case, org, source.file, line, time.time() if now is None else now)


def _run_case(case: Case, org: CompiledOrg, file: str, line: int, now: float) -> CaseResult:
    def result(passed: bool, message: str = "") -> CaseResult:
        return CaseResult(file, line, org.id, case.name, passed, message)

    if (case.person is None) == (case.post is None):
        return result(False, "a case names exactly one of person or post")
    try:
        at = instant(case.at, zone(org.document.timezone)) if case.at else now
    except ValueError as exc:
        return result(False, f"bad `at`: {exc}")
    if case.person is not None:
        decision = decide_person(org, case.person, case.resource, case.action, at)
    else:
        decision = decide_post(org, case.post or "", case.resource, case.action)
    if decision.outcome != case.expect:
        return result(False, f"expected {case.expect}, got {decision.outcome} ({decision.code})")
    for expected, bases, label in (
        (case.granted_by, decision.allowed_by, "granted_by"),
        (case.denied_by, decision.denied_by, "denied_by"),
    ):
        if expected is not None and not _matches(expected, decision, bases):
            found = ", ".join(
                f"{b.post} duty {b.grant.duty.number}{' (acting)' if b.assignment and b.assignment.kind == 'acting' else ''}"
                for b in bases
            )
            return result(False, f"{label} {expected.post} duty {expected.duty} not among: {found or 'none'}")
    return result(True)


def _matches(expected: GrantedBy, decision: Decision, bases: tuple) -> bool:
    for basis in bases:
        if basis.post != expected.post:
            continue
        if expected.duty is not None and basis.grant.duty.number != expected.duty:
            continue
        acting = basis.assignment is not None and basis.assignment.kind == "acting"
        if expected.acting is not None and acting != expected.acting:
            continue
        return True
    return False
