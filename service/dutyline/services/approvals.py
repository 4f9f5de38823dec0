"""Approvals: a request that needs approval waits at one post of its approver chain until someone there
decides, and moves up the chain when it waits longer than the SLA.

Who may decide: a person who holds the approval's current post now (acting holders inside their window
included), who is not the requester, did not make the transaction (context.maker / context.requester),
and holds no post that a separation-of-duties rule forbids combining with the post the request was made
through. Every change is a conditional update on the approval's revision, written with its event and its
notification in one transaction.

An approval is bound to the request it was opened for (`engines.binding`: a digest, and the approved amounts),
expires `validity` after it is approved, and has a number of uses chosen when it is opened (one by default);
the decision path takes them (`services.ledger.Ledger.consume`).

`open_for` is the use case of `POST /v1/approvals`: decide the request now, and open an approval if it needs one.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import msgspec
from sqlalchemy.orm import Session, sessionmaker

from dutyline.engines.attributes import resolve_party
from dutyline.engines.binding import bind
from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.queries import holders_of, reporting_line
from dutyline.errors import Conflict, Forbidden, Invalid, Issue, NotFound
from dutyline.services.decisions import Answer, DecisionService, Question, to_check
from dutyline.services.ledger import Ledger
from dutyline.services.notifications import notify, post_name, utcnow
from dutyline.services.policies import PolicyService
from dutyline.services.workflow import Steps, WorkflowEvent, history
from dutyline.store import approvals as store
from dutyline.store import events
from dutyline.store.tables import ApprovalRow

STATUSES = ("pending", "approved", "rejected")
ENTITY = store.ENTITY
STEPS = Steps(ENTITY, store.change)
MAX_RESOURCE_ID = 256  # the column's length (PostgreSQL refuses a longer value with a database error)


class NotApprovable(Conflict):
    """The request, decided again, does not need approval (or nobody can give it): the answer says why."""

    def __init__(self, message: str, answer: Answer) -> None:
        super().__init__(message)
        self.answer = answer


Status = Literal["pending", "approved", "rejected"]


class ResourceRef(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    id: str | None


class ChainStep(msgspec.Struct, forbid_unknown_fields=True):
    """A post of the approver chain, and the people who held it when the approval was opened."""

    post: str
    people: list[str]


class Approval(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    organisation: str
    status: Status
    requester: str
    requester_posts: list[str]
    resource: ResourceRef
    action: str
    request: dict[str, Any]  # the request as it was asked (subject, resource, action, at, context)
    rules: list[str]
    chain: list[ChainStep]
    level: int
    post: str
    comment: str
    decision_id: str
    created_at: str
    due_at: str | None
    decided_at: str | None
    decided_by: str | None
    decision_comment: str
    uses: int  # how many decisions it may allow, chosen when it was opened
    uses_left: int
    expires_at: str | None  # DUTYLINE_APPROVAL_VALIDITY after it was approved; none before
    digest: str | None  # SHA-256 of the request it is bound to (engines.binding); none: opened before binding
    approved_amounts: dict[str, float | None]  # limited amount → the most a presented request may ask


class ApprovalRecord(Approval):
    """An approval with its history."""

    events: list[WorkflowEvent]


@dataclass(frozen=True, slots=True)
class Escalated:
    """What one escalation did: moved to another post, or stayed at the top."""

    approval_id: str
    to_post: str | None


class ApprovalService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        policies: PolicyService,
        ledger: Ledger,
        decisions: DecisionService,
        sla_seconds: float,
        validity_seconds: float = 24 * 3600.0,
        max_uses: int = 100,
    ) -> None:
        self._sessions = sessions
        self._policies = policies
        self._ledger = ledger
        self._decisions = decisions
        self._sla = dt.timedelta(seconds=sla_seconds)
        self._validity = dt.timedelta(seconds=validity_seconds)
        self.max_uses = max_uses

    # --- open ----------------------------------------------------------------------------------------

    def open_for(self, question: Question, comment: str, uses: int = 1, at: str | None = None) -> ApprovalRecord:
        """Decide `question` now and open an approval for it; `NotApprovable`, with the answer, when it is decided
        anything but `needs_approval` (or nobody can approve it). `at` is the moment as the requester wrote it
        (`question.at` read in the organisation's time zone): the approval keeps the request as it was asked."""
        self.check_uses(uses)  # before deciding: a request refused for its `uses` makes no decision
        return self.open(self._decisions.answer(question), _asked(question, at), comment, uses)

    def open(self, answer: Answer, request: dict[str, Any], comment: str, uses: int = 1) -> ApprovalRecord:
        """Open an approval for a request just decided `needs_approval`; its chain is the verdict's approvers. It
        is bound to the request (`engines.binding.bind`) and may be presented `uses` times once approved."""
        self.check_uses(uses)
        verdict = answer.verdict
        if answer.question.subject_type != "person":
            raise Invalid(
                "subject.type: an approval is requested by a person, not a post",
                [Issue("<request>", 0, "subject.type", "must be person")],
            )
        resource_id = answer.question.resource_id
        if resource_id is not None and len(resource_id) > MAX_RESOURCE_ID:
            raise Invalid(
                f"resource.id: at most {MAX_RESOURCE_ID} characters to open an approval, not {len(resource_id)}",
                [Issue("<request>", 0, "resource.id", f"at most {MAX_RESOURCE_ID} characters")],
            )
        if verdict.outcome != "needs_approval":
            raise NotApprovable(
                f"the request is decided {verdict.outcome!r} ({verdict.code}), not needs_approval: "
                "there is nothing to approve",
                answer,
            )
        if not verdict.approvers:
            raise NotApprovable("no post up the reporting line has anyone who can approve this request", answer)
        org = answer.organisation
        assert org is not None  # needs_approval is only ever decided within an organisation
        try:
            binding = bind(org, self._policies.current.rules.get(org.id), to_check(answer.question), answer.decision)
        except RecursionError:
            issue = Issue("<request>", 0, "context", "nested too deeply")
            raise Invalid("context: nested too deeply", [issue]) from None
        limits = {path: None if value is None else format(value, "f") for path, value in binding.limits.items()}
        now = utcnow()
        chain = [{"post": step.post, "people": list(step.people)} for step in verdict.approvers]
        row = ApprovalRow(
            id=f"apv_{uuid.uuid4().hex[:24]}",
            organisation=org.id,
            requester=answer.decision.subject,
            requester_posts=json.dumps(list(dict.fromkeys(b.post for b in answer.decision.allowed_by))),
            resource_type=answer.question.resource_type,
            resource_id=answer.question.resource_id,
            action=answer.question.action,
            request=json.dumps(request, ensure_ascii=False),
            rules=json.dumps([h.rule for h in verdict.hits if h.effect == "needs_approval"]),
            chain=json.dumps(chain, ensure_ascii=False),
            level=0,
            post=chain[0]["post"],
            status="pending",
            comment=comment,
            decision_id=answer.decision_id,
            created_at=now,
            due_at=now + self._sla,
            decided_at=None,
            decided_by=None,
            decision_comment="",
            revision=1,
            digest=binding.digest,
            bound=binding.canonical,
            limits=json.dumps(limits),
            uses=uses,
            uses_left=uses,
            expires_at=None,
        )
        with self._sessions.begin() as session:
            session.add(row)
            events.add(session, ENTITY, row.id, 1, "requested", now, row.requester, to_post=row.post, comment=comment)
            notify(session, org.id, org, row.post, "approval_requested", row.id, _requested(org, row), now)
        return self.get(row.id)

    def check_uses(self, uses: object) -> None:
        """Invalid naming `uses` unless it is a whole number from 1 to DUTYLINE_APPROVAL_MAX_USES."""
        if isinstance(uses, bool) or not isinstance(uses, int) or not 1 <= uses <= self.max_uses:
            raise Invalid(
                f"uses: must be a whole number from 1 to {self.max_uses} (DUTYLINE_APPROVAL_MAX_USES), not {uses!r}",
                [Issue("<request>", 0, "uses", f"an integer from 1 to {self.max_uses}")],
            )

    # --- read ----------------------------------------------------------------------------------------

    def get(self, approval_id: str) -> ApprovalRecord:
        with self._sessions() as session:
            row = store.get(session, approval_id)
            if row is None:
                raise NotFound(f"approval {approval_id!r} not found")
            changes = history(session, ENTITY, approval_id)
        return ApprovalRecord(**_fields(row), events=changes)

    def organisation_of(self, approval_id: str) -> str:
        """The organisation an approval belongs to (whose people may decide it)."""
        with self._sessions() as session:
            row = store.get(session, approval_id)
        if row is None:
            raise NotFound(f"approval {approval_id!r} not found")
        return row.organisation

    def list(
        self,
        organisation: str | None = None,
        approver: str | None = None,
        status: str | None = None,
        requester: str | None = None,
        limit: int = 100,
    ) -> list[Approval]:
        """Approvals, newest first. With `approver`: the inbox, approvals waiting at a post the person holds
        now (acting holders inside their window included), pending unless `status` says otherwise, their
        own requests left out."""
        if status is not None and status not in STATUSES:
            raise Invalid(
                f"status: {status!r} is not one of {', '.join(STATUSES)}",
                [Issue("<request>", 0, "status", "unknown status")],
            )
        posts: dict[str, set[str]] | None = None
        person: str | None = None
        if approver is not None:
            posts, person = self._posts_held(approver, organisation)
            status = status or "pending"
        who_requested = requester
        if requester is not None and organisation is not None:
            org = self._policies.current.get(organisation)
            who_requested = org.identities.get(requester, requester) if org is not None else requester
        with self._sessions() as session:
            rows = store.query(session, organisation, status, who_requested, posts, person, limit)
        return [view(r) for r in rows]

    def _posts_held(self, approver: str, organisation: str | None) -> tuple[dict[str, set[str]], str | None]:
        now = utcnow().timestamp()
        orgs = self._policies.current.orgs
        candidates = [orgs[organisation]] if organisation is not None and organisation in orgs else []
        if organisation is None:
            candidates = [o for o in orgs.values() if approver in o.identities]
        elif not candidates:
            raise NotFound(f"organisation {organisation!r} not found")
        elif approver not in candidates[0].identities:
            raise NotFound(f"person {approver!r} not found in {organisation!r}")
        held: dict[str, set[str]] = {}
        person = None
        for org in candidates:
            person = org.identities[approver]
            held[org.id] = {a.post for a in org.assignments.get(person, ()) if a.active(now)}
        return held, person

    # --- decide --------------------------------------------------------------------------------------

    def decide(self, approval_id: str, person: str, approve: bool, comment: str) -> ApprovalRecord:
        """Approve or reject on behalf of `person`; Forbidden (with the reason) unless they may."""
        with self._sessions() as session:
            row = store.get(session, approval_id)
        if row is None:
            raise NotFound(f"approval {approval_id!r} not found")
        if row.status != "pending":
            raise Conflict(f"approval {approval_id} is already {row.status} (by {row.decided_by})")
        org = self._policies.current.get(row.organisation)
        if org is None:
            raise Conflict(f"organisation {row.organisation!r} no longer exists; the approval cannot be decided")
        now = utcnow()
        who = org.identities.get(person)
        if who is None:
            raise Forbidden(f"{person!r} is not a person of {org.id!r}")
        reason = barred(org, row, who, now.timestamp())
        if reason is not None:
            raise Forbidden(reason)
        status = "approved" if approve else "rejected"
        expires = now + self._validity if approve else None  # counted from the approval, not from the request
        with self._sessions.begin() as session:
            if not store.change(
                session,
                row.id,
                row.revision,
                status=status,
                decided_at=now,
                decided_by=who,
                decision_comment=comment,
                due_at=None,
                expires_at=expires,
            ):
                raise Conflict(f"approval {approval_id} changed meanwhile (escalated or decided); read it again")
            events.add(session, ENTITY, row.id, row.revision + 1, status, now, who, from_post=row.post, comment=comment)
            posts = json.loads(row.requester_posts)
            notify(
                session,
                org.id,
                org,
                posts[0] if posts else row.post,
                f"approval_{status}",
                row.id,
                _decided(org, row, who, status),
                now,
                people=[row.requester],
            )
        if approve:
            row.status, row.decided_at, row.decided_by = status, now, who
            self._ledger.remember_approval(row)
        return self.get(approval_id)

    # --- escalate (called by the scheduler inside its transaction) ----------------------------------

    def escalate(self, session: Session, row: ApprovalRow, now: dt.datetime, actor: str) -> Escalated | None:
        """Move an overdue approval one level up: the next post of its chain, else the next superior post
        with someone other than the requester in it; at the top it stays, with no more timer.
        Returns None if another writer changed the approval first."""
        org = self._policies.current.get(row.organisation)
        chain = json.loads(row.chain)
        target: str | None = None
        if row.level + 1 < len(chain):
            target = chain[row.level + 1]["post"]
        elif org is not None:
            target = next(
                (
                    s.post
                    for s in reporting_line(org, row.post, now.timestamp())
                    if any(h.person != row.requester for h in s.holders)
                ),
                None,
            )
        if target is None:
            message = _overdue(org, row)
            stayed = "past its SLA with no post above to escalate to"
            if not STEPS.take(session, row, "overdue", row.post, now, actor, stayed, due_at=None):
                return None
            notify(session, row.organisation, org, row.post, "approval_overdue", row.id, message, now)
            return Escalated(row.id, None)
        message = _escalated(org, row, target)
        moved = f"past its SLA of {self._sla}"
        due = now + self._sla
        if not STEPS.take(
            session, row, "escalated", target, now, actor, moved, level=row.level + 1, post=target, due_at=due
        ):
            return None
        notify(session, row.organisation, org, target, "approval_escalated", row.id, message, now)
        return Escalated(row.id, target)


def barred(org: CompiledOrg, row: ApprovalRow, person: str, at: float) -> str | None:
    """Why `person` may not decide the approval now (None: they may)."""
    if person == row.requester:
        return f"{person} requested this approval and may not decide it"
    if person not in {h.person for h in holders_of(org, row.post, at)}:
        return (
            f"{person} does not hold {row.post} now; approval {row.id} waits at level {row.level} for a holder of "
            f"{row.post} ({post_name(org, row.post)[1]})"
        )
    context = json.loads(row.request).get("context") or {}
    for key in ("maker", "requester"):
        value = context.get(key)
        if resolve_party(org, value) == person:
            return f"separation of duties: {person} is the {key} of this request (context.{key}) and may not approve it"
    requester_posts = set(json.loads(row.requester_posts))
    held = {a.post for a in org.assignments.get(person, ()) if a.active(at)}
    for rule in org.document.separation_of_duties:
        posts = set(rule.posts)
        for theirs in requester_posts & posts:
            conflicting = sorted((held & posts) - {theirs})
            if conflicting:
                return (
                    f"separation of duties {rule.id}: {person} holds {conflicting[0]}, which may not be combined with "
                    f"{theirs}, the post the request was made through ({rule.reason.en})"
                )
    return None


def view(row: ApprovalRow) -> Approval:
    return Approval(**_fields(row))


def _fields(row: ApprovalRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "organisation": row.organisation,
        "status": row.status,
        "requester": row.requester,
        "requester_posts": json.loads(row.requester_posts),
        "resource": ResourceRef(row.resource_type, row.resource_id),
        "action": row.action,
        "request": json.loads(row.request),
        "rules": json.loads(row.rules),
        "chain": msgspec.json.decode(row.chain, type=list[ChainStep]),
        "level": row.level,
        "post": row.post,
        "comment": row.comment,
        "decision_id": row.decision_id,
        "created_at": row.created_at.isoformat(),
        "due_at": row.due_at.isoformat() if row.due_at else None,
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        "decided_by": row.decided_by,
        "decision_comment": row.decision_comment,
        "uses": row.uses,
        "uses_left": row.uses_left,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "digest": row.digest,
        "approved_amounts": {path: _number(value) for path, value in json.loads(row.limits or "{}").items()},
    }


def _asked(question: Question, at: str | None) -> dict[str, Any]:
    """The request as a `/v1/check` body asks it (the fields that say what is asked, every one present)."""
    return {
        "subject": {
            "id": question.subject_id,
            "type": question.subject_type,
            "properties": question.subject_properties,
        },
        "resource": {
            "type": question.resource_type,
            "id": question.resource_id,
            "properties": question.resource_properties,
        },
        "action": question.action,
        "at": at,
        "context": question.context,
    }


def _number(text: str | None) -> int | float | None:
    """An approved magnitude as a JSON number (stored as exact decimal text)."""
    if text is None:
        return None
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else float(value)


def _what(row: ApprovalRow) -> str:
    return f"{row.resource_type}{'/' + row.resource_id if row.resource_id else ''} {row.action}"


def _requested(org: CompiledOrg | None, row: ApprovalRow) -> tuple[str, str]:
    zh, en = post_name(org, row.post)
    return (
        f"{row.requester} 申请审批:{_what(row)},请{zh}审批({row.id})",
        f"{row.requester} asks for approval of {_what(row)}; {en} to decide ({row.id})",
    )


def _escalated(org: CompiledOrg | None, row: ApprovalRow, target: str) -> tuple[str, str]:
    (from_zh, from_en), (to_zh, to_en) = post_name(org, row.post), post_name(org, target)
    return (
        f"审批超时:{row.requester} 的 {_what(row)} 已由{from_zh}升级至{to_zh}({row.id})",
        f"Approval overdue: {row.requester}'s {_what(row)} moved from {from_en} to {to_en} ({row.id})",
    )


def _overdue(org: CompiledOrg | None, row: ApprovalRow) -> tuple[str, str]:
    zh, en = post_name(org, row.post)
    return (
        f"审批超时且无更高岗位:{row.requester} 的 {_what(row)} 仍待{zh}审批({row.id})",
        f"Approval overdue with no post above: {row.requester}'s {_what(row)} still waits for {en} ({row.id})",
    )


def _decided(org: CompiledOrg | None, row: ApprovalRow, who: str, status: str) -> tuple[str, str]:
    zh = "已批准" if status == "approved" else "已驳回"
    return (
        f"{who} {zh} {row.requester} 的 {_what(row)}({row.id})",
        f"{who} {status} {row.requester}'s {_what(row)} ({row.id})",
    )
