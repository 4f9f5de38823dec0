"""The audit trail is a hash chain: `dutyline audit verify` finds the first entry edited behind its back."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import select, update

from dutyline.store import audit
from dutyline.store.tables import AuditRow
from tests.conftest import REPO, run_cli


def test_an_entry_edited_in_the_database_breaks_the_chain_and_verify_says_where(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "DUTYLINE_DATABASE_URL": database_url, "DUTYLINE_SEED_DIR": ""}
    for name in ("root", "second"):
        subprocess.run(
            [sys.executable, "-m", "dutyline", "admin", "create", name, "--password-stdin", "--role", "system_admin"],
            input="long enough password\n", capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=True,
        )
    run_cli("admin", "token", "root", "--scope", "read", database_url=database_url, check=True)
    intact = run_cli("audit", "verify", database_url=database_url)
    assert (intact.returncode, intact.stdout.strip()) == (0, "ok: 3 entries, chain intact")
    with sessions.begin() as session:
        session.execute(update(AuditRow).where(AuditRow.seq == 2).values(actor="someone else"))
    broken = run_cli("audit", "verify", database_url=database_url)
    assert broken.returncode == 1
    assert "BROKEN at entry 2: entry 2 was altered" in broken.stderr


def test_entries_link_in_order_and_a_removed_entry_is_found(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions.begin() as session:
        for n in range(4):
            audit.append(session, "tester", "thing_done", "org", f"thing:{n}", {"n": n})
    with sessions() as session:
        rows = list(session.execute(select(AuditRow).order_by(AuditRow.seq)).scalars())
        assert [r.seq for r in rows] == [1, 2, 3, 4]
        assert rows[0].prev_hash == audit.GENESIS and all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:]))
        assert audit.verify(session) == (4, None)
    with sessions.begin() as session:
        session.delete(session.get(AuditRow, 3))
    with sessions() as session:
        checked, broken = audit.verify(session)
    assert checked == 2 and broken is not None and broken.seq == 3 and "missing" in broken.message
