"""The rules page's forms, one per rule kind, in Chromium against a real server: a condition checked as it is
typed, posts picked by name for dual control and separation of duties, a time window as a weekly grid, an amount
that is not a number caught in its cell. Each change is previewed before → after with the posts' names; the one
saved carries its comment. The server is shared with the other browser tests of the worker: what is saved is a
change nobody else reads.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import BRANCH, ORG, Console
from tests.browser.walk import log_in, open_page

expect = pytest.importorskip(
    "playwright.sync_api", reason="the Playwright package is missing (pip install -e '.[test]')"
).expect


def open_rule(page: Any, pack: str, rule: str) -> Any:
    page.locator(f"details.rule-item[data-rule='{rule}'] summary").click()
    form = page.locator(f"form.rule-form[data-pack='{pack}'][data-rule='{rule}']")
    expect(form).to_be_visible()
    return form


def review(form: Any) -> Any:
    form.locator("button[type='submit']").click()
    return form.page.get_by_role("dialog")


def test_a_condition_is_checked_as_it_is_typed_and_previewed_before_and_after(page: Any, console: Console) -> None:
    log_in(page, console, "carl")
    open_page(page, console, f"{ORG}/rules")
    form = open_rule(page, ORG, "head_over_budget")
    when = form.get_by_label("When (condition)")
    before = when.input_value()
    when.fill("context.amount >")
    check = form.locator(".expression-check")
    expect(check).to_have_class("expression-check bad")
    expect(when).to_have_attribute("aria-invalid", "true")
    when.fill("context.amount > context.budget_remaining + 100")
    expect(check).to_have_text("✓ The condition is valid")
    expect(when).not_to_have_attribute("aria-invalid", "true")
    dialog = review(form)
    line = dialog.locator(".impact-rule-changes li[data-rule='head_over_budget'][data-field='when']")
    expect(line).to_have_text(f"head_over_budget · when: {before} → context.amount > context.budget_remaining + 100")
    dialog.get_by_role("button", name="Cancel").click()
    stored = console.api("GET", f"/admin/orgs/{ORG}/rules/{ORG}").json()
    assert next(r for r in stored["rules"] if r["id"] == "head_over_budget")["when"] == before, (
        "a preview stores nothing"
    )


def test_separation_of_duties_is_narrowed_to_posts_picked_by_name(page: Any, console: Console) -> None:
    log_in(page, console, "carl", "zh")
    open_page(page, console, f"{ORG}/rules")
    form = open_rule(page, ORG, "expense_self_approval")
    expect(form.get_by_label("检查方式")).to_have_value("self_approval")
    form.locator("fieldset.post-picker[data-path='applies_to.posts']").get_by_label("高级销售代表").check()
    dialog = review(form)
    line = dialog.locator(".impact-rule-changes li[data-rule='expense_self_approval'][data-field='applies_to.posts']")
    expect(line).to_have_text("expense_self_approval · applies_to.posts:(无) → 高级销售代表")
    dialog.get_by_role("button", name="取消").click()


def test_dual_control_posts_are_picked_by_name_and_saved_with_a_comment(page: Any, console: Console) -> None:
    log_in(page, console, "root")
    open_page(page, console, f"{BRANCH}/rules")
    form = open_rule(page, BRANCH, "vault_dual_control")
    picker = form.locator("fieldset.post-picker[data-path='posts']")
    expect(picker.get_by_label("Vault Keeper")).to_be_checked()
    picker.get_by_label("Operations Manager").uncheck()
    form.get_by_label("Comment").fill("only a second vault keeper opens the vault")
    dialog = review(form)
    line = dialog.locator(".impact-rule-changes li[data-rule='vault_dual_control'][data-field='posts']")
    expect(line).to_have_text("vault_dual_control · posts: Vault Keeper, Operations Manager → Vault Keeper")
    expect(dialog.locator(".change-comment-shown")).to_contain_text("only a second vault keeper opens the vault")
    dialog.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#toast")).to_contain_text("Saved: revision")
    stored = console.api("GET", f"/admin/orgs/{BRANCH}/rules/{BRANCH}").json()
    assert next(r for r in stored["rules"] if r["id"] == "vault_dual_control")["posts"] == ["vault_keeper"]
    latest = console.api("GET", f"/admin/orgs/{BRANCH}/versions?limit=1").json()["items"][0]
    assert (latest["author"], latest["comment"]) == ("root", "only a second vault keeper opens the vault")


def test_a_time_window_is_a_weekly_grid(page: Any, console: Console) -> None:
    log_in(page, console, "root")
    open_page(page, console, f"{BRANCH}/rules")
    form = open_rule(page, BRANCH, "counter_business_hours")
    expect(form.locator(".week-grid tbody tr")).to_have_count(2)
    expect(form.get_by_label("weekend hours — Sat")).to_be_checked()
    expect(form.get_by_label("weekday hours — Sat")).not_to_be_checked()
    form.get_by_label("weekend hours — Sun").uncheck()
    form.get_by_label("weekend hours — End").fill("12:00")
    form.get_by_role("button", name="Add a window").click()
    expect(form.locator(".week-grid tbody tr")).to_have_count(3)
    form.get_by_role("button", name="Add a holiday").click()
    expect(form.get_by_label("Holiday 1", exact=True)).to_be_focused()
    form.get_by_label("Holiday 1", exact=True).fill("2026-10-01")
    dialog = review(form)
    line = dialog.locator(".impact-rule-changes li[data-rule='counter_business_hours'][data-field='windows']")
    expect(line).to_contain_text("→ Mon,Tue,Wed,Thu,Fri 08:30–17:00; Sat 09:00–12:00; Mon,Tue,Wed,Thu,Fri 09:00–17:00")
    holidays = dialog.locator(".impact-rule-changes li[data-rule='counter_business_hours'][data-field='holidays']")
    expect(holidays).to_have_text("counter_business_hours · holidays: (none) → 2026-10-01")
    dialog.get_by_role("button", name="Cancel").click()


def test_an_amount_that_is_not_a_number_is_caught_in_its_cell_and_not_previewed(page: Any, console: Console) -> None:
    log_in(page, console, "carl")
    open_page(page, console, f"{ORG}/rules")
    cell = page.get_by_label("Sales Data Analyst — per-claim expense limit", exact=True)
    cell.fill("12 thousand")
    expect(cell).to_have_attribute("aria-invalid", "true")
    expect(page.locator(f"#{cell.get_attribute('aria-describedby')}")).to_have_text("not a number")
    page.locator(f"form.matrix[data-pack='{ORG}'] button[type='submit']").click()
    expect(page.locator(f"form.matrix[data-pack='{ORG}'] .form-status [role=alert]")).to_contain_text(
        "Some amounts are not numbers"
    )
    expect(page.get_by_role("dialog")).to_have_count(0)
    cell.fill("1 500")
    cell.blur()
    expect(cell).to_have_value("1,500")
    expect(cell).not_to_have_attribute("aria-invalid", "true")
