"""The admin audit trail: an append-only, hash-chained table.

Each entry stores `prev_hash` (the hash of the entry before it; 64 zeros for the first) and
`hash = sha256(canonical content + prev_hash)`. Appends are serialised (PostgreSQL: a transaction-scoped
advisory lock; SQLite: the database's single writer, taken before the last entry is read), so the chain
is one line whatever the number of writers, and `seq` numbers it without gaps.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from dutyline.store.tables import AuditRow

GENESIS = "0" * 64
_AUDIT_LOCK = 0x6475_7479_6175_6474  # "dutyaudt": any fixed number distinct from the other advisory locks


def canonical(row: AuditRow) -> str:
    """The text the hash covers: every column but the hashes, in a fixed form."""
    return json.dumps(
        {
            "seq": row.seq,
            "at": _utc(row.at).isoformat(),
            "actor": row.actor,
            "action": row.action,
            "organisation": row.organisation,
            "target": row.target,
            "detail": row.detail,
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )


def chain_hash(row: AuditRow, prev_hash: str) -> str:
    return hashlib.sha256((canonical(row) + prev_hash).encode()).hexdigest()


def append(
    session: Session,
    actor: str,
    action: str,
    organisation: str | None,
    target: str,
    detail: Mapping[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> AuditRow:
    """Add an entry in the caller's transaction (it commits with the change it records)."""
    _hold_append_lock(session)
    last = session.execute(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)).scalar_one_or_none()
    moment = (at or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    row = AuditRow(
        seq=(last.seq + 1) if last is not None else 1,
        at=moment,
        actor=actor[:200],
        action=action[:64],
        organisation=organisation,
        target=target[:256],
        detail=json.dumps(dict(detail or {}), sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str),
        prev_hash=last.hash if last is not None else GENESIS,
        hash="",
    )
    row.hash = chain_hash(row, row.prev_hash)
    session.add(row)
    session.flush()
    return row


def _hold_append_lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _AUDIT_LOCK})
    else:
        # SQLite begins a transaction lazily at the first write; a write that changes nothing takes the
        # database's write lock now, before the last entry is read, so no other writer can slip in between.
        session.execute(update(AuditRow).where(AuditRow.seq == -1).values(seq=AuditRow.seq))


@dataclass(frozen=True, slots=True)
class AuditFilter:
    organisation: str | None = None
    organisations: frozenset[str] | None = None  # None: any; otherwise only these (and entries without one)
    actor: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def query(session: Session, where: AuditFilter, limit: int, before: int | None = None) -> list[AuditRow]:
    """Newest first; `before` pages on (entries with a smaller seq)."""
    statement = select(AuditRow)
    if where.organisation is not None:
        statement = statement.where(AuditRow.organisation == where.organisation)
    if where.organisations is not None:
        statement = statement.where(AuditRow.organisation.in_(sorted(where.organisations)))
    if where.actor is not None:
        statement = statement.where(AuditRow.actor == where.actor)
    if where.since is not None:
        statement = statement.where(AuditRow.at >= where.since)
    if where.until is not None:
        statement = statement.where(AuditRow.at < where.until)
    if before is not None:
        statement = statement.where(AuditRow.seq < before)
    return list(session.execute(statement.order_by(AuditRow.seq.desc()).limit(limit)).scalars())


@dataclass(frozen=True, slots=True)
class Break:
    """The first place the chain does not hold, and why."""

    seq: int
    message: str


def verify(session: Session, batch: int = 1000) -> tuple[int, Break | None]:
    """Walk the whole chain in order; (entries checked, the first break or None)."""
    checked = 0
    expected_seq = 1
    prev = GENESIS
    for row in _rows(session, batch):
        if row.seq != expected_seq:
            return checked, Break(expected_seq, f"entry {expected_seq} is missing (next is {row.seq})")
        if row.prev_hash != prev:
            return checked, Break(row.seq, f"entry {row.seq} does not link to entry {row.seq - 1} (prev_hash differs)")
        if chain_hash(row, row.prev_hash) != row.hash:
            return checked, Break(row.seq, f"entry {row.seq} was altered (its hash does not match its content)")
        prev = row.hash
        expected_seq += 1
        checked += 1
    return checked, None


def _rows(session: Session, batch: int) -> Iterator[AuditRow]:
    after = 0
    while True:
        rows = list(
            session.execute(select(AuditRow).where(AuditRow.seq > after).order_by(AuditRow.seq).limit(batch)).scalars()
        )
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].seq


def _utc(at: dt.datetime) -> dt.datetime:
    return at.replace(tzinfo=dt.timezone.utc) if at.tzinfo is None else at.astimezone(dt.timezone.utc)
