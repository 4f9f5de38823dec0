"""The usage ledger directly: exact totals per rule, person and period, reversals, the amounts it refuses, and
approval history for four-eyes rules. The organisation is the counter (daily_cash: teller 50,000 a day)."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.rules import CompiledRules
from dutyline.errors import Conflict, Invalid, NotFound
from dutyline.runtime import Runtime
from dutyline.services.decisions import Question
from dutyline.services.ledger import Ledger, parse_amount
from tests.services.conftest import COUNTER, new_id

pytestmark = pytest.mark.live


def counter(runtime: Runtime) -> tuple[CompiledOrg, CompiledRules | None]:
    org = runtime.policies.current.get(COUNTER)
    assert org is not None
    return org, runtime.policies.current.rules.get(COUNTER)


DAY = 86400.0


def a_day(index: int) -> float:
    """Noon (Asia/Shanghai) of a day of 2020 that only one test uses: its totals start at zero."""
    return 1577851200.0 + index * DAY  # 2020-01-01T12:00+08:00


def test_usage_adds_up_exactly_per_person_rule_and_day(runtime: Runtime) -> None:
    org, rules = counter(runtime)
    first = runtime.ledger.record_usage(org, rules, "bob", "daily_cash", Decimal("0.1"), a_day(1))
    second = runtime.ledger.record_usage(org, rules, "bob", "daily_cash", Decimal("0.2"), a_day(1))
    assert (first.period, second.period) == ("2020-01-02", "2020-01-02"), "a day in the organisation's zone"
    assert second.total == Decimal("0.3"), "exact decimals, not 0.30000000000000004"
    assert runtime.ledger.usage_total(COUNTER, "daily_cash", "bob", "2020-01-02") == Decimal("0.3")
    other = runtime.ledger.record_usage(org, rules, "bob", "daily_cash", Decimal(7), a_day(2))
    assert (other.period, other.total) == ("2020-01-03", Decimal(7)), "another day, another total"


def test_usage_recorded_today_makes_the_next_withdrawal_need_approval(runtime: Runtime) -> None:
    org, rules = counter(runtime)
    withdraw = Question(
        "tom", "cash_box", "withdraw", organisation=COUNTER, resource_id=new_id(), context={"amount": 30000}
    )
    assert runtime.decisions.answer(withdraw).outcome == "allow"
    runtime.ledger.record_usage(org, rules, "tom", "daily_cash", Decimal(30000), time.time())
    answer = runtime.decisions.answer(withdraw)
    assert answer.outcome == "needs_approval" and [h.rule for h in answer.verdict.hits] == ["daily_cash"]


def test_a_reversal_takes_an_entry_back_once(runtime: Runtime) -> None:
    org, rules = counter(runtime)
    entry = runtime.ledger.record_usage(org, rules, "bob", "daily_cash", Decimal(500), a_day(3))
    back = runtime.ledger.record_usage(org, rules, "bob", "daily_cash", None, a_day(3), reverses=entry.id)
    assert (back.amount, back.total, back.reverses, back.period) == (Decimal(-500), Decimal(0), entry.id, entry.period)
    with pytest.raises(Conflict, match=f"usage entry {entry.id} is already reversed \\(by entry {back.id}\\)"):
        runtime.ledger.record_usage(org, rules, "bob", "daily_cash", None, a_day(3), reverses=entry.id)
    with pytest.raises(Conflict, match=f"usage entry {back.id} is itself the reversal of entry {entry.id}"):
        runtime.ledger.record_usage(org, rules, "bob", "daily_cash", None, a_day(3), reverses=back.id)


def test_a_reversal_names_an_entry_of_the_same_rule_person_and_amount(runtime: Runtime) -> None:
    org, rules = counter(runtime)
    entry = runtime.ledger.record_usage(org, rules, "bob", "daily_cash", Decimal(500), a_day(4))
    with pytest.raises(Invalid, match=r"reverses: usage entry \d+ is bob's usage of daily_cash, not ann's") as refused:
        runtime.ledger.record_usage(org, rules, "ann", "daily_cash", None, a_day(4), reverses=entry.id)
    assert [i.path for i in refused.value.issues] == ["reverses"]
    with pytest.raises(Invalid, match=r"amount: a reversal's amount is the reversed entry's \(500\), not 400") as wrong:
        runtime.ledger.record_usage(org, rules, "bob", "daily_cash", Decimal(400), a_day(4), reverses=entry.id)
    assert [i.path for i in wrong.value.issues] == ["amount"]
    with pytest.raises(NotFound, match="usage entry 987654321 not found in 'test_counter'"):
        runtime.ledger.record_usage(org, rules, "bob", "daily_cash", None, a_day(4), reverses=987654321)


@pytest.mark.parametrize(
    ("person", "rule", "error", "message", "field"),
    [
        ("nobody", "daily_cash", NotFound, "person 'nobody' not found in 'test_counter'", None),
        ("bob", "no_such_rule", NotFound, "rule 'no_such_rule' not found in the rule packs of 'test_counter'", None),
        ("bob", "entry_limit", Invalid, "rule: 'entry_limit' is not a limit with a period", "rule"),
    ],
)
def test_usage_of_an_unknown_person_or_rule_or_one_without_a_ledger_is_refused(
    runtime: Runtime, person: str, rule: str, error: type[Exception], message: str, field: str | None
) -> None:
    org, rules = counter(runtime)
    with pytest.raises(error, match=message) as refused:
        runtime.ledger.record_usage(org, rules, person, rule, Decimal(5), a_day(5))
    if field is not None:
        assert [i.path for i in refused.value.issues] == [field]  # type: ignore[attr-defined]


def test_usage_needs_an_amount_or_the_entry_it_reverses(runtime: Runtime) -> None:
    org, rules = counter(runtime)
    with pytest.raises(Invalid, match="`amount`") as refused:
        runtime.ledger.record_usage(org, rules, "bob", "daily_cash", None, a_day(6))
    assert [i.path for i in refused.value.issues] == ["amount"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "must be a number, not true"),
        ("5", "must be a JSON number, not text"),
        (None, "must be a number"),
        (float("nan"), "must be finite"),
        (Decimal("Infinity"), "must be finite"),
        (0, "must be positive (to correct an entry, reverse it: `reverses`)"),
        (-3, "must be positive (to correct an entry, reverse it: `reverses`)"),
        (10**18, "must be below 10^18"),
        (Decimal("1.0000000000000000001"), "at most 18 significant digits"),
        (Decimal("1E-19"), "at most 18 decimal places"),
    ],
)
def test_an_amount_is_a_positive_finite_exact_number_or_invalid_naming_amount(value: object, message: str) -> None:
    with pytest.raises(Invalid) as refused:
        parse_amount(value)
    assert str(refused.value) == f"amount: {message}" and [i.path for i in refused.value.issues] == ["amount"]


@pytest.mark.parametrize(
    ("value", "exact"), [(5, Decimal(5)), (0.1, Decimal("0.1")), (Decimal("12.50"), Decimal("12.50"))]
)
def test_an_amount_is_kept_as_written(value: object, exact: Decimal) -> None:
    assert parse_amount(value) == exact and str(parse_amount(value)) == str(exact)


def test_another_replica_sees_usage_and_approvals_on_refresh(runtime: Runtime) -> None:
    org, rules = counter(runtime)
    other = Ledger(runtime.sessions, runtime.policies)
    other.refresh()
    recorded = runtime.ledger.record_usage(org, rules, "ann", "daily_cash", Decimal(1234), time.time())
    assert other.usage_total(COUNTER, "daily_cash", "ann", recorded.period) == recorded.total - Decimal(1234)
    other.refresh()
    assert other.usage_total(COUNTER, "daily_cash", "ann", recorded.period) == recorded.total
