"""What approvals and cases share: a history of events, and escalation steps written on the record's revision.

Both are records that wait at a post (`post`) and change only by a conditional update on their `revision`
(`store.approvals.change`, `store.cases.change`), each change written with its event in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import msgspec
from sqlalchemy.orm import Session

from dutyline.store import events
from dutyline.store.tables import WorkflowEventRow


class WorkflowEvent(msgspec.Struct, forbid_unknown_fields=True):
    """One change of a case or an approval: what happened, when, who did it, and where it went."""

    seq: int
    kind: str
    at: str
    from_post: str | None
    to_post: str | None
    actor: str
    comment: str


def history(session: Session, entity: str, entity_id: str) -> list[WorkflowEvent]:
    """A record's events in the order they happened."""
    return [_event(row) for row in events.of(session, entity, entity_id)]


def _event(row: WorkflowEventRow) -> WorkflowEvent:
    return WorkflowEvent(row.seq, row.kind, row.at.isoformat(), row.from_post, row.to_post, row.actor, row.comment)


class Waiting(Protocol):
    """A record waiting at a post: an approval or a case row."""

    @property
    def id(self) -> str: ...
    @property
    def revision(self) -> int: ...
    @property
    def post(self) -> str: ...


# `store.approvals.change`, `store.cases.change`: (session, id, revision, **values) -> whether the revision was current
Change = Callable[..., bool]


@dataclass(frozen=True, slots=True)
class Steps:
    """The escalation steps of one kind of record: its name in the history (`entity`) and its conditional update."""

    entity: str
    change: Change

    def take(
        self,
        session: Session,
        row: Waiting,
        kind: Literal["escalated", "overdue"],
        to_post: str,
        now: dt.datetime,
        actor: str,
        comment: str,
        **values: Any,
    ) -> bool:
        """One step of an overdue record: `values` written on its revision, with the event that says it went from its
        post to `to_post` (`overdue`: it stays where it is). False if another writer changed it first: then nothing
        is written, and the scheduler leaves it to that writer."""
        if not self.change(session, row.id, row.revision, **values):
            return False
        events.add(
            session,
            self.entity,
            row.id,
            row.revision + 1,
            kind,
            now,
            actor,
            from_post=row.post,
            to_post=to_post,
            comment=comment,
        )
        return True
