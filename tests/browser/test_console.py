"""The admin console, as its users work with it, in Chromium against a real server.

The journeys: an HR admin moves a person and sees the impact before saving; an HR admin changes the resource
catalogue and a separation-of-duties entry is previewed with the conflict it makes; a compliance officer lowers a
limit and the simulator's decision changes; an auditor reads but cannot change; a change without the CSRF
header is refused; an HR admin of one organisation cannot see another; with DUTYLINE_REQUIRE_AUTH on, the
session is enough for the pages that call the decision API. And every page renders, in English and Chinese,
with its screenshot when DUTYLINE_SCREENSHOTS is set.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import ORG, PASSWORD, Console, screenshot
from tests.conftest import REPO
from tests.live import LiveServer

expect = pytest.importorskip(
    "playwright.sync_api", reason="the Playwright package is missing (pip install -e '.[test]')"
).expect


def log_in(page: Any, console: Console, username: str, lang: str = "en") -> None:
    """Log in the way a person does: the login form, by keyboard."""
    page.add_init_script(f"localStorage.getItem('dutyline.lang') || localStorage.setItem('dutyline.lang', '{lang}')")
    page.goto(console.url)
    page.get_by_label("Username" if lang == "en" else "用户名").fill(username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("navigation")).to_be_visible()


def open_page(page: Any, console: Console, route: str) -> None:
    page.goto(f"{console.url}#/{route}")
    expect(page.locator("main .loading")).to_have_count(0)


def toast(page: Any) -> Any:
    return page.locator("#toast")


# --- (1) an HR admin moves a person ------------------------------------------------------------------------------


def test_an_hr_admin_moves_a_person_after_seeing_the_impact_and_the_chart_shows_it(page: Any, console: Console) -> None:
    log_in(page, console, "hr")
    open_page(page, console, f"{ORG}/people")
    page.get_by_role("link", name="Edit Li Na").click()
    expect(page.get_by_role("heading", name="Edit person Li Na")).to_be_visible()

    # A second post that separation of duties forbids: the preview says so, beside the row, and cannot be saved.
    page.get_by_role("button", name="Add an assignment").click()
    second = page.locator(".row[data-index='1']")
    second.get_by_label("Post", exact=True).select_option("sales_analyst")
    second.get_by_label("Kind", exact=True).select_option("concurrent")
    page.get_by_role("button", name="Review impact and save…").click()
    dialog = page.get_by_role("dialog", name="Impact of this change")
    expect(dialog.locator(".impact-sod")).to_contain_text("analyst_not_seller")
    expect(dialog.get_by_role("button", name="Save", exact=True)).to_be_disabled()
    dialog.get_by_role("button", name="Cancel").click()
    expect(second.locator(":scope > .field-error")).to_contain_text("separation of duties")
    second.get_by_role("button", name="Remove assignment 2").click()

    # The move itself: the impact first (who gains what), nothing stored until Save.
    page.locator(".row[data-index='0']").get_by_label("Post", exact=True).select_option("senior_sales_representative")
    page.get_by_label("Comment").fill("Li Na promoted")
    page.get_by_role("button", name="Review impact and save…").click()
    dialog = page.get_by_role("dialog", name="Impact of this change")
    gains = dialog.locator(".impact-permissions tr[data-person='li_na']")
    expect(gains).to_contain_text("+ sales expense · approve")
    expect(dialog).to_contain_text("headcount")  # the senior post's headcount of 1 is exceeded: a warning, not an error
    screenshot(page, "impact-preview")
    stored = console.api("GET", f"/admin/orgs/{ORG}/people/li_na").json()
    assert [a["post"] for a in stored["assignments"]] == ["sales_representative"], "a preview stores nothing"
    dialog.get_by_role("button", name="Save", exact=True).click()
    expect(toast(page)).to_contain_text("Saved: revision")

    open_page(page, console, f"{ORG}/chart")
    expect(page.locator(".node[data-post='senior_sales_representative'] .holders")).to_contain_text("Li Na")
    expect(page.locator(".node[data-post='sales_representative'] .holders")).not_to_contain_text("Li Na")
    latest = console.api("GET", f"/admin/orgs/{ORG}/versions?limit=1").json()["items"][0]
    assert (latest["author"], latest["comment"]) == ("hr", "Li Na promoted")


def test_an_acting_assignment_next_year_previews_what_she_gains_then_and_her_limit_nothing_now(
    page: Any, console: Console
) -> None:
    log_in(page, console, "hr")
    open_page(page, console, f"{ORG}/people")
    page.get_by_role("link", name="Edit Chen Jing").click()
    page.get_by_role("button", name="Add an assignment").click()
    acting = page.locator(".row[data-index='1']")
    acting.get_by_label("Post", exact=True).select_option("department_head")
    acting.get_by_label("Kind", exact=True).select_option("acting")
    acting.get_by_label("From", exact=True).fill("2031-03-03")
    acting.get_by_label("To", exact=True).fill("2031-03-09")
    page.get_by_role("button", name="Review impact and save…").click()
    dialog = page.get_by_role("dialog", name="Impact of this change")
    # Nothing now; over time, what she gains that week, and her claim limit for it.
    expect(dialog.locator(".impact-permissions tr[data-person='chen_jing']")).to_have_count(0)
    expect(dialog.locator(".impact-timeline tr[data-person='chen_jing']").first).to_contain_text("+ ")
    expect(dialog.locator(".impact-timeline tr[data-person='chen_jing']").first).to_contain_text("2031")
    expect(
        dialog.locator(".impact-limits tr[data-person='chen_jing'][data-rule='expense_claim_limit']")
    ).to_contain_text("50,000")
    screenshot(page, "impact-over-time")
    dialog.get_by_role("button", name="Cancel").click()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_rule_change_previews_each_field_before_and_after_and_whose_limit_moves_in_both_languages(
    page: Any, console: Console, lang: str
) -> None:
    log_in(page, console, "carl", lang)
    open_page(page, console, f"{ORG}/rules")
    cell = page.locator("input.limit[data-rule='expense_claim_limit'][data-post='sales_representative']")
    # Shown as 5,000; another test of this module may have saved a new limit already.
    before = int(cell.input_value().replace(",", ""))
    after = before + 3000
    cell.fill(str(after))
    page.locator("form.matrix button[type='submit']").click()
    dialog = page.get_by_role("dialog", name="Check this rule change" if lang == "en" else "确认规则变更")
    line = dialog.locator(
        ".impact-rule-changes li[data-rule='expense_claim_limit'][data-field='limits.sales_representative']"
    )
    post = "Sales Representative: " if lang == "en" else "销售代表:"
    expect(line).to_have_text(f"expense_claim_limit · {post}{before:,} → {after:,}")
    # Whoever holds the post then (another test of this module may have moved someone): their limit moves too.
    expect(dialog.locator(".impact-limits tr[data-rule='expense_claim_limit']").first).to_contain_text(
        f"{before:,} → {after:,}"
    )
    screenshot(page, f"impact-rule-fields-{lang}")
    dialog.get_by_role("button", name="Cancel" if lang == "en" else "取消").click()
    expect(dialog).to_have_count(0)
    items = console.api("GET", f"/admin/orgs/{ORG}/rules").json()["items"]
    stored = next(r for i in items for r in i["pack"]["rules"] if r["id"] == "expense_claim_limit")
    assert stored["limits"]["sales_representative"] == before, "a preview stores nothing"


def test_a_stale_edit_is_refused_with_someone_else_changed_this_and_reload_shows_their_change(
    page: Any, console: Console
) -> None:
    log_in(page, console, "hr")
    open_page(page, console, f"{ORG}/edit/people/wang_jianguo")
    # Meanwhile someone else renames him.
    etag = console.api("GET", f"/admin/orgs/{ORG}/people/wang_jianguo").headers["etag"]
    other = console.api(
        "PATCH",
        f"/admin/orgs/{ORG}/people/wang_jianguo",
        json={"name": {"zh": "王建国", "en": "Jianguo Wang"}},
        headers={"If-Match": etag},
    )
    assert other.status_code == 200, other.text
    page.get_by_label("Note", exact=True).fill("back from leave")
    page.get_by_role("button", name="Review impact and save…").click()
    page.get_by_role("dialog").get_by_role("button", name="Save", exact=True).click()
    alert = page.locator(".form-status [role=alert]")
    expect(alert).to_contain_text("Someone else changed this since you opened it")
    alert.get_by_role("button", name="Reload").click()
    expect(page.get_by_label("Name (English)")).to_have_value("Jianguo Wang")


# --- (1b) the catalogue and separation of duties --------------------------------------------------------------------


def test_an_hr_admin_adds_a_resource_action_and_a_group_member_after_seeing_the_impact(
    page: Any, console: Console
) -> None:
    log_in(page, console, "hr")
    page.get_by_role("link", name="Resources & SoD").click()
    expect(page.get_by_role("heading", name="Resources, groups and separation of duties")).to_be_visible()
    page.get_by_role("link", name="Edit sales data").click()
    expect(page.get_by_role("heading", name="Edit resource type sales data")).to_be_visible()

    # An action name the catalogue does not allow: refused in the preview, and the problem is beside the field.
    page.get_by_role("button", name="Add an action").click()
    action = page.get_by_label("Action 4", exact=True)
    expect(action).to_be_focused()
    page.keyboard.type("export data")
    page.keyboard.press("Enter")  # the form's submit: Review impact and save…
    dialog = page.get_by_role("dialog", name="Impact of this change")
    expect(dialog).to_contain_text("This change would be refused")
    expect(dialog.get_by_role("button", name="Save", exact=True)).to_be_disabled()
    page.keyboard.press("Escape")
    expect(page.locator(".row[data-index='3'] > .field-error")).to_contain_text(
        "must be an action name: letters, digits and _ . : - (approve, can_read_user, GET), got 'export data'"
    )
    expect(action).to_be_focused()

    action.fill("export")
    page.get_by_label("Comment").fill("sales data may be exported")
    page.get_by_role("button", name="Review impact and save…").click()
    dialog = page.get_by_role("dialog", name="Impact of this change")
    expect(dialog).to_contain_text("resources changed: sales_data")
    assert console.api("GET", f"/admin/orgs/{ORG}/resources/sales_data").json()["actions"] == [
        "view",
        "analyse",
        "report",
    ], "a preview stores nothing"
    dialog.get_by_role("button", name="Save", exact=True).click()
    expect(toast(page)).to_contain_text("Saved: revision")
    expect(page.locator("tr[data-resource='sales_data']")).to_contain_text("export")
    assert console.api("GET", f"/admin/orgs/{ORG}/resources/sales_data").json()["actions"] == [
        "view",
        "analyse",
        "report",
        "export",
    ]

    # A group member: whoever holds a permission on the group gains it on the new member.
    page.get_by_role("link", name="Edit sales records").click()
    page.get_by_role("button", name="Add a member").click()
    page.get_by_label("Member 4", exact=True).select_option("sales_target")
    page.get_by_role("button", name="Review impact and save…").click()
    dialog = page.get_by_role("dialog", name="Impact of this change")
    expect(dialog.locator(".impact-permissions tr[data-person='chen_jing']")).to_contain_text("+ sales target · view")
    dialog.get_by_role("button", name="Save", exact=True).click()
    expect(toast(page)).to_contain_text("Saved: revision")
    expect(page.locator("tr[data-group='sales_records']")).to_contain_text("sales target")
    group = console.api("GET", f"/admin/orgs/{ORG}/groups/sales_records").json()
    assert group["members"] == ["sales_data", "market_research", "customer", "sales_target"]
    latest = console.api("GET", f"/admin/orgs/{ORG}/versions?limit=2").json()["items"]
    assert [v["author"] for v in latest] == ["hr", "hr"] and latest[1]["comment"] == "sales data may be exported"


def test_a_separation_of_duties_entry_that_someone_breaks_is_listed_in_the_preview_and_not_saved(
    page: Any, console: Console
) -> None:
    log_in(page, console, "root")
    open_page(page, console, f"{ORG}/catalogue")
    page.get_by_role("button", name="New separation-of-duties entry").click()
    page.get_by_label("Id", exact=True).fill("seller_not_head")
    page.get_by_label("Post 1", exact=True).select_option("sales_representative")
    page.get_by_label("Post 2", exact=True).select_option("department_head")
    page.get_by_label("Reason (Chinese)").fill("销售代表不得兼任营业部负责人")
    page.get_by_label("Reason (English)").fill("A seller may not head the department that measures the sellers.")
    page.get_by_role("button", name="Review impact and save…").click()
    dialog = page.get_by_role("dialog", name="Impact of this change")
    conflicts = dialog.locator(".impact-sod")
    expect(conflicts).to_contain_text("Zhao Lei")  # a sales representative, and acting head of the department
    expect(conflicts).to_contain_text("separation of duties 'seller_not_head'")
    expect(dialog.get_by_role("button", name="Save", exact=True)).to_be_disabled()
    screenshot(page, "catalogue-sod-preview")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.locator("form.editor .form-issues")).to_contain_text("seller_not_head")
    assert console.api("GET", f"/admin/orgs/{ORG}/separation_of_duties/seller_not_head").status_code == 404

    # Posts nobody holds together: saved, and listed on the page.
    page.get_by_label("Post 2", exact=True).select_option("senior_sales_representative")
    page.get_by_role("button", name="Add a post").click()
    page.get_by_label("Post 3", exact=True).select_option("sales_analyst")
    page.get_by_role("button", name="Remove post 1").click()
    expect(page.get_by_label("Post 1", exact=True)).to_be_focused()
    page.get_by_role("button", name="Review impact and save…").click()
    dialog = page.get_by_role("dialog", name="Impact of this change")
    expect(dialog).to_contain_text("separation of duties added: seller_not_head")
    dialog.get_by_role("button", name="Save", exact=True).click()
    expect(toast(page)).to_contain_text("Saved: revision")
    row = page.locator("tr[data-sod='seller_not_head']")
    expect(row).to_contain_text("Senior Sales Representative")
    expect(row).to_contain_text("nobody")
    expect(page.locator("tr[data-sod='analyst_not_seller']")).to_be_visible()
    stored = console.api("GET", f"/admin/orgs/{ORG}/separation_of_duties/seller_not_head").json()
    assert stored["posts"] == ["senior_sales_representative", "sales_analyst"]
    assert stored["reason"]["en"] == "A seller may not head the department that measures the sellers."
    screenshot(page, "catalogue", full_page=True)

    page.get_by_role("button", name=re.compile("Switch language")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("资源、资源组与职责分离")
    expect(page.get_by_role("link", name="资源与职责分离")).to_have_attribute("aria-current", "page")


# --- (2) a compliance officer lowers a limit -------------------------------------------------------------------------


def simulate(page: Any, person: str, amount: str) -> Any:
    page.get_by_label("Person").select_option(person)
    page.get_by_label("Resource type").select_option("expense")
    page.get_by_label("Action").select_option("submit")
    page.get_by_label("Amount").fill(amount)
    page.get_by_role("button", name="Decide").click()
    answer = page.locator("#sim-result .answer").first
    expect(answer).to_be_visible()
    return answer


def test_a_compliance_officer_lowers_a_limit_and_the_simulator_shows_the_request_now_needs_approval(
    page: Any, console: Console
) -> None:
    log_in(page, console, "carl")
    open_page(page, console, f"{ORG}/simulator")
    before = simulate(page, "zhao_lei", "3000")
    expect(before).to_have_attribute("data-decision", "allow")

    open_page(page, console, f"{ORG}/rules")
    cell = page.get_by_label("Sales Representative — per-claim expense limit", exact=True)
    expect(cell).to_have_value("5,000")
    cell.fill("2000")
    screenshot(page, "rules-matrix")

    # Before saving: kept as a draft, the simulator decides the request under the draft rules.
    page.locator("form.matrix").get_by_role("button", name="Review impact and save…").click()
    page.get_by_role("dialog", name="Check this rule change").get_by_role("button", name="Keep as draft").click()
    page.get_by_role("link", name="Try it in the simulator").click()
    expect(page.locator("#draft-panel")).to_contain_text("PUT rules/")
    now = simulate(page, "zhao_lei", "3000")
    expect(now).to_have_attribute("data-decision", "allow")
    draft = page.locator("#sim-draft")
    expect(draft).to_have_attribute("data-decision", "needs_approval")
    expect(draft).to_contain_text("expense_claim_limit")
    expect(draft).to_contain_text("The draft changes this decision.")
    page.get_by_role("button", name="Discard draft").click()
    expect(page.locator("#no-draft")).to_be_visible()

    open_page(page, console, f"{ORG}/rules")
    cell = page.get_by_label("Sales Representative — per-claim expense limit", exact=True)
    expect(cell).to_have_value("5,000")
    cell.fill("2000")
    page.locator("form.matrix").get_by_role("button", name="Review impact and save…").click()
    dialog = page.get_by_role("dialog", name="Check this rule change")
    expect(dialog).to_contain_text("expense_claim_limit")
    dialog.get_by_role("button", name="Save", exact=True).click()
    expect(toast(page)).to_contain_text("Saved: revision")
    expect(page.get_by_label("Sales Representative — per-claim expense limit", exact=True)).to_have_value("2,000")

    open_page(page, console, f"{ORG}/simulator")
    after = simulate(page, "zhao_lei", "3000")  # the form remembers the request; filled again all the same
    expect(after).to_have_attribute("data-decision", "needs_approval")
    expect(after).to_contain_text("expense_claim_limit")
    expect(page.locator("#sim-approvers")).to_contain_text("Head of Business Department")
    screenshot(page, "simulator", full_page=True)


def test_a_question_tried_in_the_simulator_is_left_out_of_the_decision_log_unless_asked_for_and_marked(
    page: Any, console: Console
) -> None:
    log_in(page, console, "root")
    open_page(page, console, f"{ORG}/simulator")
    page.get_by_label("Person").select_option("zhao_lei")
    page.get_by_label("Resource type").select_option("expense")
    page.get_by_label("Action").select_option("submit")
    page.get_by_label("Amount").fill("1234")
    with page.expect_response(lambda r: r.url.endswith("/v1/check") and r.request.method == "POST") as asked:
        page.get_by_role("button", name="Decide").click()
    expect(page.locator("#sim-result .answer").first).to_be_visible()
    decision_id = asked.value.json()["decision_id"]
    assert asked.value.request.post_data_json["simulated"] is True, "the simulator says it is trying a question out"
    logged = {"organisation": ORG, "subject": "zhao_lei", "limit": 1000, "simulated": "include"}
    deadline = time.monotonic() + 10  # the decision log is written in batches, off the decision path
    while decision_id not in {
        d["decision_id"] for d in httpx.get(f"{console.server.url}/v1/decisions", params=logged).json()["items"]
    }:
        assert time.monotonic() < deadline, "the decision log did not get the simulated check"
        time.sleep(0.2)

    open_page(page, console, f"{ORG}/decisions")
    row = page.locator(f"#decision-log tbody tr[data-decision='{decision_id}']")
    expect(page.get_by_label("Simulator's questions")).to_have_value("exclude")
    expect(page.locator("#decision-log tbody tr, main p.empty").first).to_be_visible()
    expect(row).to_have_count(0)
    page.get_by_label("Simulator's questions").select_option("include")
    page.get_by_role("button", name="Apply filters").click()
    expect(row).to_have_count(1)
    expect(row).to_have_class("simulated")
    expect(row.locator(".badge.muted")).to_have_text("simulated")
    page.get_by_label("Simulator's questions").select_option("only")
    page.get_by_role("button", name="Apply filters").click()
    expect(row).to_have_count(1)
    expect(page.locator("#decision-log tbody tr:not(.simulated)")).to_have_count(0)


def test_yaml_errors_are_shown_with_their_line_numbers(page: Any, console: Console) -> None:
    log_in(page, console, "carl")
    open_page(page, console, f"{ORG}/rules")
    editor = page.locator("#yaml")
    expect(editor).not_to_have_value("")
    text = editor.input_value()
    broken = text.replace("senior_sales_representative: 10000", "nobody_at_all: 10000", 1)
    line = next(i for i, row in enumerate(broken.splitlines(), 1) if "nobody_at_all" in row)
    editor.fill(broken)
    page.get_by_role("button", name="Validate").click()
    problem = page.locator("#yaml-issues li").filter(has_text="nobody_at_all")
    expect(problem).to_contain_text(f"line {line}")
    expect(page.locator(".gutter .bad")).to_have_text(str(line))
    problem.get_by_role("button").click()
    assert page.evaluate("document.activeElement.id") == "yaml", "the issue takes the cursor to its line"


def test_the_chinese_console_words_every_yaml_error_in_chinese_at_its_line(page: Any, console: Console) -> None:
    """A limit whose default is text and a mistyped post: both listed at once, each at its own line, in Chinese
    from the catalogue (the API's English message is not shown)."""
    log_in(page, console, "carl", "zh")
    open_page(page, console, f"{ORG}/rules")
    editor = page.locator("#yaml")
    expect(editor).not_to_have_value("")
    text = editor.input_value()
    broken = text.replace("default: 0", "default: lots", 1).replace(
        "senior_sales_representative: 10000", "senior_sales_representativ: 10000", 1
    )
    lots = next(i for i, row in enumerate(broken.splitlines(), 1) if "default: lots" in row)
    typo = next(i for i, row in enumerate(broken.splitlines(), 1) if "senior_sales_representativ:" in row)
    editor.fill(broken)
    page.get_by_role("button", name="校验").click()
    problems = page.locator("#yaml-issues li")
    expect(problems.filter(has_text="`default` 应为数字,实际是文本 'lots'")).to_contain_text(f"第 {lots} 行")
    expect(problems.filter(has_text="是否应为 `senior_sales_representative`?")).to_contain_text(f"第 {typo} 行")
    expect(page.locator("#yaml-issues")).not_to_contain_text("must be")


def test_a_draft_is_tried_in_the_simulator_and_replayed_against_the_decision_log(page: Any, console: Console) -> None:
    contact = {
        "organisation": ORG,
        "subject": {"id": "zhao_lei"},
        "resource": {"type": "customer", "id": "c-1"},
        "action": "contact",
    }
    for _ in range(3):
        assert httpx.post(f"{console.server.url}/v1/check", json=contact).json()["decision"] == "allow"
    deadline = time.monotonic() + 10  # the decision log is written in batches, off the decision path
    while (
        len(
            httpx.get(f"{console.server.url}/v1/decisions", params={"organisation": ORG, "subject": "zhao_lei"}).json()[
                "items"
            ]
        )
        < 3
    ):
        assert time.monotonic() < deadline, "the decision log did not get the checks"
        time.sleep(0.2)
    log_in(page, console, "hr")
    open_page(page, console, f"{ORG}/edit/people/zhao_lei")
    page.locator(".row[data-index='0']").get_by_label("Post", exact=True).select_option("sales_analyst")
    page.get_by_role("button", name="Review impact and save…").click()
    dialog = page.get_by_role("dialog", name="Impact of this change")
    expect(dialog.locator(".impact-permissions tr[data-person='zhao_lei']")).to_contain_text("− customer · contact")
    dialog.get_by_role("button", name="Keep as draft").click()
    page.get_by_role("link", name="Try it in the simulator").click()
    expect(page.locator("#draft-panel")).to_contain_text("PUT people/zhao_lei")
    page.get_by_label("Person").select_option("zhao_lei")
    page.get_by_label("Resource type").select_option("customer")
    page.get_by_label("Action").select_option("contact")
    page.get_by_label("Amount").fill("")
    page.get_by_role("button", name="Decide").click()
    expect(page.locator("#sim-result .answer").first).to_have_attribute("data-decision", "allow")
    expect(page.locator("#sim-draft")).to_contain_text("The draft changes this decision.")
    page.get_by_role("button", name="Replay").click()
    result = page.locator("#replay-result")
    expect(result).to_contain_text(re.compile(r"decisions replayed; [1-9]\d* would change"))
    expect(result.locator("tr.changed").first).to_contain_text("Zhao Lei")
    screenshot(page, "simulator-replay", full_page=True)
    assert (
        console.api("GET", f"/admin/orgs/{ORG}/people/zhao_lei").json()["assignments"][0]["post"]
        == "sales_representative"
    )
    page.get_by_role("button", name="Discard draft").click()
    expect(page.locator("#no-draft")).to_be_visible()


def test_under_four_eyes_a_rule_change_waits_and_another_officer_approves_it_not_its_author(
    page: Any, console: Console
) -> None:
    # A business approval too, for the approvals page to show beside the pending change.
    check = {
        "organisation": ORG,
        "subject": {"id": "zhao_lei"},
        "resource": {"type": "expense", "id": "exp-7"},
        "action": "submit",
        "context": {"amount": 12000, "currency": "CNY"},
    }
    opened = httpx.post(f"{console.server.url}/v1/approvals", json={**check, "comment": "client dinner"})
    assert opened.status_code == 201, opened.text
    assert console.api("PUT", f"/admin/orgs/{ORG}/settings", json={"rules_four_eyes": True}).status_code == 200
    try:
        log_in(page, console, "carl")
        open_page(page, console, f"{ORG}/rules")
        page.get_by_label("Senior Sales Representative — monthly expense total per person", exact=True).fill("35000")
        page.locator("form.matrix").get_by_role("button", name="Review impact and save…").click()
        page.get_by_role("dialog").get_by_role("button", name="Save", exact=True).click()
        expect(toast(page)).to_contain_text("Waiting for another compliance officer")
        open_page(page, console, f"{ORG}/approvals")
        pending = page.locator("tr[data-change]").filter(has_text="rules/sales_company")
        pending.get_by_role("button", name="Approve").click()
        page.get_by_role("dialog").get_by_role("button", name="Approve").click()
        expect(pending.locator("[role=alert]")).to_contain_text("You are not allowed to do this.")  # the author may not
        page.get_by_role("button", name="Log out").click()

        log_in(page, console, "root")
        open_page(page, console, f"{ORG}/approvals")
        pending = page.locator("tr[data-change]").filter(has_text="rules/sales_company")
        expect(page.locator("tr[data-approval]").first).to_contain_text("exp-7")
        screenshot(page, "approvals")
        pending.get_by_role("button", name="Approve").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_label("Comment").fill("checked against the budget")
        dialog.get_by_role("button", name="Approve").click()
        expect(toast(page)).to_contain_text("Approved and applied.")
        expect(page.locator("tr[data-change]")).to_have_count(0)
        pack = console.api("GET", f"/admin/orgs/{ORG}/rules/{ORG}").json()
        limit = next(r for r in pack["rules"] if r["id"] == "monthly_expense_limit")
        assert limit["limits"]["senior_sales_representative"] == 35000
    finally:
        console.api("PUT", f"/admin/orgs/{ORG}/settings", json={"rules_four_eyes": False})


# --- (3) an auditor reads but cannot change ---------------------------------------------------------------------------


def test_a_system_administrator_sees_sign_ins_users_and_tokens_in_the_audit_trail(page: Any, console: Console) -> None:
    made = console.api(
        "POST", "/admin/tokens", json={"name": "audit page check", "scopes": ["decide"], "organisations": [ORG]}
    )
    assert made.status_code == 201, made.text
    log_in(page, console, "root")
    open_page(page, console, f"{ORG}/audit")
    rows = page.locator("#audit-trail tbody tr")
    # Everything by default for one who reads the whole trail: entries of no organisation are there, said so.
    expect(page.get_by_label("Showing")).to_have_value("all")
    # Actions by name (the stored code in the cell's title), here in English.
    expect(rows.locator("td[title=token_issued]").first).to_have_text("Token issued")
    expect(rows.filter(has_text="Signed in").filter(has_text="root").first).to_contain_text("sign-in, users, tokens")
    expect(rows.filter(has_text="Token issued")).not_to_have_count(0)
    page.get_by_label("Showing").select_option("org")
    page.get_by_role("button", name="Apply filters").click()
    expect(rows.filter(has_text="Token issued")).to_have_count(0)
    expect(rows.filter(has_text="Signed in")).to_have_count(0)
    expect(page.locator("#audit-trail tbody tr, main p.empty")).not_to_have_count(0)  # the narrower view came


def test_an_auditor_reads_everything_but_is_offered_no_change(page: Any, console: Console) -> None:
    log_in(page, console, "audrey")
    open_page(page, console, f"{ORG}/chart")
    expect(page.locator(".node")).not_to_have_count(0)
    expect(page.get_by_role("button", name="New post")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    open_page(page, console, f"{ORG}/post/sales_analyst")
    expect(page.get_by_role("heading", name="Duties (职责)")).to_be_visible()
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    open_page(page, console, f"{ORG}/rules")
    expect(page.locator("#read-only")).to_contain_text("You may read the rules but not change them")
    expect(page.locator("input.limit")).to_have_count(0)
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    # Typing the edit address shows the form read-only, saying why, with no way to save.
    open_page(page, console, f"{ORG}/edit/posts/sales_analyst")
    expect(page.locator("#read-only")).to_contain_text("You may read this but not change it")
    expect(page.locator("#review-save")).to_have_count(0)
    expect(page.get_by_label("Headcount")).to_be_disabled()
    # The auditor's own pages: the decision log and the audit trail.
    open_page(page, console, f"{ORG}/audit")
    expect(page.locator("#audit-trail tbody tr")).not_to_have_count(0)
    page.get_by_label("Actor").fill("hr")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("#audit-trail tbody tr").first).to_contain_text("hr")
    # Sign-ins, users and tokens belong to no organisation: an organisation's auditor is not shown them.
    expect(page.locator("#audit-scope")).to_have_count(0)
    page.get_by_label("Actor").fill("audrey")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("#audit-trail tbody tr").filter(has_text="Signed in")).to_have_count(0)
    open_page(page, console, f"{ORG}/decisions")
    expect(page.locator("#decision-log")).to_be_visible()
    open_page(page, console, f"{ORG}/catalogue")
    expect(page.locator("tr[data-resource='customer']")).to_contain_text("contact")
    expect(page.locator("#read-only")).to_be_visible()
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    expect(page.get_by_role("button", name="New resource type")).to_have_count(0)


