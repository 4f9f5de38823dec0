"""The login throttle's counts in the database: one count per try whoever counts at once, windows that end, and a
secret that every process reads alike. On SQLite and PostgreSQL."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import threading

from sqlalchemy import func, select

from dutyline.store import access as store
from dutyline.store.tables import LoginAttemptRow

WINDOW = dt.timedelta(seconds=60)
T0 = dt.datetime(2026, 7, 6, 10, 0, tzinfo=dt.UTC)


def _count(sessions, key: str, now: dt.datetime) -> tuple[int, dt.datetime]:  # type: ignore[no-untyped-def]
    with sessions.begin() as session:
        return store.count_login_attempt(session, key, now, WINDOW)


def test_tries_at_the_same_moment_each_get_a_count_of_their_own(sessions) -> None:  # type: ignore[no-untyped-def]
    tries = 24
    start = threading.Barrier(tries)

    def one(_: int) -> int:
        start.wait()
        return _count(sessions, "k", T0)[0]

    with concurrent.futures.ThreadPoolExecutor(tries) as pool:
        counts = sorted(pool.map(one, range(tries)))
    assert counts == list(range(1, tries + 1)), "no two tries saw the same count: none slips past a limit"


def test_a_window_begins_at_the_first_try_and_a_try_after_it_starts_anew(sessions) -> None:  # type: ignore[no-untyped-def]
    assert _count(sessions, "k", T0) == (1, T0)
    assert _count(sessions, "k", T0 + dt.timedelta(seconds=59)) == (2, T0)
    assert _count(sessions, "other", T0 + dt.timedelta(seconds=59)) == (1, T0 + dt.timedelta(seconds=59))
    later = T0 + WINDOW
    assert _count(sessions, "k", later) == (1, later)
    with sessions.begin() as session:
        store.clear_login_attempts(session, "k")
    assert _count(sessions, "k", later) == (1, later), "a successful login clears the count"


def test_windows_that_have_ended_are_pruned(sessions) -> None:  # type: ignore[no-untyped-def]
    for n in range(5):
        _count(sessions, f"old{n}", T0)
    _count(sessions, "recent", T0 + dt.timedelta(seconds=30))
    with sessions.begin() as session:
        store.prune_login_attempts(session, T0 + dt.timedelta(seconds=70) - WINDOW)
    with sessions() as session:
        assert session.execute(select(LoginAttemptRow.key)).scalars().all() == ["recent"]
        assert session.execute(select(func.count()).select_from(LoginAttemptRow)).scalar_one() == 1


def test_the_first_to_ask_makes_the_secret_and_the_others_read_it(sessions) -> None:  # type: ignore[no-untyped-def]
    start = threading.Barrier(8)

    def ask(n: int) -> str:
        start.wait()
        with sessions.begin() as session:
            return store.server_secret(session, "username_digest", f"candidate {n}", T0)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        seen = set(pool.map(ask, range(8)))
    assert len(seen) == 1 and seen.pop().startswith("candidate ")
