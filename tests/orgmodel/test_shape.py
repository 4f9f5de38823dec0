"""Shape errors in words a compliance officer can act on: the field and its own line, what is expected and what was
found, the branch a rule's `kind` names rather than the whole rule, and every meaning error of the rest in the same
answer; near misses of ids get a suggestion."""

from __future__ import annotations

import pytest

from dutyline.errors import Invalid, Issue, IssueCode
from dutyline.orgmodel.source import load_yaml
from dutyline.rulemodel.validate import check_pack
from tests.orgmodel.test_invalid_corpus import PACKS_ORG

PACK = """\
org: sales_company
rules:
  - kind: limit
    id: expense_claim_limit
    name: {zh: 单笔费用报销限额, en: per-claim expense limit}
    applies_to: {resources: [expense], actions: [submit]}
    attribute: context.amount
    limits: {sales_representative: 5000}
    default: lots
  - kind: dual_control
    id: budget_dual_control
    name: {zh: 预算双人复核, en: budget needs a second person}
    applies_to: {resources: [budget], actions: [approve]}
    posts: [sales_representativ]
"""


def issues(text: str) -> list[Issue]:
    data, source = load_yaml(text, "pack.yaml")
    with pytest.raises(Invalid) as refused:
        check_pack(data, source, PACKS_ORG)
    return refused.value.issues


def line_of(text: str, needle: str) -> int:
    return next(n for n, row in enumerate(text.splitlines(), 1) if needle in row)


def test_a_limit_whose_default_is_text_names_the_field_its_line_and_what_is_expected() -> None:
    first, *_ = issues(PACK)
    assert (first.line, first.path, first.code) == (
        line_of(PACK, "default: lots"),
        "rules[0].default",
        IssueCode.WRONG_TYPE,
    )
    assert first.message == "`default` must be a number, got the text 'lots'"
    assert first.params == {"field": "default", "expected": "number", "got_type": "text", "got": "'lots'"}


def test_the_unknown_post_of_another_rule_comes_in_the_same_answer() -> None:
    found = [(i.line, i.path, i.code) for i in issues(PACK)]
    assert found == [
        (line_of(PACK, "default: lots"), "rules[0].default", IssueCode.WRONG_TYPE),
        (line_of(PACK, "sales_representativ]"), "rules[1].posts[0]", IssueCode.UNKNOWN_POST),
    ]


def test_a_near_miss_of_a_post_id_gets_a_did_you_mean() -> None:
    unknown = issues(PACK)[1]
    assert unknown.message == (
        "unknown post 'sales_representativ' in 'sales_company'; did you mean `sales_representative`?"
    )
    assert unknown.params["suggestion"] == "sales_representative"


def test_an_id_with_nothing_near_it_gets_no_suggestion() -> None:
    text = PACK.replace("default: lots", "default: 0").replace("sales_representativ]", "chief_executive]")
    [unknown] = issues(text)
    assert unknown.message == "unknown post 'chief_executive' in 'sales_company'"
    assert unknown.params.get("suggestion") == ""


def test_a_mistyped_kind_is_one_error_at_the_kind_with_the_kinds_allowed() -> None:
    text = PACK.replace("kind: limit", "kind: limt")
    kind = issues(text)[0]
    assert (kind.line, kind.path, kind.code) == (line_of(text, "kind: limt"), "rules[0].kind", IssueCode.NOT_ALLOWED)
    assert kind.message.startswith("`kind` must be one of limit, separation, dual_control")
    assert kind.message.endswith("got 'limt'; did you mean `limit`?")


def test_errors_inside_a_rule_are_reported_at_their_fields_not_as_the_whole_rule() -> None:
    text = PACK.replace("attribute: context.amount", "attribute: amount").replace("5000}", "-1}")
    found = {(i.path, i.line, i.code) for i in issues(text)}
    assert ("rules[0].attribute", line_of(text, "attribute: amount"), IssueCode.BAD_FORMAT) in found
    assert ("rules[0].limits.sales_representative", line_of(text, "-1}"), IssueCode.OUT_OF_RANGE) in found
    assert all("{" not in i.message or "'kind'" not in i.message for i in issues(text)), "no rule quoted whole"


def test_a_missing_field_is_named_at_its_rules_line() -> None:
    text = PACK.replace("    attribute: context.amount\n", "")
    missing = issues(text)[0]
    assert (missing.path, missing.line, missing.code) == ("rules[0].attribute", 3, IssueCode.MISSING_FIELD)
    assert missing.message == "`attribute` is missing: it is required here"
