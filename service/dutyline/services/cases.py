"""Cases: a complaint, cash not remitted, a check due … assigned to its type's owner post and escalated up
the reporting line, one step at a time, while nobody resolves it.

A step's `after` counts from the moment the case reached its current post (opening, or the previous
escalation); `to: superior` is the nearest post above the current one that someone holds now (vacant posts
are skipped). After the last step the case stays where it is, escalated, with no more timer. Every change
is a conditional update on the case's revision, written with its event and its notification in one
transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any, Literal

import msgspec
from sqlalchemy.orm import Session, sessionmaker

from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.queries import holders_of, reporting_line
from dutyline.errors import Conflict, Forbidden, Invalid, Issue, NotFound
from dutyline.rulemodel import document as rm
from dutyline.services.notifications import notify, post_name, utcnow
from dutyline.services.policies import PolicyService
from dutyline.services.workflow import Steps, WorkflowEvent, history
from dutyline.store import cases as store
from dutyline.store import events
from dutyline.store.tables import CaseRow

STATUSES = ("open", "escalated", "resolved")
ENTITY = "case"
STEPS = Steps(ENTITY, store.change)
_UNIT = {"m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_SUBJECT = 256  # the column's length (PostgreSQL refuses a longer value with a database error)


class Case(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    organisation: str
    type: str
    title: str
    subject: str | None
    data: dict[str, Any]
    post: str
    step: int
    status: Literal["open", "escalated", "resolved"]
    created_at: str
    due_at: str | None
    resolved_at: str | None
    resolved_by: str | None
    resolution: str


class CaseRecord(Case):
    """A case with its history."""

    events: list[WorkflowEvent]


def duration(text: str) -> dt.timedelta:
    """A rule pack duration (30m, 4h, 2d, 0.5m) as a timedelta."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([mhd])", text)
    if match is None:
        raise ValueError(f"not a duration: {text!r}")
    return dt.timedelta(seconds=float(match.group(1)) * _UNIT[match.group(2)])


def staffed(org: CompiledOrg, post: str, at: float) -> str | None:
    """`post` if someone holds it at `at`, else the nearest post above it that someone holds (None: nobody)."""
    if holders_of(org, post, at):
        return post
    return next((s.post for s in reporting_line(org, post, at) if s.holders), None)


