"""Changes that wait: held for a second person's approval (four-eyes on rule packs and, per organisation, on org
charts; `services.four_eyes`) or until the time they take effect (scheduled). Deciding them, and `apply_due`
applying those whose time has come, both go through the writer, as the author's change."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

import msgspec
from sqlalchemy.orm import Session, sessionmaker

from dutyline.errors import (
    Conflict,
    Forbidden,
    Invalid,
    Issue,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
)
from dutyline.services.editing.edits import Edit, Method, plan
from dutyline.services.editing.validation import precondition
from dutyline.services.editing.writer import NeedsSecondPerson, Writer, read_current
from dutyline.services.four_eyes import FourEyes
from dutyline.services.shapes import Shape
from dutyline.store import audit, changes
from dutyline.store.audit import AuditEvent
from dutyline.store.tables import AdminChangeRow

log = logging.getLogger("dutyline.editing")

UNREADABLE = "its stored operation cannot be read (the row was changed outside Dutyline); nothing was applied"


class Change(Shape):
    """A change waiting for four-eyes approval or for its effective time, or one decided."""

    id: str
    organisation: str
    target: str
    method: Method | Literal["unreadable"]  # unreadable: the stored row was damaged outside Dutyline (never run)
    value: Any
    reason: Literal["four_eyes", "scheduled"]
    status: Literal["pending", "scheduled", "applied", "rejected", "failed"]
    author: str
    comment: str
    created_at: str
    effective_at: str | None
    decided_by: str | None
    decided_at: str | None
    version: int | None
    message: str  # why it failed (the first problem in words), or the decider's note
    issues: list[Issue]  # every problem a failed change had (file, line, path, message, severity, code)


@dataclass(frozen=True, slots=True)
class Held:
    """A change that was not applied but kept: until a second person approves it (four-eyes) or until its time
    (scheduled)."""

    change: Change


class _Decided(Conflict):
    """Someone else approved, rejected or applied the change first."""


def _stored(row: AdminChangeRow) -> tuple[Method | Literal["unreadable"], Any, list[Issue]]:
    """The stored edit's method, value and issues. A row damaged outside Dutyline still shows (as `unreadable`):
    one bad row must not make the change, or every list it is in, unreadable."""
    try:
        operation = json.loads(row.operation)
        method, value = operation["method"], operation.get("value")
        issues = msgspec.convert(json.loads(row.issues), list[Issue]) if row.issues else []
    except (ValueError, TypeError, KeyError, msgspec.ValidationError):
        log.warning("change %s: its stored operation cannot be read", row.id)
        return "unreadable", None, []
    return (method if method in get_args(Method) else "unreadable"), value, issues


def change_view(row: AdminChangeRow) -> Change:
    method, value, issues = _stored(row)
    return Change(
        id=row.id,
        organisation=row.organisation,
        target=row.target,
        method=method,
        value=value,
        reason=row.reason,  # type: ignore[arg-type]  # (the column holds only these)
        status=row.status,  # type: ignore[arg-type]
        author=row.author,
        comment=row.comment,
        created_at=row.created_at.isoformat(),
        effective_at=row.effective_at.isoformat() if row.effective_at else None,
        decided_by=row.decided_by,
        decided_at=row.decided_at.isoformat() if row.decided_at else None,
        version=row.version,
        message=row.message,
        issues=issues,
    )


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _approved_note(comment: str, approver: str, note: str) -> str:
    return f"{comment} (approved by {approver}{': ' + note if note else ''})".strip()


class Pending:
    def __init__(
        self, sessions: sessionmaker[Session], writer: Writer, four_eyes: FourEyes, applied: Callable[[], None]
    ) -> None:
        self._sessions = sessions
        self._writer = writer
        self._four_eyes = four_eyes
        self._applied = applied

    def hold(
        self,
        org_id: str,
        edit: Edit,
        if_match: str | None,
        author: str,
        comment: str,
        effective_at: dt.datetime | None,
    ) -> Held:
        """Check the edit now (precondition and validation, nothing stored), then keep it: for a second person's
        approval when four-eyes applies (even if it is also scheduled: it cannot become due unapproved), else
        until its time. When it is applied, the object must still have the ETag it has now."""
        with self._sessions() as session:
            now = read_current(session, org_id, edit)
            precondition(edit, now, if_match)
            self._writer.check(now, plan(now, edit))
            second = self._four_eyes.required(session, org_id, edit.target)
        row = AdminChangeRow(
            id=f"chg_{uuid.uuid4().hex[:24]}",
            organisation=org_id,
            target=edit.target,
            operation=edit.as_json(),
            base_etag=now.etag,
            reason="four_eyes" if second else "scheduled",
            status="pending" if second else "scheduled",
            author=author,
            comment=comment,
            created_at=utcnow(),
            effective_at=effective_at,
            decided_by=None,
            decided_at=None,
            version=None,
            message="",
            revision=1,
        )
        with self._sessions.begin() as session:
            changes.add(session, row)
            audit.append(
                session,
                author,
                AuditEvent.of("change", row.status),
                org_id,
                f"{org_id}/{edit.target}",
                {
                    "change": row.id,
                    "comment": comment,
                    "effective_at": effective_at.isoformat() if effective_at else None,
                },
            )
        return Held(change_view(row))

    def change(self, change_id: str) -> Change:
        with self._sessions() as session:
            row = changes.get(session, change_id)
        if row is None:
            raise NotFound(f"change {change_id!r} not found")
        return change_view(row)

    def changes(
        self, status: str | None, organisations: frozenset[str] | None, organisation: str | None, limit: int
    ) -> list[Change]:
        with self._sessions() as session:
            return [change_view(r) for r in changes.query(session, status, organisations, organisation, limit)]

    def decide(self, change_id: str, approver: str, approve: bool, comment: str = "") -> Change:
        """Approve or reject a pending change. Approved, it is applied now as its author's change, or, if it is
        scheduled for later, waits for its time (approved). The approver's right to do so (another person who
        may make such changes) is the caller's to check first; that it is not the author is checked here too."""
        with self._sessions() as session:
            row = changes.get(session, change_id)
        if row is None:
            raise NotFound(f"change {change_id!r} not found")
        if row.status != "pending":
            raise Conflict(f"change {change_id} is {row.status}, not pending")
        if approve and approver == row.author:
            raise Forbidden(f"{approver} may not approve a change they made")
        now = utcnow()
        where = f"{row.organisation}/{row.target}"
        if not approve:
            with self._sessions.begin() as session:
                decided = {"decided_by": approver, "decided_at": now, "message": comment}
                if not changes.change(session, row.id, row.revision, status="rejected", **decided):
                    raise _Decided(f"change {change_id} was decided meanwhile")
                detail = {"change": row.id, "comment": comment}
                audit.append(session, approver, AuditEvent.CHANGE_REJECTED, row.organisation, where, detail)
            return self.change(change_id)
        if row.effective_at is not None and row.effective_at > now:
            with self._sessions.begin() as session:
                approved = {"decided_by": approver, "decided_at": now, "message": comment}
                if not changes.change(session, row.id, row.revision, status="scheduled", **approved):
                    raise _Decided(f"change {change_id} was decided meanwhile")
                detail = {"change": row.id, "comment": comment, "effective_at": row.effective_at.isoformat()}
                audit.append(session, approver, AuditEvent.CHANGE_APPROVED, row.organisation, where, detail)
            return self.change(change_id)
        note = _approved_note(row.comment, approver, comment)
        self._run(row, approver, note, {"decided_by": approver, "decided_at": now}, approver)
        return self.change(change_id)

    def apply_due(self) -> int:
        """Apply every scheduled change whose time has come (the background job); returns how many were tried.
        One that four-eyes applies to and nobody approved goes back to waiting for a second person."""
        with self._sessions() as session:
            due = changes.due(session, utcnow())
        for row in due:
            try:
                if row.decided_by is not None:  # approved before its time
                    note = _approved_note(row.comment, row.decided_by, row.message)
                    self._run(row, "scheduler", note, {}, row.decided_by)
                else:
                    self._run(row, "scheduler", row.comment, {"decided_at": utcnow()}, None)
            except Exception as exc:  # one change that cannot be run must not hold back the others due after it
                log.exception("scheduled change %s could not be run; marked failed", row.id)
                self._mark_failed(row, f"internal error: {type(exc).__name__}; see the server's log")
        return len(due)

    def _mark_failed(self, row: AdminChangeRow, message: str) -> None:
        """Take a change that cannot be run out of the schedule, saying why (else it is retried forever)."""
        with self._sessions.begin() as session:
            if changes.change(session, row.id, row.revision, status="failed", message=message, decided_at=utcnow()):
                detail = {"change": row.id, "error": message, "issues": []}
                where = f"{row.organisation}/{row.target}"
                audit.append(session, "scheduler", AuditEvent.CHANGE_FAILED, row.organisation, where, detail)

    def _run(
        self, row: AdminChangeRow, actor: str, comment: str, values: dict[str, Any], approved_by: str | None
    ) -> None:
        """Apply a waiting change as its author's, provided the object is still as it was when the change was
        made (its ETag then); otherwise mark it failed, with the reason."""
        try:
            edit = Edit.from_json(row.operation)
        except (ValueError, TypeError, KeyError):
            log.warning("change %s: its stored operation cannot be read; marked failed", row.id)
            self._mark_failed(row, UNREADABLE)
            return
        where = f"{row.organisation}/{row.target}"
        try:
            with self._sessions.begin() as session:
                if not changes.change(session, row.id, row.revision, status="applied", **values):
                    raise _Decided(f"change {row.id} was decided meanwhile")
                written = self._writer.apply_in(
                    session, row.organisation, edit, row.base_etag, row.author, comment, approved_by
                )
                changes.change(session, row.id, row.revision + 1, version=written.version)
                detail = {"change": row.id, "version": written.version}
                audit.append(session, actor, AuditEvent.CHANGE_APPLIED, row.organisation, where, detail)
        except _Decided:
            raise
        except NeedsSecondPerson:  # four-eyes applies now (it was turned on after the change was scheduled)
            message = "four-eyes applies to this change: it waits for a second person's approval"
            with self._sessions.begin() as session:
                if changes.change(session, row.id, row.revision, status="pending", reason="four_eyes", message=message):
                    detail = {"change": row.id, "comment": message}
                    audit.append(session, actor, AuditEvent.CHANGE_PENDING, row.organisation, where, detail)
            log.info("scheduled change %s is due but needs a second person's approval first", row.id)
            return
        except (Invalid, PreconditionFailed, PreconditionRequired, NotFound, Conflict, Forbidden) as exc:
            # Every problem is kept, with the first in words: the change's view and its audit entry say what
            # failed (the separation-of-duties issue naming both posts), not only how many problems there were.
            issues = msgspec.to_builtins(getattr(exc, "issues", []))  # as kept with the change and in its audit entry
            with self._sessions.begin() as session:
                changes.change(
                    session,
                    row.id,
                    row.revision,
                    status="failed",
                    message=str(exc),
                    issues=json.dumps(issues, ensure_ascii=False),
                    **values,
                )
                detail = {"change": row.id, "error": str(exc), "issues": issues}
                audit.append(session, actor, AuditEvent.CHANGE_FAILED, row.organisation, where, detail)
            if actor == "scheduler":
                log.warning("scheduled change %s failed: %s", row.id, exc)
                return
            failed = Conflict(f"change {row.id} could not be applied: {exc}")
            failed.issues = getattr(exc, "issues", [])  # type: ignore[attr-defined]  # (answered with the 409)
            raise failed from None
        self._applied()
