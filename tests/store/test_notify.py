"""Policy writes on PostgreSQL: they commit in version order, and announce the version on commit only."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dutyline.orgmodel.validate import parse_organisation
from dutyline.store import notify
from dutyline.store import orgs as org_store
from tests.conftest import POSTGRES_URL, fresh_database

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not POSTGRES_URL, reason="needs DUTYLINE_TEST_POSTGRES_URL"),
]


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[tuple[str, object]]:
    from dutyline.store.db import make_engine, session_factory, upgrade

    with fresh_database("postgresql", tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        yield url, session_factory(engine)
        engine.dispose()


def _org(name: str):  # type: ignore[no-untyped-def]
    return parse_organisation(
        (REPO / "policies" / "orgs" / f"{name}.yaml").read_text(encoding="utf-8"), name
    ).organisation


def test_a_save_is_announced_when_it_commits_and_not_before(postgres) -> None:  # type: ignore[no-untyped-def]
    url, sessions = postgres
    with notify.listening(url) as listener:
        with sessions.begin() as session:
            [saved] = org_store.save(session, [_org("hotel")], author="test")
            assert notify.received(listener, 0.2) == [], "nothing is sent before commit"
        assert notify.received(listener, 2.0) == [saved.version]


def test_a_rolled_back_save_is_never_announced(postgres) -> None:  # type: ignore[no-untyped-def]
    url, sessions = postgres
    with notify.listening(url) as listener:
        with sessions() as session:
            org_store.save(session, [_org("hotel")], author="test")
            session.rollback()
        assert notify.received(listener, 0.3) == []


def test_concurrent_writers_commit_in_version_order(postgres) -> None:  # type: ignore[no-untyped-def]
    """A replica that has applied version N never looks below N again, so N-1 must not commit after N."""
    _, sessions = postgres
    second: list[int] = []
    with sessions.begin() as first:
        [a] = org_store.save(first, [_org("hotel")], author="first")

        def write_other() -> None:
            with sessions.begin() as session:
                second.extend(r.version for r in org_store.save(session, [_org("restaurant")], author="second"))

        thread = threading.Thread(target=write_other)
        thread.start()
        time.sleep(0.3)
        assert not second, "the second writer waits for the first to commit"
    thread.join(5)
    assert second and second[0] > a.version
