"""The console in a real browser: Debian's Chromium driven by Playwright, against a real `dutyline serve`.

One seeded server (SQLite) for the whole browser suite, with the rule packs imported and the console's users
created by the real CLI. Every test gets a fresh browser context (no cookies, no storage). The suite is skipped,
saying why, when /usr/bin/chromium or the Playwright package is missing.

Set DUTYLINE_SCREENSHOTS=docs/screenshots to (re)write the screenshots that docs/console.md shows.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.live import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
ORG = "sales_company"
BRANCH = "ninger_branch"  # a bank branch: its pack has time windows and dual control
PASSWORD = "correct horse battery"
# username → role grant, made with `dutyline admin create USERNAME --role ROLE --password-stdin`
USERS = {
    "root": "system_admin",
    "hr": f"hr_admin@{ORG}",
    "carl": f"compliance_officer@{ORG}",
    "audrey": f"auditor@{ORG}",
    "hotel_hr": "hr_admin@hotel",
}


def cli(database_url: str, *args: str, stdin: str | None = None) -> str:
    env = {**os.environ, "DUTYLINE_DATABASE_URL": database_url, "DUTYLINE_SEED_DIR": ""}
    done = subprocess.run(
        [sys.executable, "-m", "dutyline", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass
class Console:
    server: LiveServer
    root_token: str

    @property
    def url(self) -> str:
        return f"{self.server.url}/console"

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """The admin API as root, through a bearer token (no browser involved)."""
        import httpx

        headers = {"Authorization": f"Bearer {self.root_token}", **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.server.url}{path}", headers=headers, timeout=30, **kwargs)


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """The server the console is served by (no browser needed for this part)."""
    yield from _served(tmp_path_factory, {})


@pytest.fixture(scope="session")
def guarded_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """Another such server, with DUTYLINE_REQUIRE_AUTH=true: the decision API needs a token or a session."""
    yield from _served(tmp_path_factory, {"DUTYLINE_REQUIRE_AUTH": "true"})


def _served(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Iterator[Console]:
    with served(tmp_path_factory.mktemp("console"), env) as console:
        yield console


@contextmanager
def served(folder: Path, env: dict[str, str] | None = None) -> Iterator[Console]:
    """A seeded server on a loopback port with the console's users, its database in `folder` (also used by
    `python -m tests.browser.screenshots`)."""
    url = f"sqlite:///{folder / 'dutyline.db'}"
    for username, role in USERS.items():
        cli(url, "admin", "create", username, "--role", role, "--password-stdin", stdin=PASSWORD + "\n")
    token = cli(url, "admin", "token", "root", "--scope", "admin", "--all-orgs", "--name", "browser tests").strip()
    server = LiveServer(url, seed_dir=str(REPO / "policies"), extra_env=env or {})
    try:
        server.wait_ready(timeout=180)  # seeding every organisation takes a while on a busy machine
        # The seed holds the organisations; their rule packs are imported like any file, with the CLI.
        cli(url, "import", *(str(REPO / "rules" / f"{name}.yaml") for name in (ORG, "hotel", BRANCH)))
        yield Console(server, token)
    finally:
        server.stop()


def launch(playwright: Any) -> Any:
    """Debian's Chromium, as every browser test and the screenshots run it."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    )


@pytest.fixture(scope="session")
def browser(console: Console) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium): the console's browser tests need it")
    pytest.importorskip("playwright.sync_api", reason="the Playwright package is missing (pip install -e '.[test]')")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


def _noted(problems: list[str], message: Any) -> None:
    # An HTTP error answer is logged by Chromium as "Failed to load resource"; the tests check what the page
    # shows for those. Anything else logged as an error, and every CSP violation, is a problem.
    text = message.text
    if "Content Security Policy" in text or (
        message.type == "error" and not text.startswith("Failed to load resource")
    ):
        problems.append(f"console: {text}")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh context at laptop size, in English unless a test switches; fails on page errors and CSP violations."""
    context = browser.new_context(viewport={"width": 1366, "height": 860}, locale="en-GB")
    context.set_default_timeout(15_000)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on("console", lambda message: _noted(problems, message))
    yield tab
    context.close()
    assert not problems, problems


def screenshot(tab: Any, name: str, full_page: bool = False) -> None:
    """Save docs/screenshots/<name>.png when DUTYLINE_SCREENSHOTS names that folder."""
    folder = os.environ.get("DUTYLINE_SCREENSHOTS")
    if folder:
        target = REPO / folder if not Path(folder).is_absolute() else Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        tab.evaluate("document.getElementById('toast')?.setAttribute('hidden', ''); document.activeElement?.blur()")
        tab.screenshot(path=str(target / f"{name}.png"), full_page=full_page)
