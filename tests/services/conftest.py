"""The services called directly, no HTTP: a `Runtime` started as `dutyline serve` starts it (migrated, seeded with
`policies/` and `rules/`, compiled), on a real database of its own per test module and backend (a SQLite file, and a
PostgreSQL schema when DUTYLINE_TEST_POSTGRES_URL is set), plus the small counter of tests/data/workflow.

Its scheduler thread ticks hourly, so it never escalates behind a test's back: tests that escalate call the
services themselves. Tests share the module's database, so each makes what it changes (its own approvals, cases,
users, organisations) and reads nothing another test may change.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dutyline.runtime import Runtime
from dutyline.services import orgs
from dutyline.settings import Settings
from tests.conftest import _backends, fresh_database
from tests.live import REPO

WORKFLOW = REPO / "tests" / "data" / "workflow"
COUNTER = (
    "test_counter"  # teller (ann, bob, tom) → manager (mia; kay and rob acting) → deputy (vacant) → director (dan)
)


@pytest.fixture(scope="module", params=_backends())
def runtime(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    with fresh_database(request.param, tmp_path_factory.mktemp("db")) as url:
        settings = Settings(
            database_url=url, seed_dir=REPO / "policies", escalation_interval=3600.0, listen=False, secret_key="test"
        )
        started = Runtime.start(settings)
        try:
            orgs.import_paths(started.sessions, [WORKFLOW], author="test")
            started.policies.refresh()
            started.ledger.refresh()
            yield started
        finally:
            started.close()


def new_id(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def seed_text(org: str) -> tuple[str, str]:
    """A seed organisation's file and its rule pack's, as text."""
    return (
        (REPO / "policies" / "orgs" / f"{org}.yaml").read_text(encoding="utf-8"),
        (REPO / "rules" / f"{org}.yaml").read_text(encoding="utf-8"),
    )


def copy_of(runtime: Runtime, folder: Path, org: str = "sales_company") -> str:
    """A copy of a seed organisation and its rule pack under a new id, stored and compiled: a test changes it freely."""
    ident = new_id("copy")
    document, pack = seed_text(org)
    (folder / f"{ident}.yaml").write_text(document.replace(f"id: {org}\n", f"id: {ident}\n", 1), encoding="utf-8")
    (folder / "rules").mkdir(exist_ok=True)
    (folder / "rules" / f"{ident}.yaml").write_text(
        pack.replace(f"org: {org}\n", f"org: {ident}\n", 1), encoding="utf-8"
    )
    orgs.import_paths(runtime.sessions, [folder / f"{ident}.yaml", folder / "rules" / f"{ident}.yaml"], author="test")
    runtime.policies.refresh()
    assert runtime.policies.current.get(ident) is not None and ident in runtime.policies.current.rules
    return ident


def current(runtime: Runtime, org: str, target: str) -> tuple[Any, str | None, int]:
    """What the editor reads of `target`: its value, its ETag, and the version that made it."""
    read = runtime.editor.current(org, target)
    return read.value, read.etag, read.version