class CaseService:
    def __init__(self, sessions: sessionmaker[Session], policies: PolicyService) -> None:
        self._sessions = sessions
        self._policies = policies

    def open(
        self, organisation: str, type_id: str, title: str, subject: str | None, data: dict[str, Any]
    ) -> CaseRecord:
        """Open a case of one of the organisation's case types, assigned to the type's owner post."""
        if subject is not None and len(subject) > MAX_SUBJECT:
            raise Invalid(
                f"subject: at most {MAX_SUBJECT} characters, not {len(subject)}",
                [Issue("<request>", 0, "subject", f"at most {MAX_SUBJECT} characters")],
            )
        org = self._policies.current.get(organisation)
        if org is None:
            raise NotFound(f"organisation {organisation!r} not found")
        case_type = self.case_types(organisation).get(type_id)
        if case_type is None:
            known = ", ".join(sorted(self.case_types(organisation))) or "none"
            raise Invalid(
                f"type: {type_id!r} is not a case type of {organisation!r} (known: {known})",
                [Issue("<request>", 0, "type", "unknown case type")],
            )
        now = utcnow()
        row = CaseRow(
            id=f"case_{uuid.uuid4().hex[:24]}",
            organisation=org.id,
            type=case_type.id,
            title=title,
            subject=subject,
            data=json.dumps(data, ensure_ascii=False),
            post=case_type.owner,
            step=0,
            status="open",
            created_at=now,
            due_at=now + duration(case_type.steps[0].after),
            resolved_at=None,
            resolved_by=None,
            resolution="",
            revision=1,
        )
        with self._sessions.begin() as session:
            session.add(row)
            events.add(session, ENTITY, row.id, 1, "opened", now, "api", to_post=row.post, comment=title)
            zh, en = post_name(org, row.post)
            message = (
                f"新案件「{title}」({case_type.name.zh})已分派给{zh}({row.id})",
                f"New case '{title}' ({case_type.name.en}) assigned to {en} ({row.id})",
            )
            notify(session, org.id, org, row.post, "case_opened", row.id, message, now)
        return self.get(row.id)

    def case_types(self, organisation: str) -> dict[str, rm.CaseType]:
        rules = self._policies.current.rules.get(organisation)
        return rules.case_types if rules is not None else {}

    def get(self, case_id: str) -> CaseRecord:
        with self._sessions() as session:
            row = store.get(session, case_id)
            if row is None:
                raise NotFound(f"case {case_id!r} not found")
            changes = history(session, ENTITY, case_id)
        return CaseRecord(**_fields(row), events=changes)

    def organisation_of(self, case_id: str) -> str:
        """The organisation a case belongs to (whose people may resolve it)."""
        with self._sessions() as session:
            row = store.get(session, case_id)
        if row is None:
            raise NotFound(f"case {case_id!r} not found")
        return row.organisation

    def list(self, organisation: str | None, status: str | None, post: str | None, limit: int = 100) -> list[Case]:
        if status is not None and status not in STATUSES:
            raise Invalid(
                f"status: {status!r} is not one of {', '.join(STATUSES)}",
                [Issue("<request>", 0, "status", "unknown status")],
            )
        with self._sessions() as session:
            return [view(r) for r in store.query(session, organisation, status, post, limit)]

    def resolve(self, case_id: str, person: str, comment: str) -> CaseRecord:
        """Resolve on behalf of `person`, who must hold (now) the case's post or a post it was assigned to before."""
        with self._sessions() as session:
            row = store.get(session, case_id)
            if row is None:
                raise NotFound(f"case {case_id!r} not found")
            assigned_before = [e.to_post for e in events.of(session, ENTITY, case_id) if e.to_post]
        if row.status == "resolved":
            raise Conflict(f"case {case_id} is already resolved (by {row.resolved_by})")
        org = self._policies.current.get(row.organisation)
        if org is None:
            raise Conflict(f"organisation {row.organisation!r} no longer exists")
        who = org.identities.get(person)
        if who is None:
            raise Forbidden(f"{person!r} is not a person of {org.id!r}")
        now = utcnow()
        assigned = {row.post, *assigned_before}
        held = {a.post for a in org.assignments.get(who, ()) if a.active(now.timestamp())}
        if not held & assigned:
            raise Forbidden(
                f"{who} holds none of the posts this case has been assigned to ({', '.join(sorted(assigned))}) and may not resolve it"
            )
        with self._sessions.begin() as session:
            if not store.change(
                session,
                row.id,
                row.revision,
                status="resolved",
                resolved_at=now,
                resolved_by=who,
                resolution=comment,
                due_at=None,
            ):
                raise Conflict(f"case {case_id} changed meanwhile (escalated or resolved); read it again")
            events.add(
                session, ENTITY, row.id, row.revision + 1, "resolved", now, who, from_post=row.post, comment=comment
            )
        return self.get(case_id)

    def escalate(self, session: Session, row: CaseRow, now: dt.datetime, actor: str) -> str | None:
        """Take the case's next escalation step (inside the scheduler's transaction). Returns the post it
        went to ("" if it stayed at the top), or None if another writer changed the case first."""
        org = self._policies.current.get(row.organisation)
        steps = case_type.steps if (case_type := self.case_types(row.organisation).get(row.type)) else []
        if org is None or row.step >= len(steps):
            # The organisation or case type is gone (or changed under the case): stop its timer, say so.
            gone = "no escalation step left for this case (organisation or case type changed)"
            if not STEPS.take(session, row, "overdue", row.post, now, actor, gone, due_at=None):
                return None
            return ""
        taken = steps[row.step]
        at = now.timestamp()
        if taken.to == "superior":
            target = next((s.post for s in reporting_line(org, row.post, at) if s.holders), None)
        else:
            target = staffed(org, taken.to, at)
        following = row.step + 1
        due = now + duration(steps[following].after) if following < len(steps) else None
        if target is None or target == row.post:
            message = _message(org, row, row.post, self)
            stays = f"step {following}: no post above {row.post} with a holder; it stays here"
            if not STEPS.take(
                session, row, "overdue", row.post, now, actor, stays, step=following, status="escalated", due_at=due
            ):
                return None
            notify(session, row.organisation, org, row.post, "case_overdue", row.id, message, now)
            return ""
        message = _message(org, row, target, self)
        unresolved = f"step {following}: unresolved after {taken.after}"
        if not STEPS.take(
            session,
            row,
            "escalated",
            target,
            now,
            actor,
            unresolved,
            post=target,
            step=following,
            status="escalated",
            due_at=due,
        ):
            return None
        notify(session, row.organisation, org, target, "case_escalated", row.id, message, now)
        return target


def _message(org: CompiledOrg, row: CaseRow, target: str, service: CaseService) -> tuple[str, str]:
    case_type = service.case_types(row.organisation).get(row.type)
    type_zh, type_en = (case_type.name.zh, case_type.name.en) if case_type else (row.type, row.type)
    (from_zh, from_en), (to_zh, to_en) = post_name(org, row.post), post_name(org, target)
    if target == row.post:
        return (
            f"案件「{row.title}」({type_zh})逾期未处理,已无更高岗位,仍由{to_zh}处理({row.id})",
            f"Case '{row.title}' ({type_en}) is overdue with no post above; it stays with {to_en} ({row.id})",
        )
    return (
        f"案件「{row.title}」({type_zh})逾期未处理,已由{from_zh}升级至{to_zh}({row.id})",
        f"Case '{row.title}' ({type_en}) was not resolved in time; escalated from {from_en} to {to_en} ({row.id})",
    )


def view(row: CaseRow) -> Case:
    return Case(**_fields(row))


def _fields(row: CaseRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "organisation": row.organisation,
        "type": row.type,
        "title": row.title,
        "subject": row.subject,
        "data": json.loads(row.data),
        "post": row.post,
        "step": row.step,
        "status": row.status,
        "created_at": row.created_at.isoformat(),
        "due_at": row.due_at.isoformat() if row.due_at else None,
        "resolved_at": row.resolved_at.isoformat() if row.resolved_at else None,
        "resolved_by": row.resolved_by,
        "resolution": row.resolution,
    }
