"""Approvals in the database. Every change is a conditional update on `revision` (see ApprovalRow)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from dutyline.store.db import rows_changed
from dutyline.store.tables import ApprovalRow

ENTITY = "approval"  # approvals' events (store.events) are kept under this entity name


def get(session: Session, approval_id: str) -> ApprovalRow | None:
    """One approval by id: a primary-key read (the decision path does this when an approval is presented)."""
    return session.get(ApprovalRow, approval_id)


def query(
    session: Session,
    organisation: str | None = None,
    status: str | None = None,
    requester: str | None = None,
    posts: Mapping[str, Iterable[str]] | None = None,
    exclude_requester: str | None = None,
    limit: int = 100,
) -> list[ApprovalRow]:
    """Newest first. `posts` (organisation → post ids) keeps approvals waiting at one of those posts."""
    statement = select(ApprovalRow)
    if organisation is not None:
        statement = statement.where(ApprovalRow.organisation == organisation)
    if status is not None:
        statement = statement.where(ApprovalRow.status == status)
    if requester is not None:
        statement = statement.where(ApprovalRow.requester == requester)
    if exclude_requester is not None:
        statement = statement.where(ApprovalRow.requester != exclude_requester)
    if posts is not None:
        held = [
            and_(ApprovalRow.organisation == org, ApprovalRow.post.in_(list(ids))) for org, ids in posts.items() if ids
        ]
        if not held:
            return []
        statement = statement.where(or_(*held))
    statement = statement.order_by(ApprovalRow.created_at.desc(), ApprovalRow.id.desc()).limit(limit)
    return list(session.execute(statement).scalars())


def overdue(session: Session, now: dt.datetime, limit: int) -> list[ApprovalRow]:
    """Pending approvals past their SLA, locked for this transaction; rows another replica holds are skipped
    (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite ignores it and serialises writers instead)."""
    return list(
        session.execute(
            select(ApprovalRow)
            .where(ApprovalRow.status == "pending", ApprovalRow.due_at <= now)
            .order_by(ApprovalRow.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )


def change(session: Session, approval_id: str, revision: int, **values: Any) -> bool:
    """Apply `values` if the approval is still at `revision` (and move it to the next); False if it is not."""
    result = session.execute(
        update(ApprovalRow)
        .where(ApprovalRow.id == approval_id, ApprovalRow.revision == revision)
        .values(revision=revision + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return rows_changed(result) == 1


def use(session: Session, approval_id: str, now: dt.datetime) -> tuple[int, int] | None:
    """Take one use of an approved approval: a conditional update that applies only while it has uses left and
    has not expired, so that of two concurrent presentations of its last use exactly one gets it (PostgreSQL
    re-checks the condition on the row a concurrent writer committed; SQLite serialises writers). Returns the
    approval's new revision and the uses left, or None when no use was taken."""
    taken = session.execute(
        update(ApprovalRow)
        .where(
            ApprovalRow.id == approval_id,
            ApprovalRow.status == "approved",
            ApprovalRow.digest.is_not(None),
            ApprovalRow.uses_left > 0,
            ApprovalRow.expires_at > now,
        )
        .values(uses_left=ApprovalRow.uses_left - 1, revision=ApprovalRow.revision + 1)
        .returning(ApprovalRow.revision, ApprovalRow.uses_left)
        .execution_options(synchronize_session=False)
    ).first()
    return None if taken is None else (taken[0], taken[1])


def approved_since(session: Session, since: dt.datetime) -> list[ApprovalRow]:
    """Approvals approved at or after `since`, oldest first (the four-eyes history)."""
    return list(
        session.execute(
            select(ApprovalRow)
            .where(ApprovalRow.status == "approved", ApprovalRow.decided_at >= since)
            .order_by(ApprovalRow.decided_at)
        ).scalars()
    )


def status_counts(session: Session, organisation: str) -> dict[str, int]:
    """How many of the organisation's rows are in each status (a status with none is left out)."""
    statement = (
        select(ApprovalRow.status, func.count())
        .where(ApprovalRow.organisation == organisation)
        .group_by(ApprovalRow.status)
    )
    return {str(status): int(count) for status, count in session.execute(statement).all()}
