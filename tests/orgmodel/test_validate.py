"""`dutyline validate` semantics: every error at once, each with its file, line and a plain message."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from dutyline.errors import Invalid
from dutyline.orgmodel.document import schema
from dutyline.orgmodel.source import load_yaml
from dutyline.orgmodel.validate import parse_organisation

REPO = Path(__file__).resolve().parents[2]

BASE = textwrap.dedent(
    """\
    id: branch
    name: {zh: 支行, en: Branch}
    catalogue:
      resources:
        - id: transaction
          name: {zh: 交易, en: transaction}
          actions: [enter, review]
        - id: vault
          name: {zh: 金库, en: vault}
          actions: [open]
      groups:
        - id: valuables
          name: {zh: 贵重物品, en: valuables}
          members: [vault]
    departments:
      - id: counter
        name: {zh: 营业部, en: Counter}
        head: manager
    posts:
      - id: manager
        name: {zh: 营业经理, en: Manager}
        department: counter
      - id: teller
        name: {zh: 柜员, en: Teller}
        department: counter
        reports_to: manager
        duties:
          - number: "1"
            text: 办理柜面业务
            permissions:
              - {resource: transaction, actions: [enter]}
      - id: reviewer
        name: {zh: 复核员, en: Reviewer}
        department: counter
        reports_to: manager
    separation_of_duties:
      - id: maker_checker
        posts: [teller, reviewer]
        reason: {zh: 柜员与复核员不得兼任, en: A teller never reviews}
    people:
      - id: zhang_wei
        name: {zh: 张伟, en: Zhang Wei}
        assignments:
          - {post: teller}
    """
)


def errors_of(text: str) -> list[tuple[int, str]]:
    with pytest.raises(Invalid) as caught:
        parse_organisation(text, "branch.yaml")
    return [(issue.line, issue.message) for issue in caught.value.issues]


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    count = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            count += 1
            if count == occurrence:
                return number
    raise AssertionError(f"{needle!r} not in text")


def test_the_base_document_is_valid() -> None:
    parsed = parse_organisation(BASE, "branch.yaml")
    assert parsed.organisation.id == "branch"
    assert parsed.warnings == ()


def test_unknown_superior_post_is_reported_on_its_line() -> None:
    text = BASE.replace("reports_to: manager", "reports_to: boss", 1)
    assert errors_of(text) == [(line_of(text, "reports_to: boss"), "unknown superior post 'boss'")]


def test_a_cycle_in_reporting_lines_is_reported_once() -> None:
    text = BASE.replace(
        "    department: counter\n  - id: teller",
        "    department: counter\n    reports_to: teller\n  - id: teller",
    )
    [(line, message)] = errors_of(text)
    assert message == "reporting lines form a cycle: manager → teller → manager"
    assert line == line_of(text, "reports_to: teller")


def test_a_cycle_in_departments_is_reported() -> None:
    text = BASE.replace(
        "    head: manager\n",
        "    head: manager\n    parent: back\n  - id: back\n    name: {zh: 后台, en: Back}\n    parent: counter\n",
    )
    messages = [m for _, m in errors_of(text)]
    assert messages == ["departments are each other's parents in a cycle: back → counter → back"]


def test_a_duty_granting_an_action_not_in_the_catalogue() -> None:
    text = BASE.replace("actions: [enter]}", "actions: [enter, delete]}")
    assert errors_of(text) == [
        (
            line_of(text, "actions: [enter, delete]"),
            "action 'delete' is not in the catalogue for 'transaction' (it has: enter, review)",
        )
    ]


def test_a_person_holding_two_mutually_exclusive_posts() -> None:
    text = BASE.replace("      - {post: teller}", "      - {post: teller}\n      - {post: reviewer, kind: concurrent}")
    assert errors_of(text) == [
        (
            line_of(text, "post: reviewer, kind: concurrent"),
            (
                "posts 'teller' and 'reviewer' may not be held by one person at the same time "
                "(separation of duties 'maker_checker')"
            ),
        )
    ]


def test_exclusive_posts_at_different_times_are_allowed() -> None:
    text = BASE.replace(
        "      - {post: teller}",
        "      - {post: teller, valid_to: 2026-06-30}\n      - {post: reviewer, valid_from: 2026-07-01}",
    )
    parse_organisation(text, "branch.yaml")


def test_an_acting_window_that_ends_before_it_starts() -> None:
    text = BASE.replace(
        "      - {post: teller}",
        "      - {post: teller}\n      - {post: manager, kind: acting, valid_from: 2026-07-10, valid_to: 2026-07-01}",
    )
    [(line, message)] = errors_of(text)
    assert message == "the assignment ends (2026-07-01) before it starts (2026-07-10)"
    assert line == line_of(text, "kind: acting")


def test_an_acting_assignment_needs_a_window() -> None:
    text = BASE.replace("      - {post: teller}", "      - {post: teller}\n      - {post: manager, kind: acting}")
    assert [m for _, m in errors_of(text)] == ["an acting assignment needs both valid_from and valid_to"]


def test_duplicate_ids_name_the_first_definition() -> None:
    text = BASE.replace("  - id: reviewer", "  - id: teller")
    messages = [m for _, m in errors_of(text)]
    assert f"duplicate post id 'teller' (first defined on line {line_of(text, '- id: teller')})" in messages


def test_every_error_is_reported_at_once_sorted_by_line() -> None:
    text = (
        BASE.replace("reports_to: manager", "reports_to: boss", 1)
        .replace("actions: [enter]}", "actions: [fly]}")
        .replace("      - {post: teller}", "      - {post: clerk}")
    )
    found = errors_of(text)
    assert [m for _, m in found] == [
        "unknown superior post 'boss'",
        "action 'fly' is not in the catalogue for 'transaction' (it has: enter, review)",
        "unknown post 'clerk'",
    ]
    assert [line for line, _ in found] == sorted(line for line, _ in found)


def test_structural_errors_name_the_key_and_line() -> None:
    text = BASE.replace(
        "    department: counter\n    reports_to: manager", "    departmnet: counter\n    reports_to: manager", 1
    )
    found = errors_of(text)
    line = line_of(text, "- id: teller")
    assert (line, "`department` is missing: it is required here") in found
    known = "department, duties, headcount, id, inherits, name, qualifications, reports_to"
    unknown = f"unknown key `departmnet` (the keys here: {known}); did you mean `department`?"
    assert (line_of(text, "departmnet: counter"), unknown) in found, "at the key's own line"


def test_an_unquoted_duty_number_gets_a_hint() -> None:
    text = BASE.replace('number: "1"', "number: 2.1")
    assert errors_of(text) == [(line_of(text, "number: 2.1"), "`number` must be text in quotes, got the number 2.1")]


def test_bad_ids_are_rejected_with_the_rule() -> None:
    text = BASE.replace("id: zhang_wei", "id: Zhang Wei")
    [(line, message)] = errors_of(text)
    assert line == line_of(text, "id: Zhang Wei")
    assert message == (
        "`id` must be an id: lower case letters, digits and underscores, starting with a letter, got 'Zhang Wei'"
    )


def test_duplicate_yaml_keys_are_an_error_with_a_line() -> None:
    text = BASE.replace(
        "    department: counter\n    reports_to: manager",
        "    department: counter\n    department: counter\n    reports_to: manager",
        1,
    )
    [(line, message)] = errors_of(text)
    assert "duplicate key" in message
    assert line == line_of(text, "department: counter", 3)


def test_yaml_syntax_errors_have_a_line() -> None:
    text = BASE.replace("name: {zh: 柜员, en: Teller}", "name: {zh: 柜员, en: Teller")
    [(line, message)] = errors_of(text)
    assert message.startswith("invalid YAML")
    assert line >= line_of(text, "en: Teller")


def test_alias_bombs_are_refused() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "\n".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]" for i in range(8)
    )
    with pytest.raises(Invalid) as caught:
        parse_organisation(bomb, "bomb.yaml")
    assert "aliases" in caught.value.issues[0].message


def test_headcount_exceeded_is_a_warning_not_an_error() -> None:
    text = BASE + "  - id: li_na\n    name: {zh: 李娜, en: Li Na}\n    assignments:\n      - {post: teller}\n"
    parsed = parse_organisation(text, "branch.yaml")
    assert [w.message for w in parsed.warnings] == ["2 people hold post 'teller' but its headcount is 1"]


def test_inheritance_cycles_are_errors() -> None:
    text = BASE.replace(
        "    department: counter\n  - id: teller", "    department: counter\n    inherits: [teller]\n  - id: teller"
    ).replace("    reports_to: manager\n    duties:", "    reports_to: manager\n    inherits: [manager]\n    duties:")
    assert [m for _, m in errors_of(text)] == ["posts inherit from each other in a cycle: manager → teller → manager"]


def test_group_cycles_are_errors() -> None:
    text = BASE.replace(
        "      members: [vault]",
        "      members: [vault, inner]\n    - id: inner\n      name: {zh: 内, en: inner}\n      members: [valuables]",
    )
    assert [m for _, m in errors_of(text)] == [
        "resource groups contain each other in a cycle: inner → valuables → inner"
    ]


def test_the_published_schema_is_generated_from_the_format() -> None:
    published = json.loads((REPO / "policies" / "schema" / "org.schema.json").read_text(encoding="utf-8"))
    assert published == schema(), "run: dutyline schema > policies/schema/org.schema.json"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("id: x\nvalid_from: 2026-13-01\n", 2),
        ("id: x\npeople:\n  - since: 2026-02-30T10:00:00\n", 3),
        ("at: 2026-02-28 25:00:00\n", 1),
    ],
)
def test_an_unquoted_impossible_date_is_an_error_at_its_line_not_a_crash(text: str, line: int) -> None:
    with pytest.raises(Invalid) as refused:
        load_yaml(text, "org.yaml")
    [issue] = refused.value.issues
    assert (issue.file, issue.line, issue.code) == ("org.yaml", line, "syntax")
    assert "not a real date or time" in issue.message


def test_a_quoted_impossible_date_is_text_for_the_validator_to_judge() -> None:
    data, _ = load_yaml("valid_from: '2026-13-01'\n", "org.yaml")
    assert data == {"valid_from": "2026-13-01"}


COUNTER = Path(__file__).resolve().parents[1] / "data" / "workflow" / "test_counter.yaml"


def test_an_acting_assignment_standing_in_for_someone_who_does_not_hold_the_post_is_warned_at_its_line() -> None:
    text = COUNTER.read_text(encoding="utf-8")
    assert parse_organisation(text, "counter.yaml").warnings == (), "kay and rob stand in for mia, the manager"
    slip = text.replace(
        "{post: manager, kind: acting, valid_from: 2020-01-01, valid_to: 2099-12-31, stands_in_for: mia}",
        "{post: manager, kind: acting, valid_from: 2020-01-01, valid_to: 2099-12-31, stands_in_for: bob}",
        1,
    )
    [warning] = parse_organisation(slip, "counter.yaml").warnings
    assert (warning.severity, warning.code, warning.params["case"]) == ("warning", "bad_stand_in", "not_holder")
    assert warning.params["person"] == "bob" and warning.params["post"] == "manager"
    assert slip.splitlines()[warning.line - 1].count("stands_in_for: bob") == 1
