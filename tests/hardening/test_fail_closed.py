"""Fail closed: when deciding fails inside (a bug, a compiled policy broken in memory, a fact source that
raises), the answer is a deny with the reason `internal_error`, logged and counted, never an error page and
never an allow."""

from __future__ import annotations

import logging
from pathlib import Path
from types import MappingProxyType, SimpleNamespace

import msgspec
import pytest
from ruamel.yaml import YAML

from dutyline.api.authzen import explanation
from dutyline.api.check import result_of
from dutyline.engines.compiler import CompiledOrg, compile_org
from dutyline.engines.policyset import PolicySet
from dutyline.engines.rulehost import new_backend
from dutyline.engines.rules import compile_rules
from dutyline.orgmodel.validate import parse_organisation
from dutyline.rulemodel.document import RulePack
from dutyline.services.decisions import DecisionService, FactsProvider, Question
from dutyline.services.metrics import DECISION_ERRORS

REPO = Path(__file__).resolve().parents[2]
ORG = "sales_company"


class Exploding(dict):
    """A compiled index that fails on every read, as memory corrupted by a bug would."""

    def get(self, *_: object) -> object:
        raise RuntimeError("compiled state broken on purpose")

    __getitem__ = get


class FailingLedger(FactsProvider):
    def facts_for(self, *_: object):  # type: ignore[no-untyped-def]
        raise ConnectionError("the ledger cannot be read")


def _org() -> CompiledOrg:
    text = (REPO / "policies/orgs/sales_company.yaml").read_text(encoding="utf-8")
    return compile_org(parse_organisation(text, "sales_company.yaml").organisation, version=7)


def _service(org: CompiledOrg, facts: FactsProvider | None = None) -> DecisionService:
    pack = msgspec.convert(
        YAML(typ="safe").load((REPO / "rules/sales_company.yaml").read_text(encoding="utf-8")), RulePack
    )
    rules = compile_rules([pack], org)
    host = new_backend()
    host.load(rules.rulesets)
    policies = SimpleNamespace(
        current=PolicySet(MappingProxyType({org.id: org}), org.version, MappingProxyType({org.id: rules})), host=host
    )
    return DecisionService(policies, log=None, facts=facts)  # type: ignore[arg-type]


def _errors() -> float:
    return DECISION_ERRORS._value.get()  # prometheus_client keeps the count here


def test_a_sound_policy_still_allows_what_it_grants() -> None:
    answer = _service(_org()).answer(Question("li_na", "customer", "contact", organisation=ORG))
    assert answer.outcome == "allow"


def test_a_broken_compiled_organisation_is_a_deny_with_internal_error_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    org = _org()
    org.actions = Exploding()
    before = _errors()
    with caplog.at_level(logging.ERROR, logger="dutyline.decisions"):
        answer = _service(org).answer(Question("li_na", "customer", "contact", organisation=ORG))
    assert (answer.outcome, answer.decision.code, answer.allowed) == ("deny", "internal_error", False)
    assert answer.policy_version == 7
    assert _errors() == before + 1
    assert any("decision failed" in r.getMessage() and r.exc_info for r in caplog.records)
    shown = result_of(answer)  # what /v1/check answers: a deny whose reason says why
    assert shown["decision"] == "deny" and shown["code"] == "internal_error"
    assert shown["reasons"][0]["code"] == "internal_error"
    assert explanation(answer)["dutyline"]["code"] == "internal_error"  # AuthZEN's ?explain=true


def test_a_failing_fact_source_is_a_deny_not_an_allow_without_the_rules() -> None:
    before = _errors()
    question = Question("li_na", "expense", "submit", organisation=ORG, context={"amount": 100, "currency": "CNY"})
    assert _service(_org()).answer(question).outcome == "allow", "with facts the small claim is allowed"
    answer = _service(_org(), FailingLedger()).answer(question)
    assert (answer.outcome, answer.decision.code) == ("deny", "internal_error")
    assert _errors() == before + 1
