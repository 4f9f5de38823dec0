"""Shared fixtures: real databases (a SQLite file, and PostgreSQL when DUTYLINE_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("DUTYLINE_TEST_POSTGRES_URL", "")


def _backends() -> list:
    backends = [pytest.param("sqlite", id="sqlite")]
    if POSTGRES_URL:
        backends.append(pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres))
    return backends


@contextlib.contextmanager
def fresh_database(backend: str, folder: Path) -> Iterator[str]:
    """A new, empty database: a SQLite file in `folder`, or a schema of its own in the test PostgreSQL."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'dutyline.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_psycopg(POSTGRES_URL))
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for one test, on each backend."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


def _psycopg(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1] if url.startswith("postgresql://") else url


@pytest.fixture
def sessions(database_url: str):  # type: ignore[no-untyped-def]
    from dutyline.store.db import make_engine, session_factory, upgrade

    engine = make_engine(database_url)
    upgrade(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def example_text() -> str:
    return (REPO / "policies" / "orgs" / "sales_company.yaml").read_text(encoding="utf-8")


def run_cli(*args: str, database_url: str | None = None, check: bool = False) -> "subprocess.CompletedProcess[str]":
    """Run the real `dutyline` command line in a child process."""
    env = {**os.environ, "DUTYLINE_SEED_DIR": ""}
    if database_url:
        env["DUTYLINE_DATABASE_URL"] = database_url
    result = subprocess.run(
        [sys.executable, "-m", "dutyline", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=120
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """`dutyline serve` in a child process on a loopback port."""

    def __init__(self, database_url: str, seed_dir: str = "", extra_env: dict[str, str] | None = None) -> None:
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DUTYLINE_DATABASE_URL": database_url,
            "DUTYLINE_SEED_DIR": seed_dir,
            "DUTYLINE_REFRESH_INTERVAL": "0.2",
            "DUTYLINE_LOG_LEVEL": "warning",
            **(extra_env or {}),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dutyline", "serve", "--port", str(self.port)],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited: {self.process.stdout.read() if self.process.stdout else ''}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("server did not start in time")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def seeded_server(database_url: str) -> Iterator[LiveServer]:
    """A real server on a loopback port whose database holds the seed organisations."""
    server = LiveServer(database_url, seed_dir=str(REPO / "policies"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module", params=_backends())
def api_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One seeded server per test module and database backend, for API tests."""
    with fresh_database(request.param, tmp_path_factory.mktemp("db")) as url:
        server = LiveServer(url, seed_dir=str(REPO / "policies"), extra_env={"DUTYLINE_CONSISTENCY_WAIT": "0.5"})
        try:
            server.wait_ready()
            yield server
        finally:
            server.stop()
