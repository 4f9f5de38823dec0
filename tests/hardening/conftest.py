"""One real server for the hardening tests that do not stop their database: every seed organisation and rule
pack, a system administrator with an admin token, the server's log in a file. On PostgreSQL when
DUTYLINE_TEST_POSTGRES_URL is set (the production database), else on SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.api.admin_client import Client, create_admin
from tests.conftest import POSTGRES_URL, REPO, fresh_database
from tests.live import LiveServer


@dataclass
class Stack:
    server: LiveServer
    database_url: str
    token: str  # root's admin token
    root: Client

    def client(self, token: str | None = None) -> Client:
        return Client(self.server, token)  # type: ignore[arg-type]


def load_content(database_url: str) -> None:
    """`dutyline import policies/orgs rules`: every seed organisation and its rule pack, before the server starts."""
    done = subprocess.run(
        [sys.executable, "-m", "dutyline", "import", "policies/orgs", "rules"],
        env={**os.environ, "DUTYLINE_DATABASE_URL": database_url, "DUTYLINE_SEED_DIR": ""},
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    backend = "postgresql" if POSTGRES_URL else "sqlite"
    with fresh_database(backend, tmp_path_factory.mktemp("hardening")) as url:
        token = create_admin(url)
        load_content(url)
        # Every test's client logs in from 127.0.0.1, and the fuzz test fails hundreds of logins: the budget of tries
        # per address is the subject of test_login_throttle.py, on servers of its own.
        env = {"DUTYLINE_CONSISTENCY_WAIT": "0.2", "DUTYLINE_LOGIN_ATTEMPTS_PER_ADDRESS": "1000000"}
        server = LiveServer(url, extra_env=env)
        try:
            server.wait_ready()
            yield Stack(server, url, token, Client(server, token))  # type: ignore[arg-type]
        finally:
            server.stop()
