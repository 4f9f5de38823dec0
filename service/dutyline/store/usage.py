"""The usage ledger's rows: what callers' systems executed against cumulative limits."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from dutyline.store.tables import UsageRow


def insert(
    session: Session,
    organisation: str,
    rule: str,
    person: str,
    period: str,
    amount: float,
    used_at: dt.datetime,
    recorded_at: dt.datetime,
    decision_id: str | None = None,
) -> UsageRow:
    row = UsageRow(
        organisation=organisation, rule=rule, person=person, period=period, amount=amount,
        used_at=used_at, recorded_at=recorded_at, decision_id=decision_id,
    )
    session.add(row)
    session.flush()
    return row


def recorded_since(session: Session, since: dt.datetime) -> list[UsageRow]:
    """Rows recorded at or after `since`, oldest first (by the recorded_at index)."""
    return list(session.execute(select(UsageRow).where(UsageRow.recorded_at >= since).order_by(UsageRow.recorded_at)).scalars())
