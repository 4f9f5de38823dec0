"""Reading the admin audit trail: a page of entries by organisation, actor and time, and a walk of its hash chain.
Who may read which organisations' entries is the caller's to check (`AccessService`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from sqlalchemy.orm import Session, sessionmaker

from dutyline.errors import NotFound
from dutyline.store import audit
from dutyline.store.audit import AuditFilter
from dutyline.store.tables import AuditRow


class AuditEntry(msgspec.Struct, forbid_unknown_fields=True):
    seq: int
    at: str
    actor: str
    action: str
    organisation: str | None
    target: str
    detail: dict[str, Any]  # the event's own fields (each `AuditEvent` has its own)
    hash: str
    prev_hash: str


class AuditTrail(msgspec.Struct, forbid_unknown_fields=True):
    """A page of the audit trail, newest first; `next_before` pages on (null on the last page)."""

    items: list[AuditEntry]
    next_before: int | None


class AuditBreak(msgspec.Struct, forbid_unknown_fields=True):
    seq: int
    message: str


class AuditCheck(msgspec.Struct, forbid_unknown_fields=True):
    entries: int
    ok: bool
    broken: AuditBreak | None
    # The newest entry, `SEQ:HASH`, to keep elsewhere and check against later (`dutyline audit verify --head`).
    head: str | None


class AuditReader:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def page(
        self,
        limit: int,
        before: int | None = None,
        *,
        organisation: str | None = None,
        organisations: frozenset[str] | None = None,
        actor: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
    ) -> AuditTrail:
        """Entries newest first, of `organisation` or of any of `organisations` (None: any), by `actor`, from `since`
        (inclusive) to `until` (exclusive); `before` pages on (entries with a smaller seq)."""
        where = AuditFilter(organisation, organisations, actor, since, until)
        with self._sessions() as session:
            rows = audit.query(session, where, limit, before)
        items = [_entry(r) for r in rows]
        return AuditTrail(items, items[-1].seq if len(items) == limit else None)

    def one(self, seq: int) -> AuditEntry:
        """The entry numbered `seq` (who may read it is the caller's to check, from its organisation)."""
        with self._sessions() as session:
            row = session.get(AuditRow, seq)
        if row is None:
            raise NotFound(f"audit entry {seq} not found")
        return _entry(row)

    def verify(self) -> AuditCheck:
        """Walk the hash chain; the first broken link, and the head to keep elsewhere."""
        with self._sessions() as session:
            checked, broken = audit.verify(session)
            head = audit.head(session)
        shown = f"{head[0]}:{head[1]}" if head is not None else None
        return AuditCheck(checked, broken is None, AuditBreak(broken.seq, broken.message) if broken else None, shown)


def _entry(r: AuditRow) -> AuditEntry:
    return AuditEntry(
        r.seq,
        r.at.isoformat(),
        r.actor,
        r.action,
        r.organisation,
        r.target,
        msgspec.json.decode(r.detail),
        r.hash,
        r.prev_hash,
    )
