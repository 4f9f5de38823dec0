"""How the service hands out the console: its files from console/, under a Content Security Policy that allows
nothing inline and nothing from elsewhere, and nothing outside console/. Plain HTTP, no browser needed."""

from __future__ import annotations

import json
import re

import httpx

from tests.browser.conftest import Console
from tests.conftest import REPO

CONSOLE = REPO / "console"


def test_the_console_is_served_at_slash_console_with_a_strict_content_security_policy(console: Console) -> None:
    for path in ("/console", "/console/"):
        page = httpx.get(f"{console.server.url}{path}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/console/js/app.js">' in page.text
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "style-src 'self';" in policy and "default-src 'none'" in policy
        assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
        assert page.headers["x-content-type-options"] == "nosniff"
    script = httpx.get(f"{console.server.url}/console/js/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert httpx.get(f"{console.server.url}/console/console.css").headers["content-type"].startswith("text/css")
    assert httpx.get(f"{console.server.url}/console/i18n/zh.json").json()["nav.chart"] == "组织架构"


def test_nothing_outside_the_console_folder_or_hidden_is_served(console: Console) -> None:
    for path in (
        "/console/%2e%2e/pyproject.toml",
        "/console/..%2fpyproject.toml",
        "/console/nothing.js",
        "/console/js/",
    ):
        assert httpx.get(f"{console.server.url}{path}").status_code == 404, path


def test_the_console_has_no_inline_script_or_style_and_loads_nothing_from_elsewhere() -> None:
    files = [p for p in CONSOLE.rglob("*") if p.is_file() and p.suffix in (".html", ".js", ".css")]
    assert files
    for file in files:
        text = file.read_text(encoding="utf-8")
        assert not re.search(r"https?://", text), f"{file}: loads something from elsewhere"
        if file.suffix == ".html":
            assert not re.search(r"<script(?![^>]*\bsrc=)", text), f"{file}: inline script"
            assert "<style" not in text and " style=" not in text, f"{file}: inline style"
        if file.suffix == ".js":
            assert ".innerHTML" not in text and "eval(" not in text, f"{file}: builds markup from strings"
            assert ".setAttribute('style'" not in text and "'style'" not in text, f"{file}: sets a style attribute"


def test_both_languages_have_every_text_the_console_asks_for() -> None:
    english = json.loads((CONSOLE / "i18n" / "en.json").read_text(encoding="utf-8"))
    chinese = json.loads((CONSOLE / "i18n" / "zh.json").read_text(encoding="utf-8"))
    assert set(english) == set(chinese), set(english) ^ set(chinese)
    asked = set()
    for file in (CONSOLE / "js").rglob("*.js"):
        asked |= set(re.findall(r"\bt\('([a-z_.0-9]+)'", file.read_text(encoding="utf-8")))
    assert asked and not asked - set(english), sorted(asked - set(english))
    for key in english:
        placeholders = set(re.findall(r"\{(\w+)\}", english[key]))
        assert placeholders == set(re.findall(r"\{(\w+)\}", chinese[key])), key
