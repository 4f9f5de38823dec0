"""Access requests (AuthZEN tasks) and their callbacks in the database. A callback is claimed like an outbox row
(`store.outbox.claim`): leased by a conditional update on its attempt count, then sent with no transaction open."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dutyline.store.db import rows_changed
from dutyline.store.tables import AccessRequestRow, ApprovalRow, CallbackAttemptRow


def get(session: Session, request_id: str) -> AccessRequestRow | None:
    return session.get(AccessRequestRow, request_id)


def by_token(session: Session, token_id: str) -> AccessRequestRow | None:
    """The access request a binding token opened, if it opened one."""
    return session.execute(select(AccessRequestRow).where(AccessRequestRow.token_id == token_id)).scalar_one_or_none()


def by_idempotency_key(session: Session, caller: str, key: str) -> AccessRequestRow | None:
    statement = select(AccessRequestRow).where(
        AccessRequestRow.caller == caller, AccessRequestRow.idempotency_key == key
    )
    return session.execute(statement).scalar_one_or_none()


def cancel(session: Session, request_id: str, at: dt.datetime) -> bool:
    """Mark a task cancelled unless it already is (False: it was)."""
    result = session.execute(
        update(AccessRequestRow)
        .where(AccessRequestRow.id == request_id, AccessRequestRow.cancelled_at.is_(None))
        .values(cancelled_at=at)
        .execution_options(synchronize_session=False)
    )
    return rows_changed(result) == 1


def claim_callbacks(
    session: Session, now: dt.datetime, lease: dt.timedelta, limit: int
) -> list[tuple[AccessRequestRow, ApprovalRow]]:
    """Callbacks due whose task has completed (its approval decided, or the task cancelled), each leased to this
    caller so that no other replica sends it meanwhile. Commit before sending."""
    rows = session.execute(
        select(AccessRequestRow, ApprovalRow)
        .join(ApprovalRow, ApprovalRow.id == AccessRequestRow.approval_id)
        .where(
            AccessRequestRow.callback_status == "waiting",
            AccessRequestRow.callback_next_at <= now,
            (ApprovalRow.status != "pending") | AccessRequestRow.cancelled_at.is_not(None),
        )
        .order_by(AccessRequestRow.callback_next_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=AccessRequestRow)
    ).all()
    claimed = []
    for task, approval in rows:
        result = session.execute(
            update(AccessRequestRow)
            .where(
                AccessRequestRow.id == task.id,
                AccessRequestRow.callback_attempts == task.callback_attempts,
                AccessRequestRow.callback_status == "waiting",
            )
            .values(callback_attempts=task.callback_attempts + 1, callback_next_at=now + lease)
            .execution_options(synchronize_session=False)
        )
        if rows_changed(result) == 1:
            claimed.append((task, approval))
    return claimed


def attempted(
    session: Session,
    request_id: str,
    attempt: int,
    at: dt.datetime,
    event: str,
    status: int,
    error: str,
    outcome: str,
    next_at: dt.datetime | None,
) -> None:
    """Record one attempt and what follows it: `outcome` delivered, failed or waiting (again at `next_at`)."""
    session.add(
        CallbackAttemptRow(
            access_request_id=request_id, attempt=attempt, at=at, event=event, status=status, error=error[:2000]
        )
    )
    session.execute(
        update(AccessRequestRow)
        .where(AccessRequestRow.id == request_id)
        .values(callback_status=outcome, callback_next_at=next_at)
        .execution_options(synchronize_session=False)
    )


def skip(session: Session, request_id: str) -> None:
    """The task completed with an event its callback did not ask for: nothing will be sent."""
    session.execute(
        update(AccessRequestRow)
        .where(AccessRequestRow.id == request_id)
        .values(callback_status="skipped", callback_next_at=None)
        .execution_options(synchronize_session=False)
    )


def attempts(session: Session, request_id: str) -> list[CallbackAttemptRow]:
    statement = select(CallbackAttemptRow).where(CallbackAttemptRow.access_request_id == request_id)
    return list(session.execute(statement.order_by(CallbackAttemptRow.attempt)).scalars())
