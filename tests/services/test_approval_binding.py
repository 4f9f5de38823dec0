"""What an approval is bound to (engines.binding) and how its uses are taken (services.ledger, services.decisions).

The organisation is tests/data/workflow/test_counter.yaml (ann and bob are tellers, mia the manager, known also as
mia@counter.example); the rules are a small pack written here, one of each kind of input: a limited amount and its
currency, a party, a condition's value, and a condition that binds only the manager's requests.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from ruamel.yaml import YAML
from sqlalchemy.orm import Session, sessionmaker

from dutyline.engines.binding import ApprovalTerms, Binding, bind, differences, present
from dutyline.engines.compiler import CompiledOrg, compile_org
from dutyline.engines.decision import Check, Decision, decide
from dutyline.engines.rules import CompiledRules, compile_rules
from dutyline.orgmodel.validate import parse_organisation
from dutyline.rulemodel.document import RulePack
from dutyline.services import orgs
from dutyline.services.approvals import ApprovalRecord, ApprovalService
from dutyline.services.decisions import DecisionService, Question, to_check
from dutyline.services.ledger import Ledger
from dutyline.services.policies import PolicyService

WORKFLOW = Path(__file__).resolve().parents[1] / "data" / "workflow"
ORG = "test_counter"
PACK = """
org: test_counter
rules:
  - kind: limit
    id: entry_limit
    name: {zh: 交易限额, en: transaction limit}
    applies_to: {resources: [transaction], actions: [enter]}
    attribute: context.amount
    currency: CNY
    limits: {teller: 10000, manager: 100000, director: 1000000}
    default: 0
  - kind: separation
    id: entry_maker_checker
    name: {zh: 经办与复核分离, en: maker and checker}
    applies_to: {resources: [transaction], actions: [enter]}
    check: maker_checker
    maker: context.maker
  - kind: condition
    id: flagged_entry
    name: {zh: 可疑交易, en: flagged entry}
    applies_to: {resources: [transaction], actions: [enter]}
    when: context.flag == "amber"
    effect: needs_approval
  - kind: condition
    id: manager_secret
    name: {zh: 经理专用, en: for managers}
    applies_to: {resources: [transaction], actions: [enter], posts: [manager]}
    when: context.secret == "x"
    effect: deny
