"""Logging in and walking every page of the console, for the checks that look at all of them (accessibility, the
Chinese console's wording) and for the screenshots (`python -m tests.browser.screenshots`).

The pages are the navigation's own links, read from the page (so a page added to the navigation is walked without
being listed here), then the pages reached from them that the navigation does not link: a post's detail, the edit
forms, a search, a decision's and an audit entry's detail, the rules page with a rule's form open.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.browser.conftest import BRANCH, ORG, PASSWORD, Console

# Pages the navigation does not link (route below the organisation, and what shows it has rendered).
DETAILS = (
    ("post/department_head", "ol.duties"),
    ("edit/people/li_na", "form.editor"),
    ("new/posts", "form.editor"),
    ("edit/resources/expense", "form.editor"),
    ("search/sales", "main h1"),
)
# Detail views opened from the first row of a list (when the list has one): a decision, an audit entry.
FIRST_OF = (
    ("decisions", "#decision-log tbody tr a", "#decision-detail"),
    ("audit", "#audit-trail tbody tr a", "main h1"),
)


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def log_in(page: Any, console: Console, username: str, lang: str = "en") -> None:
    """Log in the way a person does: the login form, by keyboard, in `lang` (remembered by the console)."""
    page.add_init_script(f"localStorage.getItem('dutyline.lang') || localStorage.setItem('dutyline.lang', '{lang}')")
    page.goto(console.url)
    page.get_by_label("Username" if lang == "en" else "用户名").fill(username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect()(page.get_by_role("navigation")).to_be_visible()


def open_page(page: Any, console: Console, route: str) -> None:
    page.goto(f"{console.url}#/{route}")
    expect()(page.locator("main .loading")).to_have_count(0)


def nav_routes(page: Any) -> list[str]:
    """The routes the navigation links, in its order (`sales_company/chart` …)."""
    hrefs = page.locator("nav.nav a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    return [href.removeprefix("#/") for href in hrefs]


def every_page(page: Any, console: Console, org: str = ORG) -> Iterator[str]:
    """Open each page of `org` in turn (logged in already), yielding its route once it has rendered."""
    open_page(page, console, f"{org}/chart")
    for route in nav_routes(page):
        open_page(page, console, route)
        expect()(page.locator("main h1").first).to_be_visible()
        yield route
    for route, ready in DETAILS:
        open_page(page, console, f"{org}/{route}")
        expect()(page.locator(ready).first).to_be_visible()
        yield f"{org}/{route}"
    for route, link, ready in FIRST_OF:
        open_page(page, console, f"{org}/{route}")
        expect()(page.locator(f"{link}, main p.empty").first).to_be_visible()
        if page.locator(link).count():
            page.locator(link).first.click()
            expect()(page.locator(ready).first).to_be_visible()
            expect()(page.locator("main .loading")).to_have_count(0)
            yield f"{org}/{route}/first"
    # The rule forms, open: a condition, separation and notification here; a time window and dual control in the
    # branch's pack (imported by the fixture).
    for where, kinds in ((org, ("condition", "separation", "notification")), (BRANCH, ("time_window", "dual_control"))):
        open_page(page, console, f"{where}/rules")
        for kind in reversed(kinds):  # the first kind last, so that it is the one in view
            item = page.locator(f"details.rule-item[data-kind='{kind}']").first
            expect()(item).to_be_visible()
            item.locator("summary").click()
            item.scroll_into_view_if_needed()
        yield f"{where}/rules/forms"
