"""Shared fixtures: real databases (a SQLite file, and PostgreSQL when DUTYLINE_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.live import REPO, LiveServer

POSTGRES_URL = os.environ.get("DUTYLINE_TEST_POSTGRES_URL", "")

# The lanes (CONTRIBUTING.md): `-m pure` runs what needs no database, server or browser (engines, documents,
# expressions, the policy content itself), in about a minute; `-m live` the rest.
_PURE = ("tests/engines/", "tests/orgmodel/", "tests/i18n/", "tests/test_expressions.py", "tests/test_policies.py")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--regen-golden",
        action="store_true",
        default=False,
        help="rewrite the golden files (tests/data/compile/) from what the code gives now, instead of comparing",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        where = Path(str(item.fspath)).resolve().relative_to(REPO).as_posix()
        item.add_marker(pytest.mark.pure if where.startswith(_PURE) else pytest.mark.live)


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


def run_cli(*args: str, database_url: str | None = None, check: bool = False) -> subprocess.CompletedProcess[str]:
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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """A failed test's report ends with what the servers still running logged."""
    report = yield
    if report.failed:
        for server in sorted(LiveServer.running, key=lambda s: s.port):
            report.sections.append((f"dutyline serve {server.url} ({server.log_path})", server.log_text()[-6000:]))
    return report


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
