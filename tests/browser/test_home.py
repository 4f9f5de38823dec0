"""The console's home page, search, detail views and dates (issue 14), in Chromium against a real server, in both
languages: an organisation opens on its overview (vacancies, a post over its headcount, this week's acting windows,
in the organisation's zone); the header's search finds people, posts and rules by Chinese or English name; an
auditor opens a decision and an audit entry in full; an approved request is not shown as waiting; and dates are
yyyy-mm-dd in the organisation's zone whatever the browser's zone (the browser here is in New York).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.browser.conftest import ORG, Console, screenshot
from tests.browser.test_console import log_in, open_page

expect = pytest.importorskip(
    "playwright.sync_api", reason="the Playwright package is missing (pip install -e '.[test]')"
).expect

SHANGHAI = ZoneInfo("Asia/Shanghai")
LANGS = ["en", "zh"]


def _week() -> tuple[dt.date, dt.date]:
    today = dt.datetime.now(SHANGHAI).date()
    monday = today - dt.timedelta(days=today.weekday())
    return monday, monday + dt.timedelta(days=6)


@pytest.fixture(scope="module")
def staged(console: Console) -> Iterator[dict[str, str]]:
    """A desk with headcount 1 and two holders (one acting this week), a post nobody holds; removed afterwards."""
    monday, sunday = _week()
    made: list[str] = []

    def create(collection: str, body: dict[str, Any]) -> None:
        answer = console.api("POST", f"/admin/orgs/{ORG}/{collection}", json={**body, "comment": "home page test"})
        assert answer.status_code == 201, answer.text
        made.append(f"{collection}/{body['id']}")

    desk = {"zh": "前台值班岗", "en": "Front desk duty"}
    create("posts", {"id": "home_desk", "name": desk, "department": "business_dept", "headcount": 1})
    create(
        "posts",
        {"id": "home_vacant", "name": {"zh": "空缺测试岗", "en": "Empty test post"}, "department": "business_dept"},
    )
    create(
        "people",
        {"id": "home_holder", "name": {"zh": "周敏", "en": "Zhou Min"}, "assignments": [{"post": "home_desk"}]},
    )
    acting = {"post": "home_desk", "kind": "acting", "valid_from": monday.isoformat(), "valid_to": sunday.isoformat()}
    create("people", {"id": "home_acting", "name": {"zh": "吴昊", "en": "Wu Hao"}, "assignments": [acting]})
    yield {"monday": monday.isoformat(), "sunday": sunday.isoformat()}
    for target in reversed(made):
        answer = console.api("DELETE", f"/admin/orgs/{ORG}/{target}", headers={"If-Match": "*"})
        assert answer.status_code == 200, answer.text


@pytest.fixture
def new_york(browser: Any) -> Iterator[Any]:
    """A browser in New York: the console must show and decide in the organisation's zone, not this one."""
    context = browser.new_context(
        viewport={"width": 1366, "height": 860}, locale="en-US", timezone_id="America/New_York"
    )
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, errors


@pytest.mark.parametrize("lang", LANGS)
def test_an_organisation_opens_on_its_overview_with_vacancies_breaches_and_this_weeks_acting_windows(
    page: Any, console: Console, staged: dict[str, str], lang: str
) -> None:
    zh = lang == "zh"
    log_in(page, console, "hr", lang)
    expect(page).to_have_url(f"{console.url}#/{ORG}/overview")
    expect(page.get_by_role("heading", level=1)).to_contain_text("概览" if zh else "Overview")
    expect(page.locator("#overview-at")).to_contain_text("Asia/Shanghai")
    expect(page.locator("#org-zone")).to_contain_text("Asia/Shanghai")

    expect(page.locator("#overview-vacant li[data-post='home_vacant']")).to_contain_text(
        "空缺测试岗" if zh else "Empty test post"
    )
    breach = page.locator("#overview-headcount li[data-post='home_desk']")
    expect(breach).to_contain_text("2 人在岗,编制 1 人" if zh else "2 holders, headcount 1")
    expect(breach).to_contain_text("吴昊" if zh else "Wu Hao")
    acting = page.locator("#overview-acting li[data-person='home_acting']")
    expect(acting).to_contain_text(f"{staged['monday']} – {staged['sunday']}")
    expect(acting).to_contain_text("开始" if zh else "starts")
    expect(page.locator("#overview-acting-title")).to_contain_text(staged["monday"])
    expect(page.locator("#overview-last-change")).to_contain_text("root")
    waiting = console.api("GET", f"/admin/orgs/{ORG}/overview").json()["waiting"]  # other tests' approvals count too
    expect(page.locator("#overview-waiting li[data-count='approvals'] strong")).to_have_text(str(waiting["approvals"]))
    # the ids are never shown where a name exists
    expect(page.locator("#overview-vacant")).not_to_contain_text("home_vacant")
    screenshot(page, f"overview-{lang}", full_page=True)

    # The chart says the same of the desk: over its headcount.
    open_page(page, console, f"{ORG}/chart")
    expect(page.locator(".node[data-post='home_desk'] .over-headcount")).to_contain_text(
        "超编" if zh else "Over headcount"
    )


