"""Issue 11, bypasses 1–5, 11 and 13, against a real server with the seed organisations and rule packs: a rule
whose input is missing, ill-typed, non-finite, negative, in another letter case or hostile answers its effect
(with a reason naming the input), and a rule pack that would compile too large is refused when written."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.hardening.conftest import Stack

MONDAY_MORNING = "2026-07-06T10:00"  # inside every seed's business hours


def check(
    stack: Stack, org: str, person: str, resource: str, action: str, context: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "organisation": org,
        "subject": {"id": person},
        "resource": {"type": resource},
        "action": action,
        "at": MONDAY_MORNING,
        "context": context or {},
    }
    for key, value in extra.items():
        if key == "resource_id":
            body["resource"]["id"] = value
        elif key == "resource_properties":
            body["resource"]["properties"] = value
        else:
            body[key] = value
    answer = stack.root.post("/v1/check", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def fired(answer: dict[str, Any]) -> list[str]:
    return [r["rule"] for r in answer["rules"]]


# --- 1. the currency of a limited amount ------------------------------------------------------------------------


@pytest.mark.parametrize("currency", ["USD", "cny", "CNY ", ["CNY"], 1, True, {"code": "CNY"}, None, "XYZ"])
def test_a_teller_cannot_enter_999_999_999_in_any_currency_spelling(stack: Stack, currency: Any) -> None:
    context = {"amount": 999_999_999} | ({} if currency is None else {"currency": currency})
    answer = check(stack, "ninger_branch", "huang_wei", "transaction", "enter", context)
    assert answer["decision"] != "allow" and "transaction_limit" in fired(answer)


def test_a_currency_the_pack_has_no_rate_for_is_refused_with_a_reason_naming_it(stack: Stack) -> None:
    answer = check(stack, "ninger_branch", "huang_wei", "transaction", "enter", {"amount": 100, "currency": "usd"})
    assert answer["decision"] == "deny"
    rule = next(r for r in answer["rules"] if r["rule"] == "transaction_limit")
    assert rule["detail"] == {"input": "context.currency", "problem": "no_rate", "given": "USD"}
    assert any("USD" in reason["en"] and "context.currency" not in reason["en"] for reason in answer["reasons"])


def test_a_lower_case_currency_is_the_same_currency(stack: Stack) -> None:
    answer = check(stack, "ninger_branch", "huang_wei", "transaction", "enter", {"amount": 30_000, "currency": " cny "})
    assert answer["decision"] == "allow", answer


# --- 2. negative amounts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [-999_999_999, -300_000.0])
def test_a_negative_amount_counts_by_its_magnitude(stack: Stack, amount: float) -> None:
    answer = check(stack, "ninger_branch", "huang_wei", "transaction", "enter", {"amount": amount, "currency": "CNY"})
    assert answer["decision"] != "allow" and fired(answer) == ["transaction_limit"]


def test_a_negative_expense_is_out_of_the_declared_range_of_the_budget_check(stack: Stack) -> None:
    answer = check(
        stack,
        "sales_company",
        "wang_jianguo",
        "expense",
        "approve",
        {"amount": -30_000, "currency": "CNY", "requester": "liu_yang", "budget_remaining": 10_000},
    )
    assert answer["decision"] == "deny" and "head_over_budget" in fired(answer)
    rule = next(r for r in answer["rules"] if r["rule"] == "head_over_budget")
    assert rule["detail"]["problem"] == "out_of_range" and rule["detail"]["input"] == "context.amount"


# --- 3. maker-checker and self-approval -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "maker", ["MISSING", None, ["wu_qiang"], {"id": "wu_qiang"}, "WU_QIANG", "wu_qiang ", 7, "nobody"]
)
def test_a_reviewer_cannot_review_their_own_entry_whatever_the_maker_looks_like(stack: Stack, maker: Any) -> None:
    context = {} if maker == "MISSING" else {"maker": maker}
    answer = check(stack, "ninger_branch", "wu_qiang", "transaction", "review", context)
    assert answer["decision"] == "deny" and fired(answer) == ["review_maker_checker"]


def test_a_reviewer_reviews_someone_elses_entry_named_in_any_letter_case(stack: Stack) -> None:
    answer = check(stack, "ninger_branch", "wu_qiang", "transaction", "review", {"maker": " Huang_Wei"})
    assert answer["decision"] == "allow", answer


@pytest.mark.parametrize("requester", ["MISSING", None, ["zhao_lei"], {"id": "zhao_lei"}, "ZHAO_LEI", " zhao_lei"])
def test_nobody_approves_their_own_claim_whatever_the_requester_looks_like(stack: Stack, requester: Any) -> None:
    context = {"amount": 3000, "currency": "CNY", "budget_remaining": 10_000}
    if requester != "MISSING":
        context["requester"] = requester
    body = {
        "organisation": "sales_company",
        "subject": {"id": "zhao_lei"},
        "resource": {"type": "expense"},
        "action": "approve",
        "at": "2026-07-08T10:00",
        "context": context,
    }
    answer = stack.root.post("/v1/check", json=body).json()
    assert answer["decision"] == "deny" and "expense_self_approval" in fired(answer)


# --- 4. suitability ---------------------------------------------------------------------------------------------


def test_a_product_of_unknown_risk_is_suitable_for_nobody(stack: Stack) -> None:
    answer = check(stack, "securities_branch", "zheng_yan", "wealth_product", "sell", {"customer_risk_tolerance": 5})
    assert answer["decision"] == "deny" and fired(answer) == ["product_suitability"]
    assert answer["rules"][0]["detail"]["input"] == "resource.risk_level"


def test_the_stored_risk_level_wins_over_the_callers(stack: Stack) -> None:
    answer = check(
        stack,
        "securities_branch",
        "zheng_yan",
        "wealth_product",
        "sell",
        {"customer_risk_tolerance": 3},
        resource_id="equity_growth_fund",
        resource_properties={"risk_level": 1},
    )
    assert answer["decision"] == "deny" and answer["rules"][0]["detail"] == {"risk": 4.0, "tolerance": 3.0}


@pytest.mark.parametrize("tolerance", ["MISSING", None, "5", True, [5], math.inf])
def test_an_unknown_tolerance_is_not_suitable(stack: Stack, tolerance: Any) -> None:
    context = {} if tolerance == "MISSING" else {"customer_risk_tolerance": tolerance}
    if tolerance is math.inf:  # JSON has no infinity: a number beyond doubles is the nearest a caller can send
        context = {"customer_risk_tolerance": 10**400}
    answer = check(
        stack, "securities_branch", "zheng_yan", "wealth_product", "sell", context, resource_id="steady_income_fund"
    )
    assert answer["decision"] == "deny" and fired(answer) == ["product_suitability"]


# --- 5. deny conditions whose data is missing -------------------------------------------------------------------


@pytest.mark.parametrize("budget", ["MISSING", None, "10000", [10_000], {"left": 10_000}])
def test_the_head_cannot_approve_without_a_readable_remaining_budget(stack: Stack, budget: Any) -> None:
    context: dict[str, Any] = {"amount": 30_000, "currency": "CNY", "requester": "liu_yang"}
    if budget != "MISSING":
        context["budget_remaining"] = budget
    answer = check(stack, "sales_company", "wang_jianguo", "expense", "approve", context)
    assert answer["decision"] == "deny" and fired(answer) == ["head_over_budget"]
    assert answer["rules"][0]["detail"]["input"] == "context.budget_remaining"


def test_the_head_approves_within_a_readable_remaining_budget(stack: Stack) -> None:
    context = {"amount": 30_000, "currency": "CNY", "requester": "liu_yang", "budget_remaining": 50_000}
    assert check(stack, "sales_company", "wang_jianguo", "expense", "approve", context)["decision"] == "allow"


# --- 11. a deeply nested value a rule compares ------------------------------------------------------------------


def test_a_deeply_nested_value_a_rule_reads_is_refused_as_too_large_and_the_server_goes_on(stack: Stack) -> None:
    nested: Any = "wu_qiang"
    for _ in range(28):
        nested = [nested]
    answer = check(stack, "ninger_branch", "wu_qiang", "transaction", "review", {"maker": nested})
    assert answer["decision"] == "deny" and answer["rules"][0]["detail"]["problem"] == "too_large"
    deep_condition = check(
        stack,
        "sales_company",
        "wang_jianguo",
        "expense",
        "approve",
        {"amount": 1, "currency": "CNY", "requester": "liu_yang", "budget_remaining": nested},
    )
    assert deep_condition["decision"] == "deny"
    assert (
        check(stack, "ninger_branch", "wu_qiang", "transaction", "review", {"maker": "huang_wei"})["decision"]
        == "allow"
    )


# --- 13. rule packs too big to run safely -----------------------------------------------------------------------


def _pack(rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"org": "sales_company", "rules": rules}


def _condition(index: int, when: str) -> dict[str, Any]:
    return {
        "kind": "condition",
        "id": f"big_{index}",
        "name": {"zh": "大条件", "en": "big condition"},
        "applies_to": {"resources": ["expense"], "actions": ["submit"]},
        "when": when,
    }


def test_a_condition_that_compiles_too_large_is_refused_on_write_and_on_preview(stack: Stack) -> None:
    when = " * ".join(f"context.a{i}" for i in range(45)) + " / context.b > 5"  # ~700 characters
    assert len(when) > 600
    pack = _pack([_condition(0, when)])
    written = stack.root.post("/admin/orgs/sales_company/rules", json={"name": "huge_conditions", "pack": pack})
    assert written.status_code == 400, written.text
    assert "DUTYLINE_MAX_CONDITION_BYTES" in written.text and "rules[0]" in written.text
    document = stack.root.get("/admin/orgs/sales_company").json()["document"]
    preview = stack.root.post(
        "/admin/orgs/sales_company/preview",
        json={"document": document, "rules": {"huge_conditions": pack}, "checks": []},
    )
    assert "DUTYLINE_MAX_CONDITION_BYTES" in preview.text
    assert stack.root.get("/admin/orgs/sales_company/rules/huge_conditions").status_code == 404


def test_a_pack_with_more_rules_than_allowed_is_refused(stack: Stack) -> None:
    pack = _pack([_condition(i, "context.amount > 1") for i in range(501)])
    written = stack.root.post("/admin/orgs/sales_company/rules", json={"name": "many_rules", "pack": pack})
    assert written.status_code == 400 and "DUTYLINE_MAX_PACK_RULES" in written.text, written.text
