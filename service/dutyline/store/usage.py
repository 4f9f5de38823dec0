"""The usage ledger's rows: what callers' systems executed against cumulative limits, and their reversals."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from dutyline.store.tables import UsageRow


def insert(
    session: Session,
    organisation: str,
    rule: str,
    person: str,
    period: str,
    amount: Decimal,
    used_at: dt.datetime,
    recorded_at: dt.datetime,
    decision_id: str | None = None,
    reverses: int | None = None,
) -> UsageRow:
    """Add a row (flushed: its id is known). A second reversal of one row violates `ix_usage_reverses`."""
    row = UsageRow(
        organisation=organisation,
        rule=rule,
        person=person,
        period=period,
        amount=amount,
        used_at=used_at,
        recorded_at=recorded_at,
        decision_id=decision_id,
        reverses=reverses,
    )
    session.add(row)
    session.flush()
    return row


def get(session: Session, entry_id: int) -> UsageRow | None:
    return session.get(UsageRow, entry_id)


def reversal_of(session: Session, entry_id: int) -> UsageRow | None:
    """The row that reverses `entry_id`, if any."""
    return session.execute(select(UsageRow).where(UsageRow.reverses == entry_id)).scalars().first()


def recorded_since(session: Session, since: dt.datetime) -> list[UsageRow]:
    """Rows recorded at or after `since`, oldest first (by the recorded_at index)."""
    return list(
        session.execute(select(UsageRow).where(UsageRow.recorded_at >= since).order_by(UsageRow.recorded_at)).scalars()
    )
