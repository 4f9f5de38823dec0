"""The integration docs/clients.md shows (under twenty lines) runs as written against the live server."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from dutyline_client import Client
from tests.clients.conftest import Dutyline
from tests.conftest import REPO


def _first_example() -> str:
    text = (REPO / "docs" / "clients.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, re.DOTALL)[0]


def test_the_integration_example_is_under_twenty_lines() -> None:
    assert len(_first_example().strip().splitlines()) < 20


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
