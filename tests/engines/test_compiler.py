"""The compiler: Casbin policy lines and the decision index built from one document."""

from __future__ import annotations

from dutyline.engines.compiler import compile_org, full_number, policy_lines
from dutyline.engines.decision import decide_person, decide_post
from dutyline.engines.explain import explain
from dutyline.orgmodel.validate import parse_organisation
from dutyline.orgmodel.windows import instant, zone

INSIDE = "2026-07-05T10:00"
AFTER = "2026-07-15T00:00"


def sales(example_text: str):  # type: ignore[no-untyped-def]
    return parse_organisation(example_text, "sales_company.yaml").organisation


def at(text: str) -> float:
    return instant(text, zone("Asia/Shanghai"))


def test_policy_lines_use_posts_departments_and_common_as_roles(example_text: str) -> None:
    lines = list(policy_lines(sales(example_text)))
    assert ["p", "department:business_dept", "sales_company", "budget", "approve", "allow"] in lines
    assert ["p", "post:sales_representative", "sales_company", "budget", "approve", "deny"] in lines
    assert ["g", "post:department_head", "department:business_dept", "sales_company"] in lines
    assert ["g", "post:senior_sales_representative", "post:sales_representative", "sales_company"] in lines
    assert ["g", "person:li_na", "post:sales_representative", "sales_company"] in lines
    assert ["g2", "customer", "sales_records", "sales_company"] in lines
    assert len(lines) == len({tuple(line) for line in lines}), "no line twice"


def test_a_wildcard_expands_to_the_catalogue_actions(example_text: str) -> None:
    lines = list(policy_lines(sales(example_text)))
    granted = {
        line[4] for line in lines if line[:4] == ["p", "department:business_dept", "sales_company", "sales_team"]
    }
    assert granted == {"view", "recruit", "train", "manage"}


def test_acting_assignments_appear_only_at_moments_inside_their_window(example_text: str) -> None:
    acting = ["g", "person:zhao_lei", "post:department_head", "sales_company"]
    assert acting in list(policy_lines(sales(example_text), at(INSIDE)))
    assert acting not in list(policy_lines(sales(example_text), at(AFTER)))


def test_a_reporting_line_alone_grants_nothing(example_text: str) -> None:
    compiled = compile_org(sales(example_text))
    # the representatives report to the head, yet have none of the head's permissions
    assert decide_person(compiled, "li_na", "budget", "view", at(INSIDE)).code == "no_grant"
    assert compiled.superiors["sales_representative"] == "department_head"


def test_an_explicit_deny_beats_an_allow_and_both_are_explained(example_text: str) -> None:
    compiled = compile_org(sales(example_text))
    decision = decide_person(compiled, "zhao_lei", "budget", "approve", at(INSIDE))
    assert decision.outcome == "deny"
    assert [b.post for b in decision.denied_by] == ["sales_representative"]
    assert [b.post for b in decision.allowed_by] == ["department_head"]
    [reason] = explain(compiled, decision, "zhao_lei", "budget", "approve")
    assert reason.code == "denied_by_duty"
    assert "销售人员不得审批销售预算" in reason.zh and "forbids" in reason.en


def test_an_acting_grant_is_explained_with_its_window_and_duty(example_text: str) -> None:
    compiled = compile_org(sales(example_text))
    decision = decide_person(compiled, "zhao_lei", "sales_strategy", "approve", at(INSIDE))
    [reason] = explain(compiled, decision, "zhao_lei", "sales_strategy", "approve")
    assert (reason.post, reason.acting, reason.valid_from, reason.valid_to) == (
        "department_head",
        True,
        "2026-07-01",
        "2026-07-14",
    )
    assert reason.stands_in_for == "wang_jianguo"
    assert reason.duty is not None and reason.duty.number == "1" and reason.duty.owner == "department:business_dept"
    assert "顶替,2026-07-01 至 2026-07-14" in reason.zh
    assert "(acting, 2026-07-01 to 2026-07-14)" in reason.en


def test_inherited_grants_name_the_post_whose_duty_it_is(example_text: str) -> None:
    compiled = compile_org(sales(example_text))
    decision = decide_post(compiled, "senior_sales_representative", "customer", "contact")
    assert [(b.post, b.grant.via_post, b.grant.duty.number) for b in decision.allowed_by] == [
        ("senior_sales_representative", "sales_representative", "1")
    ]


def test_nested_duty_numbers_are_written_in_full() -> None:
    assert full_number("", "2") == "2"
    assert full_number("2", "2.1") == "2.1"
    assert full_number("二", "3") == "二.3"
    assert full_number("三.(一)", "6") == "三.(一).6"
    assert full_number("三", "(一)") == "三.(一)"


def test_why_nothing_applied_is_said_plainly(example_text: str) -> None:
    compiled = compile_org(sales(example_text))
    cases = {
        ("nobody", "customer", "view"): "unknown_subject",
        ("li_na", "spaceship", "view"): "unknown_resource",
        ("li_na", "customer", "launch"): "unknown_action",
        ("li_na", "budget", "approve"): "denied_by_duty",
        ("chen_jing", "customer", "edit"): "no_grant",
    }
    for (person, resource, action), code in cases.items():
        decision = decide_person(compiled, person, resource, action, at(INSIDE))
        assert (decision.outcome, decision.code) == ("deny", code)
        reasons = explain(compiled, decision, person, resource, action)
        assert reasons and all(r.zh and r.en for r in reasons)
