"""Refresh the console's screenshots: `python -m tests.browser.screenshots` (from the repository root).

Every page (tests/browser/walk.py: the navigation's pages, the detail and edit pages, the rule forms), in Chinese
and in English, as a system administrator on a seeded server of its own, into docs/screenshots/pages/
(`<page>-<lang>.png`, the browser window's size: 1366 × 860). `--journeys` also runs the browser tests with
DUTYLINE_SCREENSHOTS=docs/screenshots, which rewrites the screenshots they take in the middle of a journey (the
impact previews, the simulator …). Needs /usr/bin/chromium and Playwright, like the browser tests.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from tests.browser.conftest import CHROMIUM, ORG, Console, launch, served
from tests.browser.walk import every_page, log_in
from tests.conftest import REPO

LANGUAGES = ("zh", "en")


def name_of(route: str) -> str:
    """`sales_company/post/department_head` → `post-department_head`; another organisation keeps its id."""
    org, _, rest = route.partition("/")
    return rest.replace("/", "-") if org == ORG else f"{org}-{rest.replace('/', '-')}"


def _something_to_show(console: Console) -> None:
    """A case, an approval and a few checks, so that those pages are not empty."""
    base = console.server.url
    expense = {
        "organisation": ORG,
        "subject": {"id": "zhao_lei"},
        "resource": {"type": "expense", "id": "exp-7"},
        "action": "submit",
        "context": {"amount": 12000, "currency": "CNY"},
    }
    httpx.post(f"{base}/v1/approvals", json={**expense, "comment": "client dinner"}, timeout=30).raise_for_status()
    case = {"organisation": ORG, "type": "expense_claim_pending", "title": "Claim exp-7 waits", "subject": "zhao_lei"}
    httpx.post(f"{base}/v1/cases", json=case, timeout=30).raise_for_status()
    for amount in (800, 3000, 12000):
        check = {**expense, "context": {"amount": amount, "currency": "CNY"}}
        httpx.post(f"{base}/v1/check", json=check, timeout=30).raise_for_status()


def take(folder: Path) -> list[Path]:
    """Write every page's screenshot in both languages into `folder`; the files written."""
    from playwright.sync_api import sync_playwright

    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="dutyline-screenshots-") as tmp, served(Path(tmp)) as console:
        _something_to_show(console)
        with sync_playwright() as playwright:
            browser = launch(playwright)
            for lang in LANGUAGES:
                context = browser.new_context(viewport={"width": 1366, "height": 860}, locale="en-GB")
                page = context.new_page()
                log_in(page, console, "root", lang)
                for route in every_page(page, console):
                    target = folder / f"{name_of(route)}-{lang}.png"
                    page.evaluate(
                        "document.getElementById('toast')?.setAttribute('hidden', ''); document.activeElement?.blur()"
                    )
                    page.screenshot(path=str(target))
                    written.append(target)
                context.close()
            browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.browser.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots" / "pages", help="where to write")
    parser.add_argument("--journeys", action="store_true", help="also run the browser tests that take screenshots")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr)
        return 2
    for path in take(args.out):
        print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    if args.journeys:
        env = {**os.environ, "DUTYLINE_SCREENSHOTS": "docs/screenshots"}
        tests = [sys.executable, "-m", "pytest", "tests/browser", "-n", "0", "-q", "-p", "no:cacheprovider"]
        return subprocess.run(tests, env=env, cwd=REPO, check=False).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
