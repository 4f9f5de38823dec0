"""The decision log writer: decisions are queued on the decision path and written in batches by one thread.

The decision path only appends to a queue (sampling first); encoding JSON and the database round trip happen
on the writer thread. A row keeps the facts behind its reasons (`engines.explain.logged_reasons`), which
`Versions.logged_reasons` renders again when the log is read.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import random
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import exc as db_errors
from sqlalchemy.orm import Session, sessionmaker

from dutyline.engines.explain import logged_reasons
from dutyline.services.metrics import LOG_DROPPED, LOG_QUEUE_DEPTH, LOG_WRITTEN
from dutyline.store import decision_log as log_store

if TYPE_CHECKING:
    from dutyline.services.decisions import Answer

log = logging.getLogger("dutyline.decision_log")


@dataclass(frozen=True, slots=True)
class LoggedDecision:
    answer: Answer
    decided_at: float

    @classmethod
    def of(cls, answer: Answer) -> LoggedDecision:
        return cls(answer, time.time())

    def row(self) -> dict[str, Any]:
        a = self.answer
        q = a.question
        return {
            "id": a.decision_id,
            "decided_at": dt.datetime.fromtimestamp(self.decided_at, dt.timezone.utc),
            "organisation": a.organisation.id if a.organisation is not None else q.organisation,
            "subject_type": q.subject_type,
            "subject": (a.decision.subject or q.subject_id)[:256],
            "resource_type": q.resource_type[:64],
            "resource_id": q.resource_id[:256] if q.resource_id is not None else None,
            "action": q.action[:64],
            "outcome": a.outcome,
            "code": a.verdict.code,
            "reasons": msgspec.json.encode(logged_reasons(a.organisation, a.verdict)).decode(),
            "request": msgspec.json.encode(
                {
                    "subject_properties": q.subject_properties,
                    "resource_properties": q.resource_properties,
                    "context": q.context,
                    "at": q.at,
                }
            ).decode(),
            "policy_version": a.policy_version,
            "latency_us": int(a.latency * 1e6),
            "request_id": q.request_id[:200] if q.request_id else None,
            "approval_id": a.used_approval.approval_id if a.used_approval is not None else None,
        }


class DecisionLog:
    """Queue + writer thread. `record` never blocks and never raises."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        sample_rate: float = 1.0,
        retention_days: float = 30.0,
        batch_size: int = 1000,
        flush_interval: float = 0.2,
        max_queue: int = 200_000,
    ) -> None:
        self._sessions = sessions
        self._sample_rate = sample_rate
        self._retention = dt.timedelta(days=retention_days)
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_queue = max_queue
        self._queue: queue.SimpleQueue[LoggedDecision | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._last_purge = 0.0
        LOG_QUEUE_DEPTH.set_function(self._queue.qsize)

    def record(self, item: LoggedDecision) -> None:
        if self._sample_rate < 1.0 and random.random() >= self._sample_rate:
            return
        if self._queue.qsize() >= self._max_queue:
            LOG_DROPPED.inc()
            return
        self._queue.put(item)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dutyline-decision-log", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything recorded so far is written (tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.qsize() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(self._flush_interval * 2)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[LoggedDecision] = []
            deadline = time.monotonic() + self._flush_interval
            while len(batch) < self._batch_size:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            if batch and not self._write(batch):
                if stopping:
                    LOG_DROPPED.inc(len(batch))
                else:
                    self._hold(batch)
            self._purge()

    def _write(self, batch: list[LoggedDecision]) -> bool:
        """Write a batch; False if the database could not be reached, so that the batch is tried again."""
        try:
            rows = [item.row() for item in batch]
            with self._sessions.begin() as session:
                log_store.insert_many(session, rows)
            LOG_WRITTEN.inc(len(rows))
        except (db_errors.OperationalError, db_errors.InterfaceError):  # down or restarting: keep them
            log.warning("database unreachable: %d decision(s) kept for the log until it is back", len(batch))
            return False
        except Exception:  # anything else would fail again: count the loss, keep deciding
            LOG_DROPPED.inc(len(batch))
            log.warning("could not write %d decision(s) to the log", len(batch), exc_info=True)
        return True

    def _hold(self, batch: list[LoggedDecision], pause: float = 1.0) -> None:
        """Queue a batch again (as far as the queue's bound allows) and wait a little before the next try."""
        room = max(0, self._max_queue - self._queue.qsize())
        for item in batch[:room]:
            self._queue.put(item)
        if len(batch) > room:
            LOG_DROPPED.inc(len(batch) - room)
        time.sleep(pause)

    def _purge(self) -> None:
        now = time.time()
        if now - self._last_purge < 3600:
            return
        self._last_purge = now
        cutoff = dt.datetime.now(dt.timezone.utc) - self._retention
        try:
            with self._sessions.begin() as session:
                removed = log_store.delete_older_than(session, cutoff)
            if removed:
                log.info("removed %d decision(s) older than %s", removed, cutoff.isoformat())
        except Exception:
            log.warning("decision log retention failed", exc_info=True)
