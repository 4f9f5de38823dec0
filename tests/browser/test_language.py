"""The Chinese console speaks Chinese: no page, and no server message it shows (validation problems, a refused
change, a condition that does not parse), carries a sentence of the English catalogue.

Every page is walked in Chinese (tests/browser/walk.py), then the server is made to answer with problems; the text
the page shows (what a person reads: `innerText`, so not the values in the inputs, such as a rule's English name)
is searched for each fixed fragment of every English catalogue entry that differs from its Chinese one.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.browser.conftest import ORG, Console
from tests.browser.walk import every_page, log_in, open_page
from tests.conftest import REPO

expect = pytest.importorskip(
    "playwright.sync_api", reason="the Playwright package is missing (pip install -e '.[test]')"
).expect

PLACEHOLDER = re.compile(r"\{\{?\w*\}?\}")


def catalogue(lang: str) -> dict[str, str]:
    return json.loads((REPO / "console" / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


def english_fragments() -> dict[str, str]:
    """Fragment → catalogue key: the fixed text between the placeholders of every English entry whose Chinese
    differs, long enough to be a phrase (three words), not a name, a code or a comment someone typed."""
    zh, en = catalogue("zh"), catalogue("en")
    out: dict[str, str] = {}
    for key in sorted(en):
        if zh.get(key) == en[key]:
            continue
        for part in PLACEHOLDER.split(en[key]):
            part = part.strip(" .,:;()·—–-'`\"?!…")
            # Three words at least: two (`checked against`) also occur in what people type (a version's comment).
            if len(part) >= 12 and re.search(r"[a-z]{2,} [a-z]{2,} [a-z]{2,}", part):
                out.setdefault(part, key)
    return out


def english_in(text: str, fragments: dict[str, str]) -> list[str]:
    return [f"{fragment!r} ({key})" for fragment, key in fragments.items() if fragment in text]


def test_the_fragments_are_found_in_an_english_page_so_the_check_can_fail() -> None:
    fragments = english_fragments()
    en = catalogue("en")
    assert english_in(f"Error: {en['rules.read_only']}", fragments), "an English sentence is caught"
    assert not english_in(catalogue("zh")["rules.read_only"], fragments)
    assert len(fragments) > 200


def test_no_chinese_page_shows_english_from_the_catalogue_even_when_the_server_reports_problems(
    page: Any, console: Console
) -> None:
    fragments = english_fragments()
    shown: dict[str, list[str]] = {}

    def look(where: str) -> None:
        shown[where] = english_in(page.evaluate("document.body.innerText"), fragments)

    log_in(page, console, "root", "zh")
    for route in every_page(page, console):
        look(route)

    # A rule pack with errors: a text where a number belongs, a mistyped post, both at their lines.
    open_page(page, console, f"{ORG}/rules")
    editor = page.locator("#yaml")
    expect(editor).not_to_have_value("")
    broken = (
        editor.input_value()
        .replace("default: 0", "default: lots", 1)
        .replace("senior_sales_representative: 10000", "senior_sales_representativ: 10000", 1)
    )
    editor.fill(broken)
    page.locator("#yaml-validate").click()
    expect(page.locator("#yaml-issues li")).not_to_have_count(0)
    look("rules: YAML problems")

    # A condition that does not parse, checked as it is typed.
    item = page.locator(f"form.rule-form[data-pack='{ORG}'][data-rule='head_over_budget']")
    page.locator("details.rule-item[data-rule='head_over_budget'] summary").click()
    item.locator("textarea[data-expression='when']").fill("context.amount >")
    expect(item.locator(".expression-check.bad")).to_be_visible()
    look("rules: a condition that does not parse")

    # A change separation of duties refuses: the preview's problems, and beside the row.
    open_page(page, console, f"{ORG}/edit/people/chen_jing")  # a sales analyst
    words = catalogue("zh")
    page.get_by_role("button", name=words["edit.add_assignment"]).click()
    second = page.locator(".row[data-index='1']")
    second.get_by_label(words["post.title"], exact=True).select_option("sales_representative")
    page.get_by_role("button", name=words["edit.review"]).click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator(".impact-sod")).to_be_visible()
    look("people: a refused change")
    dialog.get_by_role("button", name=words["common.cancel"]).click()
    look("people: the refusal beside the row")

    assert not {where: found for where, found in shown.items() if found}
