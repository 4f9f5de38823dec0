"""The decision log table: batched inserts, filtered keyset-paginated reads, retention."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, or_, and_, select
from sqlalchemy.orm import Session

from dutyline.errors import Invalid, Issue
from dutyline.store.tables import DecisionLogRow


_COLUMNS = tuple(column.name for column in DecisionLogRow.__table__.columns)


def insert_many(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert a batch. On PostgreSQL with COPY: about ten times less CPU per row than an executemany of
    INSERTs, and the writer thread shares the interpreter with the decision path."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        connection = session.connection().connection.driver_connection
        with connection.cursor() as cursor:
            with cursor.copy(f"COPY {DecisionLogRow.__tablename__} ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(tuple(row[c] for c in _COLUMNS))
        return
    session.execute(insert(DecisionLogRow), list(rows))


def delete_older_than(session: Session, cutoff: dt.datetime) -> int:
    result = session.execute(delete(DecisionLogRow).where(DecisionLogRow.decided_at < cutoff))
    return result.rowcount or 0


@dataclass(frozen=True, slots=True)
class LogFilter:
    organisation: str | None = None
    subject: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    request_id: str | None = None


def query(session: Session, where: LogFilter, limit: int, token: str | None) -> tuple[list[DecisionLogRow], str]:
    """Newest first; returns the rows and the token of the next page ('' on the last page)."""
    statement = select(DecisionLogRow)
    for column, value in (
        (DecisionLogRow.organisation, where.organisation),
        (DecisionLogRow.subject, where.subject),
        (DecisionLogRow.resource_type, where.resource_type),
        (DecisionLogRow.resource_id, where.resource_id),
        (DecisionLogRow.action, where.action),
        (DecisionLogRow.outcome, where.outcome),
        (DecisionLogRow.request_id, where.request_id),
    ):
        if value is not None:
            statement = statement.where(column == value)
    if where.since is not None:
        statement = statement.where(DecisionLogRow.decided_at >= where.since)
    if where.until is not None:
        statement = statement.where(DecisionLogRow.decided_at < where.until)
    if token:
        at, ident = _decode_token(token)
        statement = statement.where(
            or_(DecisionLogRow.decided_at < at, and_(DecisionLogRow.decided_at == at, DecisionLogRow.id < ident))
        )
    statement = statement.order_by(DecisionLogRow.decided_at.desc(), DecisionLogRow.id.desc()).limit(limit + 1)
    rows = list(session.execute(statement).scalars())
    if len(rows) <= limit:
        return rows, ""
    last = rows[limit - 1]
    return rows[:limit], _encode_token(last.decided_at, last.id)


def _encode_token(at: dt.datetime, ident: str) -> str:
    return base64.urlsafe_b64encode(f"{_utc(at).isoformat()}|{ident}".encode()).decode().rstrip("=")


_MAX_TOKEN = 200  # characters: a token this server issues is about 80


def _decode_token(token: str) -> tuple[dt.datetime, str]:
    """A page token back into (decided_at, id); every token this server did not issue is an `Invalid` naming
    `page_token`, never an error further down (a date-time without an offset could not be compared)."""
    refused = Invalid("invalid page token", [Issue("<request>", 0, "page_token", "not a token this server issued")])
    if len(token) > _MAX_TOKEN or not token.isascii():
        raise refused
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        at, ident = raw.split("|", 1)
        moment = dt.datetime.fromisoformat(at)
    except (ValueError, UnicodeDecodeError):
        raise refused from None
    if moment.tzinfo is None or not ident or len(ident) > 64 or not ident.isprintable():
        raise refused
    return moment.astimezone(dt.timezone.utc), ident


def _utc(at: dt.datetime) -> dt.datetime:
    return at.replace(tzinfo=dt.timezone.utc) if at.tzinfo is None else at.astimezone(dt.timezone.utc)
