"""One caller cannot take every place of the change stream (GET /v1/changes): at most
DUTYLINE_CHANGES_STREAMS_PER_CALLER streams each, so that others still hear the changes. A real server, SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.admin_client import create_admin
from tests.api.stream import Listener
from tests.conftest import REPO, _backends, fresh_database
from tests.live import LiveServer

PER_CALLER = 2


@pytest.fixture(scope="module", params=_backends())
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with fresh_database(request.param, tmp_path_factory.mktemp("db")) as url:
        token = create_admin(url)
        env = {
            "DUTYLINE_CHANGES_KEEPALIVE": "0.3",
            "DUTYLINE_CHANGES_STREAMS": "10",
            "DUTYLINE_CHANGES_STREAMS_PER_CALLER": str(PER_CALLER),
        }
        server = LiveServer(url, seed_dir=str(REPO / "policies"), extra_env=env)
        try:
            server.wait_ready(timeout=180)
            yield server.url, token
        finally:
            server.stop()


def test_one_caller_s_streams_are_bounded_and_another_caller_still_gets_one(served: tuple[str, str]) -> None:
    url, token = served
    mine = [Listener(url, token) for _ in range(PER_CALLER)]
    try:
        for stream in mine:
            stream.ready()
        refused = Listener(url, token)
        assert refused.status == 503 and refused.error is not None
        assert "DUTYLINE_CHANGES_STREAMS_PER_CALLER" in refused.error["message"]
        other = Listener(url)  # anonymous on loopback (DUTYLINE_REQUIRE_AUTH off): another caller
        assert other.status == 200
        other.ready()
        other.close()
    finally:
        for stream in mine:
            stream.close()
