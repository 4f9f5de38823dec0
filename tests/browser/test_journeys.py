"""The console's journeys of issue 14, each in Chinese and in English, in Chromium against a real server.

HR adds a person, gives them an acting assignment next week, reads the preview, saves, and sees it on the chart at
next week's date; compliance changes a limit in the matrix, sees it before → after, saves with a comment, and
simulates just below and just above it; an auditor opens a decision and an audit entry. The server is shared with
the other browser tests of the worker: each journey makes its own person and its own limit, and reads what it
needs before it changes it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from typing import Any

import httpx
import pytest

from tests.browser.conftest import ORG, Console
from tests.browser.walk import log_in, open_page
from tests.conftest import REPO

expect = pytest.importorskip(
    "playwright.sync_api", reason="the Playwright package is missing (pip install -e '.[test]')"
).expect

# What the journeys read on the page, by catalogue key (console/i18n/<lang>.json), so that both languages run the
# same steps.
KEYS = {
    "new_person": "edit.new_person",
    "id": "edit.id",
    "name": "edit.name",
    "add_assignment": "edit.add_assignment",
    "post": "post.title",
    "kind": "post.kind",
    "from": "edit.valid_from",
    "to": "edit.valid_to",
    "comment": "edit.comment",
    "review": "edit.review",
    "impact": "impact.title",
    "save": "common.save",
    "show_on": "chart.at",
    "rule_dialog": "rules.preview_title",
    "person": "sim.person",
    "resource": "sim.resource",
    "action": "sim.action",
    "amount": "sim.amount",
    "decide": "sim.decide",
    "needs_approval": "decision.needs_approval",
}


def words(lang: str) -> dict[str, str]:
    catalogue = json.loads((REPO / "console" / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
    out = {name: catalogue[key] for name, key in KEYS.items()}
    out["name_zh"] = f"{catalogue['edit.name']} ({catalogue['lang.zh']})"
    out["name_en"] = f"{catalogue['edit.name']} ({catalogue['lang.en']})"
    out["saved"] = catalogue["edit.saved"].split("{")[0]
    return out


NAMES = {
    "en": {"head": "Head of Business Department", "senior": "Senior Sales Representative", "zhao": "Zhao Lei"},
    "zh": {"head": "营业部负责人", "senior": "高级销售代表", "zhao": "赵磊"},
}


def next_week() -> tuple[dt.date, dt.date]:
    """Monday to Friday of next week (the browser and the server share this machine's clock)."""
    today = dt.date.today()
    monday = today + dt.timedelta(days=7 - today.weekday())
    return monday, monday + dt.timedelta(days=4)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_hr_adds_a_person_acting_next_week_reads_the_preview_saves_and_the_chart_shows_them_then(
    page: Any, console: Console, lang: str
) -> None:
    w = words(lang)
    person = f"journey_{lang}"
    monday, friday = next_week()
    log_in(page, console, "hr", lang)
    open_page(page, console, f"{ORG}/people")
    page.get_by_role("link", name=w["new_person"]).click()
    page.get_by_label(w["id"], exact=True).fill(person)
    page.get_by_label(w["name_zh"]).fill(f"旅程{lang}")
    page.get_by_label(w["name_en"]).fill(f"Journey {lang.upper()}")
    page.get_by_role("button", name=w["add_assignment"]).click()
    first = page.locator(".row[data-index='0']")
    first.get_by_label(w["post"], exact=True).select_option("sales_representative")
    page.get_by_role("button", name=w["add_assignment"]).click()
    acting = page.locator(".row[data-index='1']")
    acting.get_by_label(w["post"], exact=True).select_option("department_head")
    acting.get_by_label(w["kind"], exact=True).select_option("acting")
    acting.get_by_label(w["from"], exact=True).fill(monday.isoformat())
    acting.get_by_label(w["to"], exact=True).fill(friday.isoformat())
    page.get_by_label(w["comment"]).fill("stands in next week")
    page.get_by_role("button", name=w["review"]).click()

    dialog = page.get_by_role("dialog", name=w["impact"])
    # Nothing of the head's now; next week, what the acting head gains, with its dates.
    timeline = dialog.locator(f".impact-timeline tr[data-person='{person}']")
    expect(timeline.first).to_contain_text("+ ")
    expect(timeline.first).to_contain_text(str(monday.year))
    # Their claim limit: the representative's now, the head's in the acting window, the representative's after.
    claim = dialog.locator(f".impact-limits tr[data-person='{person}'][data-rule='expense_claim_limit']")
    expect(claim.filter(has_text="→ 50,000")).to_have_count(1)
    assert console.api("GET", f"/admin/orgs/{ORG}/people/{person}").status_code == 404, "a preview stores nothing"
    dialog.get_by_role("button", name=w["save"], exact=True).click()
    expect(page.locator("#toast")).to_contain_text(w["saved"])
    stored = console.api("GET", f"/admin/orgs/{ORG}/people/{person}").json()
    assert [(a["post"], a.get("kind", "primary")) for a in stored["assignments"]] == [
        ("sales_representative", "primary"),
        ("department_head", "acting"),
    ]

    open_page(page, console, f"{ORG}/chart")
    name = f"Journey {lang.upper()}" if lang == "en" else f"旅程{lang}"
    theirs = page.locator(".node[data-post='department_head'] li.acting").filter(has_text=name)
    expect(theirs).to_have_class(re.compile(r"\bupcoming\b"))  # today: shown as coming
    page.get_by_label(w["show_on"]).fill(monday.isoformat())
    page.get_by_label(w["show_on"]).dispatch_event("change")
    expect(theirs).to_have_count(1)
    expect(theirs).not_to_have_class(re.compile(r"\bupcoming\b"))  # next Monday: holding it


def simulate(page: Any, w: dict[str, str], person: str, amount: str) -> Any:
    page.get_by_label(w["person"]).select_option(person)
    page.get_by_label(w["resource"]).select_option("expense")
    page.get_by_label(w["action"]).select_option("submit")
    page.get_by_label(w["amount"]).fill(amount)
    with page.expect_response(lambda r: r.url.endswith("/v1/check") and r.request.method == "POST"):
        page.get_by_role("button", name=w["decide"]).click()
    answer = page.locator("#sim-result .answer").first
    expect(answer).to_be_visible()
    return answer


@pytest.mark.parametrize(("lang", "limit"), [("en", 12000), ("zh", 14000)])
def test_compliance_changes_a_limit_in_the_matrix_sees_it_before_and_after_saves_with_a_comment_and_simulates_it(
    page: Any, console: Console, lang: str, limit: int
) -> None:
    w = words(lang)
    log_in(page, console, "carl", lang)
    open_page(page, console, f"{ORG}/rules")
    matrix = page.locator(f"form.matrix[data-pack='{ORG}'][data-currency='CNY']")
    cell = matrix.locator("input.limit[data-rule='expense_claim_limit'][data-post='senior_sales_representative']")
    before = int(cell.input_value().replace(",", ""))
    assert before != limit
    cell.fill(str(limit))
    cell.blur()
    expect(cell).to_have_value(f"{limit:,}")  # thousands separators, as in every table
    comment = f"senior limit to {limit:,} ({lang})"
    matrix.get_by_label(w["comment"]).fill(comment)
    matrix.locator("button[type='submit']").click()

    dialog = page.get_by_role("dialog", name=w["rule_dialog"])
    line = dialog.locator(
        ".impact-rule-changes li[data-rule='expense_claim_limit'][data-field='limits.senior_sales_representative']"
    )
    separator = ": " if lang == "en" else ":"
    expect(line).to_have_text(f"expense_claim_limit · {NAMES[lang]['senior']}{separator}{before:,} → {limit:,}")
    expect(dialog.locator(".change-comment-shown")).to_contain_text(comment)
    dialog.get_by_role("button", name=w["save"], exact=True).click()
    expect(page.locator("#toast")).to_contain_text(w["saved"])
    expect(
        page.locator(
            f"form.matrix[data-pack='{ORG}'] input.limit[data-rule='expense_claim_limit'][data-post='senior_sales_representative']"
        )
    ).to_have_value(f"{limit:,}")
    latest = console.api("GET", f"/admin/orgs/{ORG}/versions?limit=1").json()["items"][0]
    assert (latest["author"], latest["comment"]) == ("carl", comment)

    open_page(page, console, f"{ORG}/simulator")
    expect(simulate(page, w, "liu_yang", str(limit - 1))).to_have_attribute("data-decision", "allow")
    above = simulate(page, w, "liu_yang", str(limit + 1))
    expect(above).to_have_attribute("data-decision", "needs_approval")
    expect(page.locator("#sim-approvers")).to_contain_text(NAMES[lang]["head"])


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_an_auditor_opens_a_decision_and_an_audit_entry(page: Any, console: Console, lang: str) -> None:
    check = {
        "organisation": ORG,
        "subject": {"id": "zhao_lei"},
        "resource": {"type": "expense", "id": f"audit-{lang}"},
        "action": "submit",
        "context": {"amount": 12000, "currency": "CNY"},  # above a representative's limit
    }
    decision_id = httpx.post(f"{console.server.url}/v1/check", json=check, timeout=30).json()["decision_id"]
    deadline = time.monotonic() + 10  # the decision log is written in batches, off the decision path
    logged = {"organisation": ORG, "subject": "zhao_lei", "limit": 200}
    while decision_id not in {
        d["decision_id"] for d in httpx.get(f"{console.server.url}/v1/decisions", params=logged).json()["items"]
    }:
        assert time.monotonic() < deadline, "the decision log did not get the check"
        time.sleep(0.2)

    log_in(page, console, "audrey", lang)
    open_page(page, console, f"{ORG}/decisions")
    row = page.locator(f"#decision-log tbody tr[data-decision='{decision_id}']")
    expect(row).to_have_count(1)
    w = words(lang)
    expect(row).to_contain_text(NAMES[lang]["zhao"])
    expect(row.locator(".badge").first).to_have_text(w["needs_approval"])
    # The decision in detail: what was asked, decided on which version.
    row.get_by_role("link").first.click()
    detail = page.locator(f"#decision-detail[data-decision='{decision_id}']")
    expect(detail).to_be_visible()
    expect(detail).to_contain_text(NAMES[lang]["zhao"])
    expect(detail.locator("#decision-version")).not_to_be_empty()

    # An audit entry in detail: the first of the trail (actions by name, not their code).
    open_page(page, console, f"{ORG}/audit")
    entry = page.locator("#audit-trail tbody tr").first
    expect(entry).to_be_visible()
    assert "_" not in entry.locator("td[title]").first.inner_text(), "actions by name, not their code"
    seq = entry.get_by_role("link").first.inner_text().strip()
    entry.get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(f"#/{ORG}/audit/{seq}$"))
    expect(page.locator("main .loading")).to_have_count(0)
    expect(page.locator("main [role=alert]")).to_have_count(0)
    expect(page.locator("main h1")).to_be_visible()
