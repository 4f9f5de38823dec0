"""The API reference at /schema works without internet (issue 14): its script and style come from the service
itself, the page asks nothing of any other host, and the Content Security Policy it is served with lets it draw."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.browser.conftest import Console

expect = pytest.importorskip(
    "playwright.sync_api", reason="the Playwright package is missing (pip install -e '.[test]')"
).expect


def test_the_api_reference_is_served_whole_by_the_service(console: Console) -> None:
    page = httpx.get(f"{console.server.url}/schema")
    assert page.status_code == 200, page.text
    assert "https://" not in page.text and "http://" not in page.text, "nothing from elsewhere"
    assert '<script src="/api-reference/scalar.js">' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "jsdelivr" not in policy
    script = httpx.get(f"{console.server.url}/api-reference/scalar.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert len(script.content) > 1_000_000, "the whole bundle"
    assert httpx.get(f"{console.server.url}/api-reference/../pyproject.toml").status_code == 404
    assert httpx.get(f"{console.server.url}/api-reference/README.md").status_code == 404


def test_the_api_reference_draws_its_operations_with_no_other_host_reachable(browser: Any, console: Console) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 860})
    elsewhere: list[str] = []
    problems: list[str] = []

    def only_here(route: Any) -> None:
        if route.request.url.startswith(console.server.url):
            route.continue_()
        else:  # as without internet
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_here)
    page = context.new_page()
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        page.goto(f"{console.server.url}/schema")
        expect(page.get_by_role("heading", name="Dutyline", exact=True)).to_be_visible(timeout=30_000)
        expect(page.get_by_text("Access Evaluation API").first).to_be_visible()
    finally:
        context.close()
    assert not elsewhere, f"the page asked other hosts: {elsewhere[:5]}"
    assert not problems, problems