# --- (4) CSRF --------------------------------------------------------------------------------------------------------


def test_a_change_without_the_csrf_header_is_refused_from_the_page(page: Any, console: Console) -> None:
    log_in(page, console, "hr")
    attempt = """async ([path, withToken]) => {
        const session = await (await fetch('/admin/session')).json();
        const headers = {'Content-Type': 'application/json', 'If-Match': '*'};
        if (withToken) headers['X-CSRF-Token'] = session.csrf_token;
        const response = await fetch(path, {method: 'PATCH', headers, body: JSON.stringify({headcount: 2})});
        return [response.status, (await response.json()).message];
    }"""
    path = f"/admin/orgs/{ORG}/posts/sales_analyst"
    status, message = page.evaluate(attempt, [path, False])
    assert status == 403 and "X-CSRF-Token" in message
    assert console.api("GET", path).json().get("headcount", 1) == 1, "nothing changed"
    status, _ = page.evaluate(attempt, [path, True])
    assert status == 200, "the same request with the session's token goes through"


# --- (5) organisations are separate ------------------------------------------------------------------------------------


def test_an_hr_admin_of_one_organisation_does_not_see_another(page: Any, console: Console) -> None:
    log_in(page, console, "hotel_hr")
    expect(page.locator("#org-picker option")).to_have_count(1)
    expect(page.locator("#org-picker")).to_have_value("hotel")
    page.goto(f"{console.url}#/{ORG}/chart")
    alert = page.locator("main [role=alert]")
    expect(alert).to_contain_text("You are not allowed to do this.")
    expect(alert).to_contain_text(ORG)
    expect(page.locator(".node")).to_have_count(0)


