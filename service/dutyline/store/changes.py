"""Changes waiting to be applied: for a second person's approval (four-eyes) or for their time (scheduled).
Every transition is a conditional update on `revision`, so two approvers or two replicas never both apply one."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dutyline.store.db import rows_changed
from dutyline.store.tables import AdminChangeRow

OPEN = ("pending", "scheduled")


def add(session: Session, row: AdminChangeRow) -> AdminChangeRow:
    session.add(row)
    session.flush()
    return row


def get(session: Session, change_id: str) -> AdminChangeRow | None:
    return session.get(AdminChangeRow, change_id)


def query(
    session: Session, status: str | None, organisations: frozenset[str] | None, organisation: str | None, limit: int
) -> list[AdminChangeRow]:
    """Newest first; `organisations` None means any."""
    statement = select(AdminChangeRow)
    if status is not None:
        statement = statement.where(AdminChangeRow.status == status)
    if organisation is not None:
        statement = statement.where(AdminChangeRow.organisation == organisation)
    if organisations is not None:
        statement = statement.where(AdminChangeRow.organisation.in_(sorted(organisations)))
    statement = statement.order_by(AdminChangeRow.created_at.desc(), AdminChangeRow.id.desc()).limit(limit)
    return list(session.execute(statement).scalars())


def due(session: Session, now: dt.datetime, limit: int = 50) -> list[AdminChangeRow]:
    """Scheduled changes whose time has come, oldest first."""
    return list(
        session.execute(
            select(AdminChangeRow)
            .where(AdminChangeRow.status == "scheduled", AdminChangeRow.effective_at <= now)
            .order_by(AdminChangeRow.effective_at, AdminChangeRow.id)
            .limit(limit)
        ).scalars()
    )


def change(session: Session, change_id: str, revision: int, **values: Any) -> bool:
    """Apply `values` if the change is still at `revision` (and move it to the next); False if it is not."""
    result = session.execute(
        update(AdminChangeRow)
        .where(AdminChangeRow.id == change_id, AdminChangeRow.revision == revision)
        .values(revision=revision + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return rows_changed(result) == 1


def status_counts(session: Session, organisation: str) -> dict[str, int]:
    """How many of the organisation's rows are in each status (a status with none is left out)."""
    statement = (
        select(AdminChangeRow.status, func.count())
        .where(AdminChangeRow.organisation == organisation)
        .group_by(AdminChangeRow.status)
    )
    return {str(status): int(count) for status, count in session.execute(statement).all()}
