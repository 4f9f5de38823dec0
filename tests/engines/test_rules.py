"""Business rules combined with the duty grant: verdicts, approver chains, obligations, and the fast path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import msgspec
import pytest
from ruamel.yaml import YAML

from dutyline.engines.compiler import compile_org
from dutyline.engines.decision import Check, decide
from dutyline.engines.rulehost import RuleHost
from dutyline.engines.rules import Facts, apply_rules, compile_rules
from dutyline.orgmodel.validate import parse_organisation
from dutyline.orgmodel.windows import instant, zone
from dutyline.rulemodel.document import RulePack

REPO = Path(__file__).resolve().parents[2]

PACK = textwrap.dedent(
    """\
    org: sales_company
    rules:
      - kind: limit
        id: expense_limit
        name: {zh: 费用审批权限, en: expense approval limit}
        applies_to: {resources: [expense], actions: [approve]}
        attribute: context.amount
        limits: {senior_sales_representative: 5000, department_head: 50000}
      - kind: limit
        id: monthly_expenses
        name: {zh: 每月费用, en: monthly expenses}
        applies_to: {resources: [expense], actions: [submit]}
        attribute: context.amount
        limits: {sales_representative: 8000}
        period: month
      - kind: separation
        id: no_self_approval
        name: {zh: 不得审批本人申请, en: nobody approves their own claim}
        applies_to: {resources: [expense], actions: [approve]}
        check: self_approval
      - kind: notification
        id: big_customer_change
        name: {zh: 重要客户变更通知, en: key customer change notice}
        applies_to: {resources: [customer], actions: [edit]}
        when: context.key_account == true
        notify: [superior]
      - kind: time_window
        id: office_hours
        name: {zh: 办公时间, en: office hours}
        applies_to: {resources: [budget], actions: [approve]}
        windows:
          - {days: [mon, tue, wed, thu, fri], start: "08:30", end: "18:00"}
        holidays: ["2026-07-07"]
    """
)
MONDAY = "2026-07-06T10:00"  # zhao_lei is acting head 07-01 … 07-14


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    text = (REPO / "policies" / "orgs" / "sales_company.yaml").read_text(encoding="utf-8")
    org = compile_org(parse_organisation(text, "sales_company.yaml").organisation)
    pack = msgspec.convert(YAML(typ="safe").load(PACK), RulePack)
    rules = compile_rules([pack], org)
    host = RuleHost()
    host.load(rules.rulesets)
    return org, rules, host


def verdict(world, person: str, resource: str, action: str, at: str = MONDAY, facts: Facts | None = None, **context):  # type: ignore[no-untyped-def]
    org, rules, host = world
    check = Check(person, resource, action, instant(at, zone("Asia/Shanghai")), context=context or None)
    return apply_rules(host, org, rules, check, decide(org, check), facts or Facts())


def test_within_the_limit_is_allowed_and_above_it_needs_the_first_superior_whose_limit_covers(world) -> None:  # type: ignore[no-untyped-def]
    assert verdict(world, "liu_yang", "expense", "approve", amount=3000, requester="li_na").outcome == "allow"
    over = verdict(world, "liu_yang", "expense", "approve", amount=20000, requester="li_na")
    assert over.outcome == "needs_approval"
    assert [h.rule for h in over.hits] == ["expense_limit"]
    # department_head (limit 50,000) is held by wang_jianguo and, acting, by zhao_lei
    assert [(s.post, s.people) for s in over.approvers] == [("department_head", ("wang_jianguo", "zhao_lei"))]


def test_beyond_everyone_s_authority_is_a_deny(world) -> None:  # type: ignore[no-untyped-def]
    over = verdict(world, "liu_yang", "expense", "approve", amount=900000, requester="li_na")
    assert over.outcome == "deny" and over.approvers == ()
    assert [h.rule for h in over.hits] == ["expense_limit"]


def test_the_requester_is_never_their_own_approver(world) -> None:  # type: ignore[no-untyped-def]
    # the acting head asks for more than a senior representative may approve: the head post is above neither
    over = verdict(world, "zhao_lei", "expense", "approve", amount=20000, requester="li_na")
    assert over.outcome == "allow", "the acting head's own limit covers it"
    too_much = verdict(world, "zhao_lei", "expense", "approve", amount=60000, requester="li_na")
    assert all("zhao_lei" not in step.people for step in too_much.approvers)


def test_a_deny_rule_beats_a_needs_approval_rule(world) -> None:  # type: ignore[no-untyped-def]
    result = verdict(world, "liu_yang", "expense", "approve", amount=20000, requester="liu_yang")
    assert result.outcome == "deny"
    assert sorted(h.rule for h in result.hits) == ["expense_limit", "no_self_approval"]


def test_a_cumulative_limit_counts_what_was_already_used_this_period(world) -> None:  # type: ignore[no-untyped-def]
    used = Facts(
        usage=lambda rule, person, period: 7000.0 if (rule, period) == ("monthly_expenses", "2026-07") else 0.0
    )
    assert verdict(world, "li_na", "expense", "submit", amount=500, facts=used).outcome == "allow"
    over = verdict(world, "li_na", "expense", "submit", amount=1500, facts=used)
    assert over.outcome == "needs_approval" and over.hits[0].detail["amount"] == 8500
    next_month = verdict(world, "li_na", "expense", "submit", at="2026-08-03T10:00", amount=1500, facts=used)
    assert next_month.outcome == "allow"


def test_an_approval_presented_with_the_check_satisfies_the_rule_it_covers(world) -> None:  # type: ignore[no-untyped-def]
    approved = Facts(approved=frozenset({"expense_limit"}))
    assert (
        verdict(world, "liu_yang", "expense", "approve", amount=20000, requester="li_na", facts=approved).outcome
        == "allow"
    )


def test_notifications_are_obligations_of_an_allowed_decision(world) -> None:  # type: ignore[no-untyped-def]
    result = verdict(world, "li_na", "customer", "edit", key_account=True)
    assert result.outcome == "allow" and result.notify == ("department_head",)
    assert verdict(world, "li_na", "customer", "edit", key_account=False).notify == ()


def test_time_windows_use_the_organisations_clock(world) -> None:  # type: ignore[no-untyped-def]
    assert verdict(world, "wang_jianguo", "budget", "approve", at="2026-07-06T09:00").outcome == "allow"
    evening = verdict(world, "wang_jianguo", "budget", "approve", at="2026-07-06T19:00")
    assert evening.outcome == "deny" and evening.hits[0].rule == "office_hours"
    assert verdict(world, "wang_jianguo", "budget", "approve", at="2026-07-05T10:00").outcome == "deny", "a Sunday"


def test_on_a_holiday_no_window_opens(world) -> None:  # type: ignore[no-untyped-def]
    holiday = verdict(world, "wang_jianguo", "budget", "approve", at="2026-07-07T10:00")
    assert holiday.outcome == "deny" and holiday.hits[0].rule == "office_hours", "a Tuesday, but a holiday"
    assert verdict(world, "wang_jianguo", "budget", "approve", at="2026-07-08T10:00").outcome == "allow"
    # The organisation's day: 2026-07-06 20:00 in UTC is already the holiday in Shanghai.
    assert verdict(world, "wang_jianguo", "budget", "approve", at="2026-07-06T20:00Z").outcome == "deny"


def test_a_duty_deny_is_final_and_rules_are_not_consulted(world) -> None:  # type: ignore[no-untyped-def]
    result = verdict(world, "li_na", "budget", "approve")
    assert result.outcome == "deny" and result.hits == ()


class CountingHost(RuleHost):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def fires(self, name, event):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().fires(name, event)


def test_requests_no_rule_mentions_never_reach_the_rules_engine(world) -> None:  # type: ignore[no-untyped-def]
    org, rules, _ = world
    host = CountingHost()
    host.load(rules.rulesets)
    check = Check("li_na", "customer", "contact", instant(MONDAY, zone("Asia/Shanghai")))
    assert apply_rules(host, org, rules, check, decide(org, check)).outcome == "allow"
    assert host.calls == 0
    check = Check("liu_yang", "expense", "approve", instant(MONDAY, zone("Asia/Shanghai")), context={"amount": 1})
    apply_rules(host, org, rules, check, decide(org, check))
    assert host.calls > 0


def test_a_rule_message_states_what_was_compared_in_both_languages(world) -> None:  # type: ignore[no-untyped-def]
    from dutyline.engines.explain import explain_rules

    org, rules, host = world
    pack = msgspec.convert(YAML(typ="safe").load(PACK), RulePack)
    limit = pack.rules[0]
    worded = msgspec.structs.replace(
        limit,
        message=msgspec.convert(
            {"zh": "金额 {amount} 超过限额 {limit}({{原文}})", "en": "{amount} is over {limit}"}, type(limit.name)
        ),
    )
    pack = msgspec.structs.replace(pack, rules=[worded])
    compiled = compile_rules([pack], org)
    host.load({**rules.rulesets, **compiled.rulesets})
    check = Check(
        "liu_yang",
        "expense",
        "approve",
        instant(MONDAY, zone("Asia/Shanghai")),
        context={"amount": 20000, "requester": "li_na"},
    )
    reason = explain_rules(org, apply_rules(host, org, compiled, check, decide(org, check)))[0]
    assert reason.zh == "规则「expense_limit」:金额 20,000 超过限额 5,000({原文})"
    assert reason.en == "rule expense_limit: 20,000 is over 5,000"
    host.load(rules.rulesets)


def test_a_placeholder_the_rule_cannot_fill_is_refused_when_the_pack_is_checked() -> None:
    from dutyline.errors import Invalid
    from dutyline.orgmodel.source import load_yaml
    from dutyline.rulemodel.validate import check_pack

    data, source = load_yaml(PACK, "pack.yaml")
    data["rules"][0]["message"] = {"zh": "超过 {limit}", "en": "over {budget}"}
    with pytest.raises(Invalid) as refused:
        check_pack(data, source, None)
    assert any("unknown placeholder {budget}" in i.message and "{limit}" in i.message for i in refused.value.issues)


def test_a_vacant_post_is_not_told_into_the_void_the_post_above_it_is_and_says_why() -> None:
    text = (REPO / "policies" / "orgs" / "sales_company.yaml").read_text(encoding="utf-8")
    document = parse_organisation(text, "sales_company.yaml").organisation
    # nobody holds the senior representative's post any more
    people = [p for p in document.people if not any(a.post == "senior_sales_representative" for a in p.assignments)]
    org = compile_org(msgspec.structs.replace(document, people=people))
    data = YAML(typ="safe").load(PACK)
    data["rules"] = [
        {
            "kind": "notification",
            "id": f"tell_{n}",
            "name": {"zh": "通知", "en": "notice"},
            "applies_to": {"resources": ["customer"], "actions": ["edit"]},
            "notify": ["senior_sales_representative"],
        }
        for n in (1, 2)  # two rules telling one post: it is told once
    ]
    rules = compile_rules([msgspec.convert(data, RulePack)], org)
    host = RuleHost()
    host.load(rules.rulesets)
    check = Check("li_na", "customer", "edit", instant(MONDAY, zone("Asia/Shanghai")))
    verdict = apply_rules(host, org, rules, check, decide(org, check))
    host.close()
    assert verdict.outcome == "allow"
    assert verdict.notify == (org.superiors["senior_sales_representative"],)
    assert [(n.post, n.instead_of) for n in verdict.notices] == [
        (org.superiors["senior_sales_representative"], "senior_sales_representative")
    ]
