"""The admin audit trail: an append-only, hash-chained table.

Each entry stores `prev_hash` (the hash of the entry before it; 64 zeros for the first) and
`hash = sha256(canonical content + prev_hash)`. Appends are serialised (PostgreSQL: a transaction-scoped
advisory lock; SQLite: the database's single writer, taken before the last entry is read), so the chain
is one line whatever the number of writers, and `seq` numbers it without gaps.

A chain alone cannot show that its newest entries were cut off: what is left is still a valid chain. So every
append also moves the head anchor (`audit_head`: the newest seq and hash, with an HMAC keyed by the settings'
secret key, or else by a key kept in the database) in the same transaction, and `verify` checks that the chain
ends exactly there. Against someone who can also rewrite the anchor, publish the head elsewhere (`dutyline audit
verify` prints it) and check against it later (`--head SEQ:HASH`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from dutyline.store.access import server_secret
from dutyline.store.tables import AuditHeadRow, AuditRow

GENESIS = "0" * 64
HEAD_SECRET = "audit_head"  # the name of the database-kept key, when the settings give none
_AUDIT_LOCK = 0x6475_7479_6175_6474  # "dutyaudt": any fixed number distinct from the other advisory locks


class AuditEvent(StrEnum):
    """Every action the trail records (the value is what is stored and shown). A closed set: a write that would
    record anything else fails before it commits, so the console and `audit --action` can list them all."""

    # A document, one of its entities, or a rule pack: created, replaced (PUT), changed (PATCH), deleted.
    ORG_CREATED = "org_created"
    ORG_REPLACED = "org_replaced"
    ORG_CHANGED = "org_changed"
    ORG_DELETED = "org_deleted"
    DEPARTMENTS_CREATED = "departments_created"
    DEPARTMENTS_REPLACED = "departments_replaced"
    DEPARTMENTS_CHANGED = "departments_changed"
    DEPARTMENTS_DELETED = "departments_deleted"
    POSTS_CREATED = "posts_created"
    POSTS_REPLACED = "posts_replaced"
    POSTS_CHANGED = "posts_changed"
    POSTS_DELETED = "posts_deleted"
    PEOPLE_CREATED = "people_created"
    PEOPLE_REPLACED = "people_replaced"
    PEOPLE_CHANGED = "people_changed"
    PEOPLE_DELETED = "people_deleted"
    RESOURCES_CREATED = "resources_created"
    RESOURCES_REPLACED = "resources_replaced"
    RESOURCES_CHANGED = "resources_changed"
    RESOURCES_DELETED = "resources_deleted"
    GROUPS_CREATED = "groups_created"
    GROUPS_REPLACED = "groups_replaced"
    GROUPS_CHANGED = "groups_changed"
    GROUPS_DELETED = "groups_deleted"
    SEPARATION_OF_DUTIES_CREATED = "separation_of_duties_created"
    SEPARATION_OF_DUTIES_REPLACED = "separation_of_duties_replaced"
    SEPARATION_OF_DUTIES_CHANGED = "separation_of_duties_changed"
    SEPARATION_OF_DUTIES_DELETED = "separation_of_duties_deleted"
    RULES_CREATED = "rules_created"
    RULES_REPLACED = "rules_replaced"
    RULES_CHANGED = "rules_changed"
    RULES_DELETED = "rules_deleted"
    # Whole documents and packs loaded by `dutyline import` or the seed (`services.orgs.load`).
    ORG_IMPORTED = "org_imported"
    ORG_SEEDED = "org_seeded"
    RULES_IMPORTED = "rules_imported"
    RULES_SEEDED = "rules_seeded"
    SETTINGS_CHANGED = "settings_changed"
    # Changes that wait: held for a second person (four-eyes) or scheduled, then decided and applied.
    CHANGE_PENDING = "change_pending"
    CHANGE_SCHEDULED = "change_scheduled"
    CHANGE_APPROVED = "change_approved"
    CHANGE_REJECTED = "change_rejected"
    CHANGE_APPLIED = "change_applied"
    CHANGE_FAILED = "change_failed"
    # Users, sessions and tokens.
    USER_CREATED = "user_created"
    USER_CHANGED = "user_changed"
    USER_LINKED = "user_linked"
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    TOKEN_ISSUED = "token_issued"
    TOKEN_REVOKED = "token_revoked"
    AUDIT_HEAD_RESET = "audit_head_reset"

    @classmethod
    def of(cls, subject: str, verb: str) -> AuditEvent:
        """`subject_verb` (`posts`, `created` → POSTS_CREATED); a ValueError for one the trail does not know."""
        return cls(f"{subject}_{verb}")


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
    action: AuditEvent,
    organisation: str | None,
    target: str,
    detail: Mapping[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> AuditRow:
    """Add an entry in the caller's transaction (it commits with the change it records), and move the head anchor
    to it, if the anchor is intact: a break stays visible to `verify` after later appends. Entries cut off the end
    leave a gap (numbering goes on after the anchor); an anchor that is altered, missing or behind the chain stays
    where it is (`reset_head` moves it on, as an entry of its own)."""
    _hold_append_lock(session)
    return _append(session, actor, action, organisation, target, detail, at, reset=False)


def reset_head(session: Session, actor: str, reason: str) -> AuditRow:
    """An entry saying the head anchor was reset, and the anchor moved to it whatever it was: after changing the
    secret key, or once a break that `verify` reported has been looked into. Breaks in the chain itself stay."""
    _hold_append_lock(session)
    anchor = session.get(AuditHeadRow, 1)
    previous = f"{anchor.seq}:{anchor.hash}" if anchor is not None else None
    detail = {"previous": previous, "reason": reason}
    return _append(session, actor, AuditEvent.AUDIT_HEAD_RESET, None, "audit", detail, None, reset=True)


def _append(
    session: Session,
    actor: str,
    action: AuditEvent,
    organisation: str | None,
    target: str,
    detail: Mapping[str, Any] | None,
    at: dt.datetime | None,
    reset: bool,
) -> AuditRow:
    last = session.execute(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)).scalar_one_or_none()
    anchor = session.get(AuditHeadRow, 1)
    key = _head_key(session)
    seq, prev = (last.seq + 1, last.hash) if last is not None else (1, GENESIS)
    intact = anchor is None and last is None  # a new trail
    if anchor is not None and hmac.compare_digest(head_mac(key, anchor.seq, anchor.hash), anchor.mac):
        if last is None or anchor.seq > last.seq:  # entries were cut off the end: go on after them
            seq, prev, intact = anchor.seq + 1, anchor.hash, True
        else:
            intact = (anchor.seq, anchor.hash) == (last.seq, last.hash)
    moment = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    row = AuditRow(
        seq=seq,
        at=moment,
        actor=actor[:200],
        action=str(action),  # the enum's value: what the trail stores
        organisation=organisation,
        target=target[:256],
        detail=json.dumps(dict(detail or {}), sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str),
        prev_hash=prev,
        hash="",
    )
    row.hash = chain_hash(row, row.prev_hash)
    session.add(row)
    session.flush()
    if intact or reset:
        mac = head_mac(key, row.seq, row.hash)
        if anchor is None:
            session.add(AuditHeadRow(id=1, seq=row.seq, hash=row.hash, mac=mac, updated_at=moment))
        else:
            anchor.seq, anchor.hash, anchor.mac, anchor.updated_at = row.seq, row.hash, mac, moment
        session.flush()
    return row


def head_mac(key: bytes, seq: int, entry_hash: str) -> str:
    """The HMAC that vouches for a head anchor (also used by migration 0010, which adopts the first one)."""
    return hmac.new(key, f"audit_head\0{seq}\0{entry_hash}".encode(), hashlib.sha256).hexdigest()


def _head_key(session: Session) -> bytes:
    configured = session.info.get("secret_key") or ""
    if configured:
        return configured.encode()
    return server_secret(session, HEAD_SECRET, secrets.token_hex(32), dt.datetime.now(dt.UTC)).encode()


def head(session: Session) -> tuple[int, str] | None:
    """The chain's newest entry as (seq, hash), None when the trail is empty: what to publish elsewhere."""
    last = session.execute(select(AuditRow.seq, AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)).first()
    return (last[0], last[1]) if last is not None else None