"""


@pytest.fixture(scope="module")
def compiled() -> tuple[CompiledOrg, CompiledRules]:
    text = (WORKFLOW / "test_counter.yaml").read_text(encoding="utf-8")
    org = compile_org(parse_organisation(text, "test_counter.yaml").organisation, version=1)
    pack = msgspec.convert(YAML(typ="safe").load(PACK), RulePack)
    return org, compile_rules([pack], org)


def binding(
    compiled: tuple[CompiledOrg, CompiledRules], subject: str = "ann", resource_id: str | None = "t1", **context: Any
) -> Binding:
    org, rules = compiled
    check = Check(subject, "transaction", "enter", at=0.0, resource_id=resource_id, context=context)
    return bind(org, rules, check, decide(org, check))


BASE = {"amount": 20000, "currency": "CNY", "maker": "bob", "flag": "amber"}


# --- the digest -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        {"amount": 20000.0},
        {"currency": " cny "},
        {"flag": "amber", "note": "a property no rule reads"},
        {"amount": 15000},  # a limited amount is not in the digest: it is bounded apart
    ],
)
def test_equivalent_requests_have_one_digest(compiled: tuple[CompiledOrg, CompiledRules], written: dict) -> None:
    assert binding(compiled, **(BASE | written)).digest == binding(compiled, **BASE).digest


def test_a_party_is_bound_as_the_person_it_names(compiled: tuple[CompiledOrg, CompiledRules]) -> None:
    assert (
        binding(compiled, **(BASE | {"maker": "mia@counter.example"})).digest
        == binding(compiled, **(BASE | {"maker": "mia"})).digest
    )
    unknown = binding(compiled, **(BASE | {"maker": "nobody"}))
    assert unknown.digest != binding(compiled, **BASE).digest and '"unresolved":"nobody"' in unknown.canonical


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"currency": "USD"}, "context.currency"),
        ({"maker": "mia"}, "context.maker"),
        ({"maker": None}, "context.maker"),
        ({"flag": "red"}, "context.flag"),
        ({"flag": 1}, "context.flag"),
        ({"resource_id": None}, "resource.id"),  # a missing id is a value, not a wildcard
        ({"resource_id": "t2"}, "resource.id"),
        ({"subject": "bob"}, "subject"),
    ],
)
def test_every_attribute_the_applying_rules_read_is_bound(
    compiled: tuple[CompiledOrg, CompiledRules], change: dict, named: str
) -> None:
    subject, resource_id = change.pop("subject", "ann"), change.pop("resource_id", "t1")
    changed = binding(compiled, subject, resource_id, **(BASE | change))
    original = binding(compiled, **BASE)
    assert changed.digest != original.digest
    assert differences(original.canonical, changed.canonical) == [named]


def test_only_the_rules_that_apply_to_the_requests_posts_bind_it(compiled: tuple[CompiledOrg, CompiledRules]) -> None:
    teller = binding(compiled, "ann", **BASE)
    assert binding(compiled, "ann", **(BASE | {"secret": "x"})).digest == teller.digest, (
        "manager_secret is not a teller's"
    )
    manager = binding(compiled, "mia", **BASE)
    assert binding(compiled, "mia", **(BASE | {"secret": "x"})).digest != manager.digest


def test_limited_amounts_are_kept_as_exact_magnitudes(compiled: tuple[CompiledOrg, CompiledRules]) -> None:
    assert binding(compiled, **BASE).limits == {"context.amount": Decimal(20000)}
    assert binding(compiled, **(BASE | {"amount": -20000.5})).limits == {"context.amount": Decimal("20000.5")}
    for missing in (None, "20000", True, float("nan"), float("inf")):
        assert binding(compiled, **(BASE | {"amount": missing})).limits == {"context.amount": None}


# --- presenting -----------------------------------------------------------------------------------------------------

NOW = dt.datetime(2026, 7, 6, 2, tzinfo=dt.UTC)


def terms(of: Binding, **change: Any) -> ApprovalTerms:
    values: dict[str, Any] = {
        "id": "apv_1",
        "organisation": ORG,
        "status": "approved",
        "requester": "ann",
        "rules": ("entry_limit",),
        "digest": of.digest,
        "bound": of.canonical,
        "limits": of.limits,
        "uses": 1,
        "uses_left": 1,
        "expires_at": NOW + dt.timedelta(hours=1),
        "decided_by": "mia",
        "decided_at": NOW - dt.timedelta(hours=1),
    }
    return ApprovalTerms(**(values | change))


def presented(
    compiled: tuple[CompiledOrg, CompiledRules], approval: ApprovalTerms | None, **context: Any
) -> tuple[frozenset[str], str]:
    org, rules = compiled
    check = Check("ann", "transaction", "enter", at=0.0, resource_id="t1", context=context)
    decision: Decision = decide(org, check)
    shown = present(org, rules, check, decision, "apv_1", approval, NOW)
    return shown.covers, shown.refusal[1] if shown.refusal else ""


@pytest.mark.parametrize(
    ("change", "context", "refusal"),
    [
        ({}, {"amount": 20000}, ""),
        ({}, {"amount": 5}, ""),
        ({"organisation": "elsewhere"}, {}, "approval apv_1 was not found in test_counter"),
        ({"status": "pending"}, {}, "approval apv_1 is pending, not approved"),
        ({"status": "rejected"}, {}, "approval apv_1 is rejected, not approved"),
        (
            {"digest": None},
            {},
            "approval apv_1 was opened before approvals were bound to their request; open a new one",
        ),
        ({"expires_at": NOW}, {}, "approval apv_1 expired at 2026-07-06T02:00:00+00:00"),
        ({"expires_at": None}, {}, "approval apv_1 expired at ?"),
        ({"uses_left": 0, "uses": 3}, {}, "approval apv_1 is used up (all 3 use(s) taken)"),
        ({}, {"flag": "red"}, "approval apv_1 was for a different request (context.flag differs)"),
        ({}, {"amount": 20000.01}, "approval apv_1 approved context.amount up to 20000; this request asks 20000.01"),
        ({}, {"amount": -20001}, "approval apv_1 approved context.amount up to 20000; this request asks 20001"),
        (
            {},
            {"amount": None},
            "approval apv_1 approved context.amount up to 20000; this request gives no number for it",
        ),
    ],
)
def test_an_approval_covers_its_rules_only_for_its_request_while_it_lasts(
    compiled: tuple[CompiledOrg, CompiledRules], change: dict, context: dict, refusal: str
) -> None:
    approval = terms(binding(compiled, **BASE), **change)
    covers, why = presented(compiled, approval, **(BASE | context))
    assert why == refusal
    assert covers == (frozenset({"entry_limit"}) if not refusal else frozenset())


def test_an_unknown_approval_covers_nothing(compiled: tuple[CompiledOrg, CompiledRules]) -> None:
    assert presented(compiled, None, **BASE) == (frozenset(), "approval apv_1 was not found in test_counter")


def test_an_approval_of_no_stated_amount_covers_only_a_request_stating_none(
    compiled: tuple[CompiledOrg, CompiledRules],
) -> None:
    approval = terms(binding(compiled, **(BASE | {"amount": None})))
    assert presented(compiled, approval, **(BASE | {"amount": None}))[1] == ""
    assert (
        "approved a request without context.amount; this request asks 1"
        in presented(compiled, approval, **(BASE | {"amount": 1}))[1]
    )


# --- taking uses: one transaction per use, never more uses than there are ---------------------------------------


@pytest.fixture
def services(sessions: sessionmaker[Session]) -> tuple[DecisionService, ApprovalService]:
    orgs.import_paths(sessions, [WORKFLOW], author="test")
    policies = PolicyService(sessions)
    policies.refresh()
    ledger = Ledger(sessions, policies)
    decisions = DecisionService(policies, None, ledger)
    return decisions, ApprovalService(sessions, policies, ledger, decisions, 3600.0)


def _open(services: tuple[DecisionService, ApprovalService], uses: int) -> tuple[Question, ApprovalRecord]:
    decisions, approvals = services
    question = Question("ann", "transaction", "enter", ORG, resource_id="t-race", context={"amount": 20000})
    answer = decisions.answer(question)
    assert answer.outcome == "needs_approval"
    approval = approvals.open(answer, {"context": {"amount": 20000}}, "", uses)
    approvals.decide(approval.id, "mia", True, "")
    return dataclasses.replace(question, approval_id=approval.id), approval


@pytest.mark.parametrize("uses", [1, 3])
def test_concurrent_decisions_take_no_more_uses_than_the_approval_has(
    services: tuple[DecisionService, ApprovalService], uses: int
) -> None:
    decisions, approvals = services
    presenting, approval = _open(services, uses)
    start = threading.Barrier(10)

    def decide_once(_: int) -> str:
        start.wait()
        return decisions.answer(presenting).outcome

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        outcomes = list(pool.map(decide_once, range(10)))
    assert outcomes.count("allow") == uses and outcomes.count("needs_approval") == 10 - uses
    after = approvals.get(approval.id)
    assert after.uses_left == 0
    assert [e.kind for e in after.events].count("used") == uses


def test_a_use_names_the_decision_and_the_answer_names_the_approval(
    services: tuple[DecisionService, ApprovalService],
) -> None:
    decisions, approvals = services
    presenting, approval = _open(services, 2)
    answer = decisions.answer(presenting)
    used = answer.used_approval
    assert answer.outcome == "allow" and used is not None and used.terms is not None
    assert (used.approval_id, used.terms.decided_by, used.terms.uses_left) == (approval.id, "mia", 1)
    assert [r.code for r in answer.reasons][-1] == "approved"
    assert approvals.get(approval.id).events[-1].comment == f"decision {answer.decision_id}"


def test_a_stale_presentation_takes_no_use(services: tuple[DecisionService, ApprovalService]) -> None:
    """What a presentation read (one use left) may be out of date when it comes to take it: the conditional update
    looks at the row as it is."""
    decisions, _ = services
    presenting, _ = _open(services, 1)
    org = decisions.policies.get(ORG)
    assert org is not None
    ledger = decisions.facts
    check = to_check(presenting)
    shown = ledger.presented(org, decisions.policies.rules.get(ORG), presenting, check, decide(org, check))
    assert shown.covers == frozenset({"entry_limit"})
    assert ledger.consume(shown, "d-1") is not None
    assert ledger.consume(shown, "d-2") is None, "the same stale terms cannot take a second use"
