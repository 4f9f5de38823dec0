"""The audit trail is a hash chain: `dutyline audit verify` finds the first entry edited behind its back, and, with
the head anchor kept beside it (or a head published elsewhere), entries cut off its end."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import re
import subprocess
import sys

from sqlalchemy import delete, select, update

from dutyline.store import audit
from dutyline.store.audit import AuditEvent
from dutyline.store.db import make_engine, session_factory, upgrade
from dutyline.store.tables import AuditHeadRow, AuditRow, ServerSecretRow
from tests.conftest import REPO, run_cli

HEAD = re.compile(r"head (\d+:[0-9a-f]{64})$")


def test_an_entry_edited_in_the_database_breaks_the_chain_and_verify_says_where(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "DUTYLINE_DATABASE_URL": database_url, "DUTYLINE_SEED_DIR": ""}
    for name in ("root", "second"):
        subprocess.run(
            [sys.executable, "-m", "dutyline", "admin", "create", name, "--password-stdin", "--role", "system_admin"],
            input="long enough password\n",
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=120,
            check=True,
        )
    run_cli("admin", "token", "root", "--scope", "read", database_url=database_url, check=True)
    intact = run_cli("audit", "verify", database_url=database_url)
    assert intact.returncode == 0 and intact.stdout.startswith("ok: 3 entries, chain intact, head 3:"), intact.stdout
    with sessions.begin() as session:
        session.execute(update(AuditRow).where(AuditRow.seq == 2).values(actor="someone else"))
    broken = run_cli("audit", "verify", database_url=database_url)
    assert broken.returncode == 1
    assert "BROKEN at entry 2: entry 2 was altered" in broken.stderr


def test_entries_link_in_order_and_a_removed_entry_is_found(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions.begin() as session:
        for n in range(4):
            audit.append(session, "tester", AuditEvent.SETTINGS_CHANGED, "org", f"thing:{n}", {"n": n})
    with sessions() as session:
        rows = list(session.execute(select(AuditRow).order_by(AuditRow.seq)).scalars())
        assert [r.seq for r in rows] == [1, 2, 3, 4]
        assert rows[0].prev_hash == audit.GENESIS and all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
        assert audit.verify(session) == (4, None)
    with sessions.begin() as session:
        session.delete(session.get(AuditRow, 3))
    with sessions() as session:
        checked, broken = audit.verify(session)
    assert checked == 2 and broken is not None and broken.seq == 3 and "missing" in broken.message


def _append(sessions, count: int) -> None:  # type: ignore[no-untyped-def]
    with sessions.begin() as session:
        for n in range(count):
            audit.append(session, "tester", AuditEvent.SETTINGS_CHANGED, "org", f"thing:{n}", {"n": n})


def _cut_after(sessions, seq: int) -> None:  # type: ignore[no-untyped-def]
    """What someone with write access to the table does: delete the newest entries."""
    with sessions.begin() as session:
        session.execute(delete(AuditRow).where(AuditRow.seq > seq))


def test_entries_cut_off_the_end_are_found_by_the_head_anchor(sessions) -> None:  # type: ignore[no-untyped-def]
    _append(sessions, 5)
    with sessions() as session:
        assert audit.verify(session) == (5, None)
        assert session.get(AuditHeadRow, 1).seq == 5
    _cut_after(sessions, 3)  # what is left is still a perfect chain of three
    with sessions() as session:
        checked, broken = audit.verify(session)
    assert checked == 3 and broken is not None and broken.seq == 4
    assert broken.message == "entries 4 to 5 were removed: the head anchor is entry 5"


def test_a_removed_or_altered_anchor_is_found(sessions) -> None:  # type: ignore[no-untyped-def]
    _append(sessions, 2)
    with sessions.begin() as session:
        session.get(AuditHeadRow, 1).seq = 1  # pretend the chain ended earlier, without the key
    with sessions() as session:
        assert "its HMAC does not match" in audit.verify(session)[1].message  # type: ignore[union-attr]
    with sessions.begin() as session:
        session.execute(delete(AuditHeadRow))
    with sessions() as session:
        assert "the head anchor is missing" in audit.verify(session)[1].message  # type: ignore[union-attr]


def test_the_cli_prints_the_head_and_checks_a_published_one_even_if_the_anchor_was_rewritten(
    database_url: str, sessions
) -> None:  # type: ignore[no-untyped-def]
    _append(sessions, 4)
    printed = run_cli("audit", "verify", database_url=database_url, check=True)
    published = HEAD.search(printed.stdout.strip()).group(1)  # type: ignore[union-attr]
    assert published.startswith("4:")
    assert run_cli("audit", "verify", "--head", published, database_url=database_url).returncode == 0
    # Someone who can write the database (and so read the key kept there) cuts two entries and moves the anchor.
    _cut_after(sessions, 2)
    with sessions.begin() as session:
        key = session.execute(select(ServerSecretRow.value).where(ServerSecretRow.name == audit.HEAD_SECRET)).scalar()
        last = session.get(AuditRow, 2)
        anchor = session.get(AuditHeadRow, 1)
        anchor.seq, anchor.hash, anchor.mac = 2, last.hash, audit.head_mac(key.encode(), 2, last.hash)
    assert run_cli("audit", "verify", database_url=database_url).returncode == 0, "the database alone cannot tell"
    checked = run_cli("audit", "verify", "--head", published, database_url=database_url)
    assert checked.returncode == 1
    assert "BROKEN at entry 3: entries 3 to 4 are missing: the published head is entry 4" in checked.stderr
    malformed = run_cli("audit", "verify", "--head", "4:nothex", database_url=database_url)
    assert malformed.returncode == 2 and "--head" in malformed.stderr


def test_with_a_secret_key_the_anchor_cannot_be_rewritten_from_the_database(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine, secret_key="kept outside the database")
        sessions = session_factory(engine, "kept outside the database")
        _append(sessions, 3)
        with sessions() as session:
            assert audit.verify(session) == (3, None)
            kept = session.execute(select(ServerSecretRow).where(ServerSecretRow.name == audit.HEAD_SECRET)).first()
            assert kept is None, "no key in the database"
        _cut_after(sessions, 1)
        with sessions.begin() as session:  # the best a database writer can do: a key of their own
            last = session.get(AuditRow, 1)
            anchor = session.get(AuditHeadRow, 1)
            anchor.seq, anchor.hash, anchor.mac = 1, last.hash, audit.head_mac(b"a guess", 1, last.hash)
        with sessions() as session:
            assert "its HMAC does not match" in audit.verify(session)[1].message  # type: ignore[union-attr]
    finally:
        engine.dispose()


def test_upgrading_adopts_the_head_of_a_chain_written_before_anchors(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine, "0007")
        sessions = session_factory(engine)
        with sessions.begin() as session:  # entries as a release without anchors wrote them
            prev = audit.GENESIS
            for seq in (1, 2, 3):
                row = AuditRow(
                    seq=seq,
                    at=dt.datetime.now(dt.UTC),
                    actor="old",
                    action="thing_done",
                    organisation=None,
                    target=f"thing:{seq}",
                    detail="{}",
                    prev_hash=prev,
                    hash="",
                )
                row.hash = audit.chain_hash(row, prev)
                prev = row.hash
                session.add(row)
        upgrade(engine)
        with sessions() as session:
            assert audit.verify(session) == (3, None)
            assert session.get(AuditHeadRow, 1).seq == 3
        _cut_after(sessions, 2)
        with sessions() as session:
            broken = audit.verify(session)[1]
            assert broken is not None and broken.message == "entry 3 was removed: the head anchor is entry 3"
    finally:
        engine.dispose()


def test_a_cut_stays_visible_after_later_appends(sessions) -> None:  # type: ignore[no-untyped-def]
    """Appending after a cut does not heal it: numbering goes on after the anchor, so the gap remains."""
    _append(sessions, 5)
    _cut_after(sessions, 3)
    _append(sessions, 2)
    with sessions() as session:
        seqs = list(session.execute(select(AuditRow.seq).order_by(AuditRow.seq)).scalars())
        checked, broken = audit.verify(session)
    assert seqs == [1, 2, 3, 6, 7]
    assert checked == 3 and broken is not None and broken.message == "entry 4 is missing (next is 6)"


def test_an_altered_anchor_stays_put_until_reset_on_purpose(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    _append(sessions, 3)
    with sessions.begin() as session:
        session.get(AuditHeadRow, 1).mac = "0" * 64
    _append(sessions, 1)
    with sessions() as session:
        assert session.get(AuditHeadRow, 1).seq == 3, "an anchor that does not vouch for itself is not moved on"
        assert "its HMAC does not match" in audit.verify(session)[1].message  # type: ignore[union-attr]
    reset = run_cli("audit", "reset-head", "--reason", "key rotated", database_url=database_url, check=True)
    assert reset.stdout.startswith("head 5:")
    verified = run_cli("audit", "verify", database_url=database_url, check=True)
    assert verified.stdout.startswith("ok: 5 entries, chain intact, head 5:")
    with sessions() as session:
        entry = session.get(AuditRow, 5)
    assert (entry.action, entry.actor) == ("audit_head_reset", "cli")
    assert json.loads(entry.detail)["reason"] == "key rotated"
