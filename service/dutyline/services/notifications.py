"""Notifications: the outbox rows other modules write, obligations taken off the decision path, and the webhook.

A notification is written in the same transaction as the change it reports (a case escalated, an approval
requested), so it exists exactly when the change does. Obligations of allowed decisions (a rule's `notify`)
are queued by the decision path and written in batches by the escalation scheduler's thread. `Outbox` reads them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
from typing import TYPE_CHECKING

import httpx
import msgspec
from sqlalchemy.orm import Session, sessionmaker

from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.queries import holders_of
from dutyline.logs import bound_to
from dutyline.store import outbox
from dutyline.store.tables import NotificationRow

if TYPE_CHECKING:
    from dutyline.services.decisions import Answer

log = logging.getLogger("dutyline.notifications")
MAX_ATTEMPTS = 12


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def people_holding(org: CompiledOrg | None, post: str, now: dt.datetime) -> list[str]:
    """Who holds `post` at `now`, acting holders inside their window included."""
    if org is None:
        return []
    return list(dict.fromkeys(h.person for h in holders_of(org, post, now.timestamp())))


def notify(
    session: Session,
    org_id: str,
    org: CompiledOrg | None,
    post: str,
    kind: str,
    subject_id: str | None,
    message: tuple[str, str],
    now: dt.datetime,
    people: list[str] | None = None,
) -> None:
    """Put a notification for `post` (its holders now, unless `people` says who) in the outbox."""
    who = people if people is not None else people_holding(org, post, now)
    outbox.add(session, org_id, post, who, kind, subject_id, message[0], message[1], now)


def post_name(org: CompiledOrg | None, post: str) -> tuple[str, str]:
    """A post's name (zh, en), or its id when the organisation does not know it."""
    if org is not None:
        for entry in org.document.posts:
            if entry.id == post:
                return entry.name.zh, entry.name.en
    return post, post


class Message(msgspec.Struct, forbid_unknown_fields=True):
    zh: str
    en: str


class OutboxNotification(msgspec.Struct, forbid_unknown_fields=True):
    """Who must be told what (`people`: who held `post` when it was written), and whether the webhook has."""

    id: int
    organisation: str
    post: str
    people: list[str]
    kind: str
    subject_id: str | None  # the case, approval or decision it is about
    message: Message
    created_at: str
    delivered_at: str | None
    attempts: int


def view(row: NotificationRow) -> OutboxNotification:
    return OutboxNotification(
        row.id,
        row.organisation,
        row.post,
        json.loads(row.people),
        row.kind,
        row.subject_id,
        Message(row.message_zh, row.message_en),
        row.created_at.isoformat(),
        row.delivered_at.isoformat() if row.delivered_at else None,
        row.attempts,
    )


