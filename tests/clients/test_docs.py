"""The integrations docs/clients.md shows (each under twenty lines) run as written against the live server: the
client's, and a Flask application's enforcing Dutyline's answers (on a real server)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from dutyline_client import Client
from tests.clients.conftest import Dutyline
from tests.clients.middleware_apps import serve_wsgi
from tests.conftest import REPO


def _first_example(under: str = "## Integrate") -> str:
    text = (REPO / "docs" / "clients.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text[text.index(under) :], re.DOTALL)[0]


ENFORCE = "## Enforce in a web application"


@pytest.mark.parametrize("under", ["## Integrate", ENFORCE])
def test_the_integration_examples_are_under_twenty_lines(under: str) -> None:
    assert len(_first_example(under).strip().splitlines()) < 20


def test_the_integration_example_allows_within_the_limit_and_opens_an_approval_above_it(
    dutyline: Dutyline, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _first_example().replace("https://dutyline.internal", dutyline.url)
    scope: dict[str, Any] = {"DUTYLINE_TOKEN": dutyline.token}
    exec(compile(code, "docs/clients.md", "exec"), scope)
    try:
        assert scope["may_approve"]("liu_yang", f"e-{uuid.uuid4().hex[:8]}", "li_na", 5000) is True
        above = f"e-{uuid.uuid4().hex[:8]}"
        assert scope["may_approve"]("liu_yang", above, "li_na", 20000) is False
        assert "waiting for ['department_head'] approval apv_" in capsys.readouterr().out
    finally:
        scope["dutyline"].close()
    with Client(dutyline.url, token=dutyline.token) as client:
        mine = client.approvals(organisation="sales_company", requester="liu_yang")
    assert above in {a.resource.id for a in mine}


def test_the_enforcement_example_lets_a_claim_within_the_limit_through_and_answers_403_above_it(
    dutyline: Dutyline,
) -> None:
    code = _first_example(ENFORCE).replace("https://dutyline.internal", dutyline.url)
    scope: dict[str, Any] = {"DUTYLINE_TOKEN": dutyline.token, "__name__": "docs_example"}
    exec(compile(code, "docs/clients.md", "exec"), scope)
    claim, above = f"e-{uuid.uuid4().hex[:8]}", f"e-{uuid.uuid4().hex[:8]}"
    with serve_wsgi(scope["app"], scope["dutyline"].client) as url, httpx.Client(base_url=url) as http:
        caller = {"X-Authenticated-User": "liu_yang"}
        within = http.post(
            f"/claims/{claim}/approve", json={"amount": 5000, "currency": "CNY", "claimant": "li_na"}, headers=caller
        )
        assert within.status_code == 200 and within.json()["approved"] == claim and within.json()["decision"]
        beyond = http.post(
            f"/claims/{above}/approve", json={"amount": 20000, "currency": "CNY", "claimant": "li_na"}, headers=caller
        )
        assert beyond.status_code == 403 and beyond.json()["error"] == "needs_approval"
        approval = beyond.json()["approval"]
        assert approval["id"].startswith("apv_") and approval["approvers"][0]["post"] == "department_head"
        anonymous = http.post(f"/claims/{claim}/approve", json={"amount": 5000, "currency": "CNY", "claimant": "li_na"})
        assert anonymous.status_code == 401
