"""The history of cases and approvals: one row per change, unique per (entity, id, revision)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from dutyline.store.tables import WorkflowEventRow


def add(
    session: Session,
    entity: str,
    entity_id: str,
    seq: int,
    kind: str,
    at: dt.datetime,
    actor: str,
    from_post: str | None = None,
    to_post: str | None = None,
    comment: str = "",
) -> None:
    session.add(
        WorkflowEventRow(
            entity=entity,
            entity_id=entity_id,
            seq=seq,
            kind=kind,
            at=at,
            actor=actor[:200],
            from_post=from_post,
            to_post=to_post,
            comment=comment,
        )
    )


def of(session: Session, entity: str, entity_id: str) -> list[WorkflowEventRow]:
    """An entity's events in the order they happened."""
    return list(
        session.execute(
            select(WorkflowEventRow)
            .where(WorkflowEventRow.entity == entity, WorkflowEventRow.entity_id == entity_id)
            .order_by(WorkflowEventRow.seq)
        ).scalars()
    )