# --- (6) with DUTYLINE_REQUIRE_AUTH on, the session is enough -----------------------------------------------------------


def test_with_auth_required_a_logged_in_user_uses_the_simulator_approvals_and_cases(
    page: Any, guarded_console: Console
) -> None:
    console = guarded_console
    expense = {
        "organisation": ORG,
        "subject": {"id": "zhao_lei"},
        "resource": {"type": "expense", "id": "exp-8"},
        "action": "submit",
        "context": {"amount": 12000, "currency": "CNY"},
    }
    assert httpx.post(f"{console.server.url}/v1/check", json=expense).status_code == 401, "the decision API is guarded"
    opened = console.api("POST", "/v1/approvals", json={**expense, "comment": "client dinner"})
    assert opened.status_code == 201, opened.text
    case = console.api(
        "POST",
        "/v1/cases",
        json={
            "organisation": ORG,
            "type": "expense_claim_pending",
            "title": "Claim exp-8 waits",
            "subject": "zhao_lei",
        },
    )
    assert case.status_code == 201, case.text

    log_in(page, console, "carl")
    open_page(page, console, f"{ORG}/simulator")
    expect(simulate(page, "zhao_lei", "12000")).to_have_attribute("data-decision", "needs_approval")
    expect(page.locator("#sim-approvers")).to_contain_text("Head of Business Department")

    open_page(page, console, f"{ORG}/approvals")
    row = page.locator("tr[data-approval]").filter(has_text="exp-8")
    expect(row).to_be_visible()
    # Its id, the uses left, and its validity: counted from the approval, so none yet.
    for shown in (opened.json()["id"], "1 of 1", "from its approval"):
        expect(row).to_contain_text(shown)
    page.get_by_label("Inbox of").select_option("wang_jianguo")
    expect(row).to_be_visible()
    row.get_by_role("button", name="History").click()
    expect(page.get_by_role("dialog")).to_contain_text("client dinner")
    page.get_by_role("dialog").get_by_role("button", name="Close").click()

    open_page(page, console, f"{ORG}/cases")
    expect(page.locator("tr[data-case]").filter(has_text="Claim exp-8 waits")).to_be_visible()
    expect(page.locator("main [role=alert]")).to_have_count(0)

    # The session ended elsewhere (another tab logged out): the next decision asks to log in again.
    open_page(page, console, f"{ORG}/simulator")
    page.evaluate("""async () => {
        const session = await (await fetch('/admin/session')).json();
        await fetch('/admin/logout', {method: 'POST', headers: {'X-CSRF-Token': session.csrf_token}});
    }""")
    page.get_by_role("button", name="Decide").click()
    expect(page.locator("form.login [role=alert]")).to_contain_text("Your session has ended")