def parse_head(text_: str) -> tuple[int, str]:
    """`SEQ:HASH` as `dutyline audit verify` prints it; ValueError naming what is wrong."""
    seq, sep, entry_hash = text_.strip().partition(":")
    if not sep or not seq.isdigit() or len(entry_hash) != 64 or any(c not in "0123456789abcdef" for c in entry_hash):
        raise ValueError(f"{text_!r} is not SEQ:HASH (a number, a colon, 64 lower-case hex digits)")
    return int(seq), entry_hash


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


def verify(session: Session, batch: int = 1000, published: tuple[int, str] | None = None) -> tuple[int, Break | None]:
    """Walk the whole chain in order, then check that it ends at the head anchor and, given one, passes through
    `published` (a head printed earlier: (seq, hash)); (entries checked, the first break or None)."""
    checked = 0
    expected_seq = 1
    prev = GENESIS
    seen_published = False
    for row in _rows(session, batch):
        if row.seq != expected_seq:
            return checked, Break(expected_seq, f"entry {expected_seq} is missing (next is {row.seq})")
        if row.prev_hash != prev:
            return checked, Break(row.seq, f"entry {row.seq} does not link to entry {row.seq - 1} (prev_hash differs)")
        if chain_hash(row, row.prev_hash) != row.hash:
            return checked, Break(row.seq, f"entry {row.seq} was altered (its hash does not match its content)")
        if published is not None and row.seq == published[0]:
            if row.hash != published[1]:
                return checked, Break(row.seq, f"entry {row.seq} is not the one published (its hash differs)")
            seen_published = True
        prev = row.hash
        expected_seq += 1
        checked += 1
    if published is not None and not seen_published:
        gone = _span(checked + 1, published[0], "is", "are")
        return checked, Break(checked + 1, f"{gone} missing: the published head is entry {published[0]}")
    return checked, _head_break(session, checked, prev)


def _head_break(session: Session, last_seq: int, last_hash: str) -> Break | None:
    """Whether the chain, which ends at entry `last_seq` (0: empty), ends where the head anchor says it does."""
    anchor = session.get(AuditHeadRow, 1)
    if anchor is None:
        if last_seq == 0:
            return None
        return Break(last_seq, "the head anchor is missing: the end of the chain cannot be vouched for")
    if not hmac.compare_digest(head_mac(_head_key(session), anchor.seq, anchor.hash), anchor.mac):
        return Break(
            anchor.seq, "the head anchor was altered (its HMAC does not match, or DUTYLINE_SECRET_KEY changed)"
        )
    if anchor.seq > last_seq:
        gone = _span(last_seq + 1, anchor.seq, "was", "were")
        return Break(last_seq + 1, f"{gone} removed: the head anchor is entry {anchor.seq}")
    if anchor.seq < last_seq or anchor.hash != last_hash:
        message = f"the chain does not end at its head anchor (entry {anchor.seq}; the last is {last_seq})"
        return Break(anchor.seq, message)
    return None


def _span(first: int, last: int, one: str, many: str) -> str:
    return f"entry {first} {one}" if first == last else f"entries {first} to {last} {many}"


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
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)
