"""The notification outbox: rows written with the change they report, read by GET and the webhook."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dutyline.store.db import rows_changed
from dutyline.store.tables import NotificationRow


def add(
    session: Session,
    organisation: str,
    post: str,
    people: list[str],
    kind: str,
    subject_id: str | None,
    message_zh: str,
    message_en: str,
    at: dt.datetime,
) -> None:
    session.add(
        NotificationRow(
            organisation=organisation,
            post=post,
            people=json.dumps(people),
            kind=kind,
            subject_id=subject_id,
            message_zh=message_zh,
            message_en=message_en,
            created_at=at,
            delivered_at=None,
            attempts=0,
            next_attempt_at=at,
        )
    )


def query(
    session: Session,
    organisation: str | None,
    post: str | None,
    since: dt.datetime | None,
    after_id: int | None,
    limit: int,
) -> list[NotificationRow]:
    """Oldest first, so that a reader can page on with `after_id`."""
    statement = select(NotificationRow)
    if organisation is not None:
        statement = statement.where(NotificationRow.organisation == organisation)
    if post is not None:
        statement = statement.where(NotificationRow.post == post)
    if since is not None:
        statement = statement.where(NotificationRow.created_at >= since)
    if after_id is not None:
        statement = statement.where(NotificationRow.id > after_id)
    return list(session.execute(statement.order_by(NotificationRow.id).limit(limit)).scalars())


def claim(session: Session, now: dt.datetime, lease: dt.timedelta, limit: int) -> list[NotificationRow]:
    """Undelivered rows due for an attempt, each leased to this caller (`next_attempt_at` moved past the
    lease) so that no other replica sends them meanwhile. Commit before sending."""
    rows = list(
        session.execute(
            select(NotificationRow)
            .where(NotificationRow.delivered_at.is_(None), NotificationRow.next_attempt_at <= now)
            .order_by(NotificationRow.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    claimed = []
    for row in rows:
        result = session.execute(
            update(NotificationRow)
            .where(
                NotificationRow.id == row.id,
                NotificationRow.attempts == row.attempts,
                NotificationRow.delivered_at.is_(None),
            )
            .values(attempts=row.attempts + 1, next_attempt_at=now + lease)
            .execution_options(synchronize_session=False)
        )
        if rows_changed(result) == 1:
            claimed.append(row)
    return claimed


def delivered(session: Session, notification_id: int, at: dt.datetime) -> None:
    session.execute(
        update(NotificationRow)
        .where(NotificationRow.id == notification_id)
        .values(delivered_at=at, next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )


def retry_at(session: Session, notification_id: int, at: dt.datetime | None) -> None:
    """Schedule the next attempt (None: give up)."""
    session.execute(
        update(NotificationRow)
        .where(NotificationRow.id == notification_id, NotificationRow.delivered_at.is_(None))
        .values(next_attempt_at=at)
        .execution_options(synchronize_session=False)
    )