# --- every page, in both languages ----------------------------------------------------------------------------------------


def test_every_page_renders_and_the_language_choice_is_remembered(page: Any, console: Console) -> None:
    # Something for the cases page to show.
    case = httpx.post(
        f"{console.server.url}/v1/cases",
        json={
            "organisation": ORG,
            "type": "expense_claim_pending",
            "title": "Claim exp-7 waits for review",
            "subject": "zhao_lei",
        },
    )
    assert case.status_code == 201, case.text
    log_in(page, console, "root")
    # A new post, made in the console (with a duty and its permission): nobody holds it yet.
    open_page(page, console, f"{ORG}/chart")
    page.get_by_role("button", name="New post").click()
    page.get_by_label("Id", exact=True).fill("sales_trainee")
    page.get_by_label("Name (Chinese)").fill("销售实习生")
    page.get_by_label("Name (English)").fill("Sales Trainee")
    page.get_by_label("Reports to (直接上级)").select_option("senior_sales_representative")
    page.get_by_label("Headcount").fill("2")
    page.get_by_role("button", name="Add a duty").click()
    page.get_by_label("Text (Chinese, verbatim)").fill("协助销售代表联系客户。")
    page.get_by_role("button", name="Add a permission").click()
    page.get_by_label("Resource", exact=True).select_option("customer")
    page.get_by_label("Actions", exact=True).fill("view")
    page.get_by_role("button", name="Review impact and save…").click()
    page.get_by_role("dialog").get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sales Trainee")
    expect(page.locator("ol.duties")).to_contain_text("协助销售代表联系客户。")

    # The chart on a day inside Zhao Lei's acting window: the acting holder, the vacancy, the SoD pairs.
    open_page(page, console, f"{ORG}/chart")
    page.get_by_label("Show holders on").fill("2026-07-05")
    expect(page.locator(".node[data-post='department_head'] li.acting")).to_contain_text("Zhao Lei")
    expect(page.locator(".node[data-post='sales_trainee']")).to_have_class(re.compile("is-vacant"))
    expect(page.locator(".node[data-post='sales_analyst'] .badge.sod")).to_be_visible()
    screenshot(page, "org-chart", full_page=True)
    shots = {
        "post-detail": (f"{ORG}/post/department_head", "ol.duties"),
        "approvals": (f"{ORG}/approvals", "tr[data-approval]"),
        "cases": (f"{ORG}/cases", "tr[data-case]"),
        "decision-log": (f"{ORG}/decisions", "#decision-log tbody tr"),
        "audit-trail": (f"{ORG}/audit", "#audit-trail tbody tr"),
        "versions": (f"{ORG}/versions", ".versions-list tbody tr"),
    }
    for name, (route, ready) in shots.items():
        open_page(page, console, route)
        expect(page.locator(ready).first).to_be_visible()
        expect(page.locator("main [role=alert]")).to_have_count(0)
        if name != "approvals":  # taken with a pending change, in the four-eyes test
            screenshot(page, name, full_page=name == "post-detail")
    open_page(page, console, f"{ORG}/cases")
    page.get_by_role("button", name="Escalation history").first.click()
    expect(page.get_by_role("dialog")).to_contain_text("opened")
    screenshot(page, "cases")
    page.get_by_role("dialog").get_by_role("button", name="Close").click()
    open_page(page, console, f"{ORG}/versions")
    page.locator(".versions-list tbody tr a").nth(1).click()
    expect(page.locator("pre.diff")).to_be_visible()
    screenshot(page, "versions")

    # 中文: the switch is a real button, and the choice survives a reload.
    page.get_by_role("button", name=re.compile("Switch language")).click()
    expect(page.get_by_role("link", name="组织架构")).to_be_visible()
    page.reload()
    expect(page.get_by_role("link", name="组织架构")).to_be_visible()
    open_page(page, console, "ninger_branch/chart")
    expect(page.get_by_role("heading", level=1)).to_contain_text("组织架构图")
    expect(page.locator(".node").first).to_be_visible()
    screenshot(page, "org-chart-zh", full_page=True)


def test_the_login_page_says_how_to_make_the_first_administrator_until_there_is_one(
    page: Any, console: Console, tmp_path: Path
) -> None:
    fresh = LiveServer(f"sqlite:///{tmp_path / 'fresh.db'}", seed_dir=str(REPO / "policies"))
    try:
        fresh.wait_ready()
        page.goto(f"{fresh.url}/")  # the server's own address opens the console
        expect(page.locator("form.login")).to_be_visible()
        expect(page.locator("#login-setup")).to_contain_text("create the first administrator")
        expect(page.locator("#login-setup code")).to_have_text("dutyline admin create NAME --role system_admin")
    finally:
        fresh.stop()
    page.goto(console.url)  # a console with users: no such note
    expect(page.locator("form.login")).to_be_visible()
    expect(page.locator("#login-setup")).to_be_empty()