@pytest.mark.parametrize("lang", LANGS)
def test_the_header_search_finds_people_posts_and_rules_by_chinese_or_english_name_and_links_to_them(
    page: Any, console: Console, staged: dict[str, str], lang: str
) -> None:
    zh = lang == "zh"
    log_in(page, console, "carl", lang)
    box = page.get_by_role("searchbox", name="在本组织中搜索" if zh else "Search the organisation")
    expect(box).to_have_attribute("maxlength", "100")
    box.fill("周敏")
    box.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("周敏")
    people = page.locator(".search-group[data-kind='person']")
    expect(people.locator("li[data-id='home_holder']")).to_contain_text("周敏" if zh else "Zhou Min")

    box = page.get_by_role("searchbox")
    box.fill("front desk")
    box.press("Enter")
    post = page.locator(".search-group[data-kind='post'] li[data-id='home_desk'] a")
    expect(post).to_have_text("前台值班岗" if zh else "Front desk duty")
    post.click()
    expect(page).to_have_url(f"{console.url}#/{ORG}/post/home_desk")

    box = page.get_by_role("searchbox")
    box.fill("expense_claim_limit")
    box.press("Enter")
    rule = page.locator(".search-group[data-kind='rule'] li[data-id='expense_claim_limit']")
    expect(rule).to_be_visible()
    expect(page.locator(".search-group[data-kind='duty']")).to_have_count(0)

    box = page.get_by_role("searchbox")
    box.fill("no such thing anywhere")
    box.press("Enter")
    expect(page.locator("main .meta[role=status]")).to_have_text("没有匹配的结果。" if zh else "Nothing matches.")


def _logged(console: Console, decision_id: str) -> None:
    for _ in range(200):  # the log is written off the decision path, in batches
        if console.api("GET", f"/admin/orgs/{ORG}/decisions/{decision_id}").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"decision {decision_id} never reached the log")


@pytest.mark.parametrize("lang", LANGS)
def test_an_approved_request_is_not_shown_waiting_and_an_auditor_opens_the_decision_it_allowed_in_full(
    page: Any, console: Console, lang: str
) -> None:
    zh = lang == "zh"
    expense = {
        "organisation": ORG,
        "subject": {"id": "zhao_lei"},
        "resource": {"type": "expense", "id": f"home-{lang}"},
        "action": "submit",
        "context": {"amount": 12000, "currency": "CNY"},
    }
    opened = console.api("POST", "/v1/approvals", json={**expense, "comment": "team offsite"})
    assert opened.status_code == 201, opened.text
    approval = opened.json()["id"]
    approved = console.api(
        "POST", f"/v1/approvals/{approval}/approve", json={"person": "wang_jianguo", "comment": "fine"}
    )
    assert approved.status_code == 200, approved.text
    decided = console.api("POST", "/v1/check", json={**expense, "approval_id": approval})
    assert decided.status_code == 200 and decided.json()["decision"] == "allow", decided.text
    decision_id = decided.json()["decision_id"]
    _logged(console, decision_id)

    log_in(page, console, "audrey", lang)
    open_page(page, console, f"{ORG}/approvals")
    page.locator("#approvals-status").select_option("approved")
    row = page.locator(f"tr[data-approval='{approval}']")
    expect(row.locator("td.level")).to_contain_text("已于第 1/" if zh else "approved at level 1 of")
    expect(row).not_to_contain_text("待审批" if zh else "waiting")

    open_page(page, console, f"{ORG}/decisions")
    page.get_by_role("link", name=f"查看决策 {decision_id}" if zh else f"Open decision {decision_id}").click()
    detail = page.locator("#decision-detail")
    expect(detail).to_have_attribute("data-decision", decision_id)
    expect(page.locator("#decision-version")).to_contain_text("策略版本" if zh else "policy version")
    reasons = detail.locator("table.reasons-both tbody tr").first
    expect(reasons.locator("td[lang='zh-CN']")).not_to_be_empty()
    expect(reasons.locator("td[lang='en']")).not_to_be_empty()
    approval_box = page.locator("#decision-approval")
    expect(approval_box).to_contain_text(approval)
    approver = console.api("GET", f"/admin/orgs/{ORG}/people/wang_jianguo").json()["name"]  # other tests rename him
    expect(approval_box).to_contain_text(approver[lang])
    expect(detail).to_contain_text("12000")
    screenshot(page, f"decision-detail-{lang}", full_page=True)


