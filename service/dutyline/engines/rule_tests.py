"""Rule test cases as data (`rules/tests/*.yaml`): a request and facts → the expected verdict."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

import msgspec

from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.decision import Check, decide
from dutyline.engines.decision_tables import CaseResult, parse_table
from dutyline.engines.rulehost import RuleBackend
from dutyline.engines.rules import CompiledRules, Facts, Verdict, apply_rules
from dutyline.orgmodel.source import SourceMap
from dutyline.orgmodel.windows import instant, zone


class _Struct(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    pass


class RuleRequest(_Struct, kw_only=True):
    person: str
    resource: str
    action: str
    resource_id: str | None = None
    at: str | None = None
    context: dict[str, Any] = {}
    resource_properties: dict[str, Any] = {}
    subject_properties: dict[str, Any] = {}


class RuleFacts(_Struct, kw_only=True):
    usage: dict[str, float] = {}  # rule id → total already used in the rule's current period
    history: list[str] = []  # approvers of the same resource, newest first
    approved: list[str] = []  # rule ids an approval presented with the request covers


class Expect(_Struct, kw_only=True):
    decision: Literal["allow", "deny", "needs_approval"]
    rules: list[str] | None = None
    approvers: list[str] | None = None
    notify: list[str] | None = None


class RuleCase(_Struct, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1)]
    request: RuleRequest
    facts: RuleFacts = msgspec.field(default_factory=RuleFacts)
    expect: Expect


class RuleTable(_Struct, kw_only=True):
    org: str
    cases: list[RuleCase]


def parse_rule_table(data: Any, source: SourceMap) -> tuple[RuleTable | None, list]:
    return parse_table(data, source, RuleTable)


def run_rule_table(
    table: RuleTable,
    source: SourceMap,
    orgs: Mapping[str, CompiledOrg],
    rules: Mapping[str, CompiledRules],
    host: RuleBackend,
    now: float | None = None,
) -> Iterator[CaseResult]:
    """Run every case against compiled organisations and their compiled rules (loaded into `host`)."""
    org = orgs.get(table.org)
    for index, case in enumerate(table.cases):
        line = source.line(("cases", index))

        def result(passed: bool, message: str = "", line: int = line, name: str = case.name) -> CaseResult:
            return CaseResult(source.file, line, table.org, name, passed, message)

        if org is None:
            yield result(False, f"unknown organisation {table.org!r}")
            continue
        request = case.request
        try:
            at = instant(request.at, zone(org.document.timezone)) if request.at else (now or time.time())
        except ValueError as exc:
            yield result(False, f"bad `at`: {exc}")
            continue
        check = Check(
            subject_id=request.person,
            resource_type=request.resource,
            action=request.action,
            at=at,
            resource_id=request.resource_id,
            subject_properties=request.subject_properties or None,
            resource_properties=request.resource_properties or None,
            context=request.context or None,
        )
        verdict = apply_rules(host, org, rules.get(org.id), check, decide(org, check), _facts(case.facts))
        yield result(*_compare(case.expect, verdict))


def _facts(given: RuleFacts) -> Facts:
    """What a case states about the ledgers, as the facts a decision reads."""
    usage, history = given.usage, given.history
    return Facts(
        usage=lambda rule, person, period: usage.get(rule, 0.0),
        approvals=lambda resource, rid: history,
        approved=frozenset(given.approved),
    )


def _compare(expect: Expect, verdict: Verdict) -> tuple[bool, str]:
    fired = [h.rule for h in verdict.hits]
    if verdict.outcome != expect.decision:
        return (
            False,
            f"expected {expect.decision}, got {verdict.outcome} ({verdict.decision.code}; rules fired: {fired or 'none'})",
        )
    if expect.rules is not None and sorted(expect.rules) != sorted(fired):
        return False, f"expected rules {sorted(expect.rules)} to fire, got {sorted(fired)}"
    approvers = [step.post for step in verdict.approvers]
    if expect.approvers is not None and expect.approvers != approvers:
        return False, f"expected approvers {expect.approvers}, got {approvers}"
    if expect.notify is not None and sorted(expect.notify) != sorted(verdict.notify):
        return False, f"expected notifications to {sorted(expect.notify)}, got {sorted(verdict.notify)}"
    return True, ""
