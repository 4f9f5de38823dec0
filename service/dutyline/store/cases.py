"""Cases in the database. Every change is a conditional update on `revision` (see CaseRow)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dutyline.store.db import rows_changed
from dutyline.store.tables import CaseRow

OPEN = ("open", "escalated")


def get(session: Session, case_id: str) -> CaseRow | None:
    return session.get(CaseRow, case_id)


def query(
    session: Session, organisation: str | None, status: str | None, post: str | None, limit: int
) -> list[CaseRow]:
    """Newest first."""
    statement = select(CaseRow)
    if organisation is not None:
        statement = statement.where(CaseRow.organisation == organisation)
    if status is not None:
        statement = statement.where(CaseRow.status == status)
    if post is not None:
        statement = statement.where(CaseRow.post == post)
    statement = statement.order_by(CaseRow.created_at.desc(), CaseRow.id.desc()).limit(limit)
    return list(session.execute(statement).scalars())


def overdue(session: Session, now: dt.datetime, limit: int) -> list[CaseRow]:
    """Unresolved cases whose next escalation is due, locked for this transaction; rows another replica
    holds are skipped (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite ignores it and serialises writers)."""
    return list(
        session.execute(
            select(CaseRow)
            .where(CaseRow.status.in_(OPEN), CaseRow.due_at <= now)
            .order_by(CaseRow.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )


def change(session: Session, case_id: str, revision: int, **values: Any) -> bool:
    """Apply `values` if the case is still at `revision` (and move it to the next); False if it is not."""
    result = session.execute(
        update(CaseRow)
        .where(CaseRow.id == case_id, CaseRow.revision == revision)
        .values(revision=revision + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return rows_changed(result) == 1


def status_counts(session: Session, organisation: str) -> dict[str, int]:
    """How many of the organisation's rows are in each status (a status with none is left out)."""
    statement = (
        select(CaseRow.status, func.count()).where(CaseRow.organisation == organisation).group_by(CaseRow.status)
    )
    return {str(status): int(count) for status, count in session.execute(statement).all()}