@pytest.mark.parametrize("lang", LANGS)
def test_an_audit_entry_opens_with_who_when_the_comment_and_the_change_before_and_after(
    page: Any, console: Console, staged: dict[str, str], lang: str
) -> None:
    zh = lang == "zh"
    trail = console.api("GET", "/admin/audit", params={"org": ORG, "limit": 200}).json()["items"]
    [entry] = [e for e in trail if e["target"] == f"{ORG}/posts/home_vacant" and e["action"] == "posts_created"]
    log_in(page, console, "audrey", lang)
    open_page(page, console, f"{ORG}/audit")
    page.get_by_role("link", name=f"查看审计记录 {entry['seq']}" if zh else f"Open audit entry {entry['seq']}").click()
    detail = page.locator("#audit-detail")
    expect(detail).to_contain_text("root")
    expect(detail).to_contain_text("新建岗位" if zh else "Post created")
    expect(page.locator("#audit-comment")).to_have_text("home page test")
    expect(page.locator("#audit-diff .add").filter(has_text="home_vacant")).to_have_count(1)
    screenshot(page, f"audit-detail-{lang}", full_page=True)


def test_dates_are_iso_and_in_the_organisations_zone_in_a_browser_in_another_zone(
    new_york: Any, console: Console, staged: dict[str, str]
) -> None:
    page = new_york
    log_in(page, console, "hr")
    # The chart's day is Shanghai's; a day typed as yyyy-mm-dd, with a calendar beside it.
    open_page(page, console, f"{ORG}/chart")
    day = page.get_by_label("Show holders on", exact=True)
    expect(day).to_have_value(dt.datetime.now(SHANGHAI).date().isoformat())
    expect(day).to_have_attribute("placeholder", "yyyy-mm-dd")
    expect(page.locator(".node[data-post='home_desk'] .holders")).to_contain_text("Wu Hao")
    day.fill((dt.date.fromisoformat(staged["sunday"]) + dt.timedelta(days=1)).isoformat())
    expect(page.locator(".node[data-post='home_desk'] .holders")).not_to_contain_text("Wu Hao")

    # An assignment's dates are yyyy-mm-dd fields with a calendar, not free text.
    open_page(page, console, f"{ORG}/edit/people/home_acting")
    start = page.locator(".row[data-index='0']").get_by_label("From", exact=True)
    expect(start).to_have_value(staged["monday"])
    expect(start).to_have_attribute("placeholder", "yyyy-mm-dd")
    expect(page.locator(".row[data-index='0'] .date-pick").first).to_be_visible()

    # The simulator decides at the organisation's wall time and says so; 10:00 in Shanghai, whatever New York says.
    open_page(page, console, f"{ORG}/simulator")
    page.get_by_label("Person").select_option("zhao_lei")
    page.get_by_label("Resource type").select_option("sales_strategy")
    page.get_by_label("Action").select_option("approve")
    page.get_by_label("Time (Asia/Shanghai, optional)").fill("2026-07-05 10:00")
    page.get_by_role("button", name="Decide").click()
    expect(page.locator("#sim-decided")).to_have_text("Decided for 2026-07-05 10:00 (Asia/Shanghai)")
    # zhao_lei acts as department head 2026-07-01..14 (Shanghai days): allowed then
    expect(page.locator("#sim-result .answer").first).to_have_attribute("data-decision", "allow")
    page.get_by_label("Time (Asia/Shanghai, optional)").fill("")
    page.get_by_role("button", name="Decide").click()
    expect(page.locator("#sim-decided")).to_contain_text("Decided now")
    expect(page.locator("#sim-decided")).to_contain_text("(Asia/Shanghai)")

    # The decision log's times are Shanghai's too, and a time that is not one is refused by name.
    open_page(page, console, f"{ORG}/decisions")
    expect(page.locator("main .meta").first).to_contain_text("Asia/Shanghai")
    page.get_by_label("From", exact=True).fill("2026-13-40 10:00")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("main [role=alert]")).to_contain_text("2026-13-40 10:00")
