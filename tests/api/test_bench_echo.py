"""The benchmarks' ceiling endpoint exists only when DUTYLINE_BENCH_ECHO asks for it."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import TestClient

from dutyline.app import create_app
from dutyline.settings import Settings

BODY = {"subject": {"type": "user", "id": "x"}, "action": {"name": "a"}, "resource": {"type": "t", "id": "1"}}


@pytest.mark.parametrize(("flag", "status"), [("1", 200), ("", 404)])
def test_the_echo_endpoint_is_mounted_only_for_benchmarks(tmp_path: Path, flag: str, status: int) -> None:
    settings = Settings.from_env(
        {
            "DUTYLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'd.db'}",
            "DUTYLINE_SEED_DIR": "",
            "DUTYLINE_BENCH_ECHO": flag,
        }
    )
    with TestClient(create_app(settings)) as client:
        response = client.post("/bench/echo", json=BODY)
    assert response.status_code == status
    if status == 200:
        assert response.json() == {"decision": True}
