"""The decision log table: batched inserts, filtered keyset-paginated reads, retention.

A row's request parts that are big or shared (a batch's top-level context) are kept once, by digest, in
`decision_log_parts`; `requests_of` puts each row's request back together when the log is read.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import and_, delete, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dutyline.store.db import rows_changed
from dutyline.store.tables import DecisionLogPartRow, DecisionLogRow

_COLUMNS = tuple(column.name for column in DecisionLogRow.__table__.columns)


def insert_many(session: Session, rows: Sequence[dict[str, Any]], parts: Sequence[dict[str, Any]] = ()) -> None:
    """Insert a batch, and the parts its rows refer to. On PostgreSQL with COPY: about ten times less CPU per row
    than an executemany of INSERTs, and the writer thread shares the interpreter with the decision path."""
    if parts:
        _upsert_parts(session, parts)
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        connection = session.connection().connection.driver_connection
        assert connection is not None  # a connection checked out of the pool has its driver's
        copying = f"COPY {DecisionLogRow.__tablename__} ({', '.join(_COLUMNS)}) FROM STDIN"
        with connection.cursor() as cursor, cursor.copy(copying) as copy:
            for row in rows:
                copy.write_row(tuple(row[c] for c in _COLUMNS))
        return
    session.execute(insert(DecisionLogRow), list(rows))


def _upsert_parts(session: Session, parts: Sequence[dict[str, Any]]) -> None:
    """Store each part once: a part already stored (by this batch's rows' predecessors, or another replica) is only
    marked seen again. In digest order, so that two replicas' writers never wait for each other in a cycle."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(DecisionLogPartRow)
    statement = statement.on_conflict_do_update(
        index_elements=["digest"], set_={"last_seen": statement.excluded.last_seen}
    )
    session.execute(statement, sorted(parts, key=lambda part: part["digest"]))


def delete_older_than(session: Session, cutoff: dt.datetime) -> int:
    """Remove the rows decided before `cutoff`, and the parts no newer row refers to; the number of rows removed."""
    result = session.execute(delete(DecisionLogRow).where(DecisionLogRow.decided_at < cutoff))
    session.execute(delete(DecisionLogPartRow).where(DecisionLogPartRow.last_seen < cutoff))
    return rows_changed(result)


@dataclass(frozen=True, slots=True)
class Truncation:
    """A request part the log keeps only in part (`DUTYLINE_DECISION_LOG_MAX_CONTEXT_BYTES`), or no longer has."""

    part: str  # "context", "subject_properties" or "resource_properties"
    bytes: int  # its size as the caller sent it (JSON); 0 when it is missing
    kept_bytes: int  # the size of what is kept: some of its keys, in order
    sha256: str  # of the whole part as the caller sent it (JSON)


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """What a logged decision was asked besides subject, resource and action; decoded JSON."""

    subject_properties: Any
    resource_properties: Any
    context: Any
    at: float | None
    truncated: tuple[Truncation, ...] = ()


def requests_of(session: Session, rows: Sequence[DecisionLogRow]) -> list[LoggedRequest]:
    """Each row's request, whole again: the parts kept once by digest put back where they were asked."""
    wanted = [json.loads(row.parts) if row.parts else {} for row in rows]
    digests = {digest for refs in wanted for digest in refs.values()}
    stored = (
        {
            part.digest: part
            for part in session.execute(
                select(DecisionLogPartRow).where(DecisionLogPartRow.digest.in_(digests))
            ).scalars()
        }
        if digests
        else {}
    )
    out = []
    for row, refs in zip(rows, wanted):
        request = json.loads(row.request)
        truncated = []
        for name, digest in refs.items():
            part = stored.get(digest)
            if part is None:  # cannot happen while retention keeps its invariant; say so rather than show nothing
                request[name] = None
                truncated.append(Truncation(name, 0, 0, digest))
                continue
            request[name] = json.loads(part.body)
            if part.truncated:
                truncated.append(Truncation(name, part.bytes, len(part.body.encode()), digest))
        out.append(
            LoggedRequest(
                request.get("subject_properties"),
                request.get("resource_properties"),
                request.get("context"),
                request.get("at"),
                tuple(truncated),
            )
        )
    return out


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
    simulated: Literal["exclude", "include", "only"] = "exclude"


def query(
    session: Session, where: LogFilter, limit: int, after: tuple[dt.datetime, str] | None
) -> tuple[list[DecisionLogRow], tuple[dt.datetime, str] | None]:
    """Newest first, strictly older than the keyset cursor `after` (decided_at, id) when given; returns the rows and
    the cursor of the next page (None on the last page). Page tokens wrap cursors (`api.paging`)."""
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
    if where.simulated != "include":
        statement = statement.where(DecisionLogRow.simulated.is_(where.simulated == "only"))
    if where.since is not None:
        statement = statement.where(DecisionLogRow.decided_at >= where.since)
    if where.until is not None:
        statement = statement.where(DecisionLogRow.decided_at < where.until)
    if after is not None:
        at, ident = after
        statement = statement.where(
            or_(DecisionLogRow.decided_at < at, and_(DecisionLogRow.decided_at == at, DecisionLogRow.id < ident))
        )
    statement = statement.order_by(DecisionLogRow.decided_at.desc(), DecisionLogRow.id.desc()).limit(limit + 1)
    rows = list(session.execute(statement).scalars())
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], (_utc(last.decided_at), last.id)


def _utc(at: dt.datetime) -> dt.datetime:
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)
