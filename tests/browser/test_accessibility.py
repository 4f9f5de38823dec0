"""Accessibility: axe-core, from npm, run in Chromium on every page of the console (tests/browser/walk.py) and on
the login page, in Chinese and in English; no serious or critical violation may remain.

axe-core is installed with npm from tests/browser/package.json (its version pinned by package-lock.json) into a
folder of this test session, not committed: the registry is where it comes from, and its licence (MPL-2.0) then
needs nothing of us. Without npm the test is skipped, saying why.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Console
from tests.browser.walk import every_page, log_in

HERE = Path(__file__).parent
SEVERE = ("serious", "critical")


@pytest.fixture(scope="session")
def axe_source(tmp_path_factory: pytest.TempPathFactory) -> str:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is missing: the accessibility check installs axe-core with it")
    folder = tmp_path_factory.mktemp("npm")
    for name in ("package.json", "package-lock.json"):
        shutil.copy(HERE / name, folder / name)
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return (folder / "node_modules" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")


def violations(page: Any, axe_source: str) -> list[str]:
    """The serious and critical axe violations of what the page shows now, one line per element."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source)
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))"""
    )
    return [
        f"{v['id']} ({v['impact']}: {v['help']}) at {node}"
        for v in found
        if v["impact"] in SEVERE
        for node in v["nodes"]
    ]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_no_page_of_the_console_has_a_serious_or_critical_accessibility_violation(
    page: Any, console: Console, axe_source: str, lang: str
) -> None:
    problems: dict[str, list[str]] = {}
    page.add_init_script(f"localStorage.setItem('dutyline.lang', '{lang}')")
    page.goto(console.url)
    page.locator("form.login").wait_for()
    problems["login"] = violations(page, axe_source)
    log_in(page, console, "root", lang)
    for route in every_page(page, console):
        problems[route] = violations(page, axe_source)
    # The impact preview, a dialog over the page.
    page.locator("form.matrix input.limit").first.fill("12,345")
    page.locator("form.matrix button[type='submit']").first.click()
    page.get_by_role("dialog").wait_for()
    problems["rules: the preview dialog"] = violations(page, axe_source)
    assert not {route: found for route, found in problems.items() if found}