class Outbox:
    """Reading the outbox (`GET /v1/notifications`)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def list(
        self,
        organisation: str | None = None,
        post: str | None = None,
        since: dt.datetime | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> list[OutboxNotification]:
        """Oldest first, so that a reader can page on with `after_id`."""
        with self._sessions() as session:
            return [view(row) for row in outbox.query(session, organisation, post, since, after_id, limit)]


class Obligations:
    """Allowed decisions that must notify someone: queued on the decision path, written off it."""

    def __init__(self, max_queue: int = 100_000) -> None:
        self._queue: queue.SimpleQueue[Answer | None] = queue.SimpleQueue()
        self._max_queue = max_queue
        self.dropped = 0

    def put(self, answer: Answer) -> None:
        """Called on the decision path: one queue append, never blocks, never raises."""
        if self._queue.qsize() >= self._max_queue:
            self.dropped += 1
            return
        self._queue.put(answer)

    def wake(self) -> None:
        """Make a waiting `drain` return now (the scheduler is stopping)."""
        self._queue.put(None)

    def drain(self, sessions: sessionmaker[Session], timeout: float, batch: int = 500) -> int:
        """Wait up to `timeout` for obligations, then write every one queued (up to `batch`) in one
        transaction. Returns how many notifications were written."""
        answers: list[Answer] = []
        try:
            first = self._queue.get(timeout=max(timeout, 0.0)) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return 0
        if first is not None:
            answers.append(first)
        while len(answers) < batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                answers.append(item)
        if not answers:
            return 0
        written = 0
        try:
            with sessions.begin() as session:
                for answer in answers:
                    with bound_to(answer.question.request_id):  # what it logs is on that request's behalf
                        written += _write_obligations(session, answer)
        except Exception:  # the database may be down: the decisions stand, their notifications are lost
            log.warning("could not write %d obligation(s) to the outbox", len(answers), exc_info=True)
            return 0
        return written


def _write_obligations(session: Session, answer: Answer) -> int:
    org = answer.organisation
    if org is None:
        return 0
    q = answer.question
    now = utcnow()
    person = answer.decision.subject or q.subject_id
    what = f"{person}: {q.resource_type}{'/' + q.resource_id if q.resource_id else ''} {q.action}"
    verdict = answer.verdict
    hits = [h for h in verdict.hits if h.effect == "notify"]
    written = 0
    for post in verdict.notify:  # one row per post, however many rules tell it
        told = [h for h in hits if post in h.notify]
        zh = ";".join(dict.fromkeys(h.message.zh for h in told))
        en = "; ".join(dict.fromkeys(h.message.en for h in told))
        for vacant in dict.fromkeys(n.instead_of for n in verdict.notices if n.post == post and n.instead_of):
            vacant_zh, vacant_en = post_name(org, vacant)
            zh += f"(「{vacant_zh}」岗位空缺,改为通知本岗位)"
            en += f" ({vacant_en} is vacant: told instead)"
        notify(session, org.id, org, post, "obligation", answer.decision_id, (f"{zh}({what})", f"{en} ({what})"), now)
        written += 1
    for notice in verdict.notices:
        if notice.post is None:
            log.warning(
                "%s: %s is vacant and nobody above it holds a post; decision %s notified nobody for it",
                org.id,
                notice.instead_of,
                answer.decision_id,
            )
    return written


class Webhook:
    """Delivers outbox rows to DUTYLINE_WEBHOOK_URL: at least once, retried with exponential backoff.

    A row is leased (claimed) in one short transaction, sent with no transaction open, then marked
    delivered or rescheduled; a replica that dies mid-send leaves the lease to expire and another
    replica sends it again.
    """

    def __init__(self, url: str, timeout: float = 5.0, lease: float = 30.0, base_delay: float = 1.0) -> None:
        self.url = url
        self._client = httpx.Client(timeout=timeout)
        self._lease = dt.timedelta(seconds=lease)
        self._base_delay = base_delay

    def deliver(self, sessions: sessionmaker[Session], limit: int = 100) -> int:
        now = utcnow()
        with sessions.begin() as session:
            rows = outbox.claim(session, now, self._lease, limit)
        sent = 0
        for row in rows:
            attempt = row.attempts + 1
            try:
                sent_row = msgspec.structs.replace(view(row), attempts=attempt)
                response = self._client.post(self.url, json=msgspec.to_builtins(sent_row))
                ok = 200 <= response.status_code < 300
            except httpx.HTTPError:
                ok = False
            with sessions.begin() as session:
                if ok:
                    outbox.delivered(session, row.id, utcnow())
                    sent += 1
                elif attempt >= MAX_ATTEMPTS:
                    outbox.retry_at(session, row.id, None)
                    log.warning("notification %s not delivered after %d attempts; giving up", row.id, attempt)
                else:
                    delay = min(self._base_delay * 2 ** (attempt - 1), 3600.0)
                    outbox.retry_at(session, row.id, utcnow() + dt.timedelta(seconds=delay))
        return sent

    def close(self) -> None:
        self._client.close()
