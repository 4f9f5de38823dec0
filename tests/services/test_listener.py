"""The change listener: a version committed by another process is applied here within moments, and a lost
connection is re-established without missing what committed meanwhile."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from dutyline.orgmodel.validate import parse_organisation
from dutyline.services import orgs
from dutyline.services.listener import ChangeListener
from dutyline.services.policies import PolicyService
from tests.conftest import POSTGRES_URL, fresh_database

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not POSTGRES_URL, reason="needs DUTYLINE_TEST_POSTGRES_URL"),
]


def _org(name: str):  # type: ignore[no-untyped-def]
    return parse_organisation(
        (REPO / "policies" / "orgs" / f"{name}.yaml").read_text(encoding="utf-8"), name
    ).organisation


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[tuple[object, PolicyService, ChangeListener]]:
    """A policy service with its listener, and (as the first item) the sessions of "another process"."""
    from dutyline.store.db import make_engine, session_factory, upgrade

    with fresh_database("postgresql", tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        sessions = session_factory(engine)
        policies = PolicyService(sessions)
        listener = ChangeListener(url, policies, poll=0.1, max_backoff=0.2)
        listener.start()
        assert listener.connected.wait(5)
        try:
            yield sessions, policies, listener
        finally:
            listener.stop()
            engine.dispose()


def _until(predicate, timeout: float = 5.0) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "not applied in time"
        time.sleep(0.005)
    return time.monotonic() - started


def test_a_change_committed_elsewhere_is_applied_without_polling(replica) -> None:  # type: ignore[no-untyped-def]
    sessions, policies, _ = replica
    [saved] = orgs.save_documents(sessions, [_org("hotel")], author="elsewhere")
    _until(lambda: policies.current.version >= saved.version)
    assert policies.current.get("hotel") is not None


def test_a_burst_of_changes_costs_few_refreshes(replica) -> None:  # type: ignore[no-untyped-def]
    sessions, policies, listener = replica
    before = listener.refreshes
    names = ["hotel", "restaurant", "logistics", "water_utility", "sales_company", "securities_branch"]
    last = [orgs.save_documents(sessions, [_org(name)], author="burst")[0].version for name in names][-1]
    _until(lambda: policies.current.version >= last)
    assert set(names) <= set(policies.current.orgs)
    assert listener.refreshes - before <= len(names)


def test_the_listener_reconnects_and_catches_up_after_losing_its_connection(replica) -> None:  # type: ignore[no-untyped-def]
    sessions, policies, listener = replica
    lost = listener.backend_pid
    with sessions.begin() as session:
        session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": lost})
    # committed while the listener is (probably) disconnected: the refresh on reconnecting picks it up
    [saved] = orgs.save_documents(sessions, [_org("restaurant")], author="meanwhile")
    _until(lambda: policies.current.version >= saved.version)
    _until(lambda: listener.connected.is_set() and listener.backend_pid != lost)
    [later] = orgs.save_documents(sessions, [_org("hotel")], author="after")
    _until(lambda: policies.current.version >= later.version)
