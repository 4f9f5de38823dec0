"""The escalation scheduler: one thread per process that moves overdue cases and approvals up one step.

Timers are rows, not threads: a case or an approval carries its `due_at`, so a restart loses nothing and
a process that starts finds whatever fell due while nothing ran. Exactly once, with any number of
replicas:

- each tick selects due rows `FOR UPDATE SKIP LOCKED` in one transaction (PostgreSQL): a row another
  replica is escalating is skipped, not waited for;
- each escalation is a conditional update on the row's `revision` (`WHERE id = ? AND revision = ?`): of
  two writers that read the same revision (SQLite, which ignores SKIP LOCKED, or an approver deciding at
  the same moment) only the first changes the row; the other updates nothing and writes nothing;
- the escalation's event and notification are written in the same transaction as the update, and the
  event's (entity, id, seq) is unique: a second write of one step would fail, not duplicate.

The same thread writes queued obligations to the outbox (woken as soon as one is queued) and, with a
webhook configured, delivers the outbox; with a callback secret, it delivers access requests' callbacks.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from dutyline.services.access_requests import Callbacks
from dutyline.services.approvals import ApprovalService
from dutyline.services.cases import CaseService
from dutyline.services.notifications import Obligations, Webhook, utcnow
from dutyline.store import approvals as approval_store
from dutyline.store import cases as case_store
from dutyline.store.tables import ApprovalRow, CaseRow

log = logging.getLogger("dutyline.escalation")


@dataclass(frozen=True, slots=True)
class Tally:
    cases: int = 0
    approvals: int = 0
    lost: int = 0  # due rows not escalated here: another writer changed them first, or they failed


class Escalator:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        cases: CaseService,
        approvals: ApprovalService,
        obligations: Obligations,
        interval: float,
        webhook_url: str = "",
        batch: int = 100,
        callbacks: Callbacks | None = None,
    ) -> None:
        self._sessions = sessions
        self._cases = cases
        self._approvals = approvals
        self._obligations = obligations
        self._interval = interval
        self._batch = batch
        self._webhook = Webhook(webhook_url) if webhook_url else None
        self._callbacks = callbacks  # access requests' callbacks (the AuthZEN access request profile)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.actor = f"escalation@{socket.gethostname()}:{os.getpid()}"

    def tick(self) -> Tally:
        """Escalate everything due now by one step, in batches of one transaction each (the next batch only
        after a full one that escalated something: rows that failed stay due, for the next tick)."""
        cases = approvals = lost = 0
        while True:
            now = utcnow()
            with self._sessions.begin() as session:
                due_cases = case_store.overdue(session, now, self._batch)
                due_approvals = approval_store.overdue(session, now, self._batch)
                done_cases = sum(self._guarded(self._cases.escalate, session, case, now) for case in due_cases)
                done_approvals = sum(self._guarded(self._approvals.escalate, session, a, now) for a in due_approvals)
            cases, approvals = cases + done_cases, approvals + done_approvals
            lost += len(due_cases) + len(due_approvals) - done_cases - done_approvals
            full = len(due_cases) == self._batch or len(due_approvals) == self._batch
            if not full or not (done_cases or done_approvals):
                return Tally(cases, approvals, lost)

    def _guarded(
        self, escalate: Callable[..., object], session: Session, row: CaseRow | ApprovalRow, now: dt.datetime
    ) -> bool:
        """One row's escalation. A row that cannot be planned (a bug, bad stored data) is logged and skipped
        (tried again next tick) instead of failing the whole batch; the plan is made before anything is
        written, so nothing is left half done. Database errors still fail, and roll back, the batch."""
        try:
            return escalate(session, row, now, self.actor) is not None
        except SQLAlchemyError:
            raise
        except Exception:
            log.exception("could not escalate %s %s", type(row).__name__, row.id)
            return False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dutyline-escalation", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._obligations.wake()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._webhook is not None:
            self._webhook.close()
        if self._callbacks is not None:
            self._callbacks.close()

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stopping.is_set():
            # Obligations are written as they come; the wait for them is the pause between ticks.
            self._obligations.drain(self._sessions, timeout=next_tick - time.monotonic())
            if self._stopping.is_set() or time.monotonic() < next_tick:
                continue
            try:
                tally = self.tick()
                if tally.cases or tally.approvals or tally.lost:
                    log.info(
                        "escalated %d case(s) and %d approval(s); %d due row(s) taken by another writer or failed",
                        tally.cases,
                        tally.approvals,
                        tally.lost,
                    )
            except Exception:  # the database may be down: the rows stay due and the next tick takes them
                log.warning("escalation tick failed", exc_info=True)
            if self._webhook is not None:
                try:
                    self._webhook.deliver(self._sessions)
                except Exception:
                    log.warning("webhook delivery failed", exc_info=True)
            if self._callbacks is not None:
                try:
                    self._callbacks.deliver()
                except Exception:
                    log.warning("access request callback delivery failed", exc_info=True)
            next_tick = time.monotonic() + self._interval
        self._obligations.drain(self._sessions, timeout=0)
