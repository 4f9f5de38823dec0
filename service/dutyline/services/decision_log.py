"""The decision log writer: decisions are queued on the decision path and written in batches by one thread.

The decision path only appends to a queue (sampling first); encoding JSON and the database round trip happen
on the writer thread. A row keeps the facts behind its reasons (`engines.explain.logged_reasons`), which
`Versions.logged_reasons` renders again when the log is read. A request's big or shared parts (a batch's
top-level context) are written once per batch, not once per decision (`Parts`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
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
from dutyline.services.metrics import LOG_DROPPED, LOG_QUEUE_DEPTH, LOG_TRUNCATED, LOG_WRITTEN
from dutyline.store import decision_log as log_store

if TYPE_CHECKING:
    from dutyline.services.decisions import Answer

log = logging.getLogger("dutyline.decision_log")


# The column values of one decision_log row, as the store's bulk insert takes them (not an answer: nothing sends it).
RowValues = dict[str, Any]


@dataclass(frozen=True, slots=True)
class LoggedDecision:
    answer: Answer
    decided_at: float

    @classmethod
    def of(cls, answer: Answer) -> LoggedDecision:
        return cls(answer, time.time())

    def row_values(self, parts: Parts) -> RowValues:
        a = self.answer
        q = a.question
        request, refs = parts.request(q.subject_properties, q.resource_properties, q.context, q.at)
        return {
            "id": a.decision_id,
            "decided_at": dt.datetime.fromtimestamp(self.decided_at, dt.UTC),
            "organisation": a.organisation.id if a.organisation is not None else q.organisation,
            "subject_type": q.subject_type,
            "subject": (a.decision.subject or q.subject_id)[:256],
            "resource_type": q.resource_type[:64],
            "resource_id": q.resource_id[:256] if q.resource_id is not None else None,
            "action": q.action[:64],
            "outcome": a.outcome,
            "code": a.verdict.code,
            "reasons": msgspec.json.encode(logged_reasons(a.organisation, a.verdict, a.approval)).decode(),
            "request": request,
            "policy_version": a.policy_version,
            "latency_us": int(a.latency * 1e6),
            "request_id": q.request_id[:200] if q.request_id else None,
            "approval_id": a.used_approval.approval_id if a.used_approval is not None else None,
            "parts": refs,
            "simulated": q.simulated,
        }


# A part this small stays in its row: a reference (a 64-character digest) and a row of its own would cost more.
_INLINE_UP_TO = 256
_PART_NAMES = ("subject_properties", "resource_properties", "context")


@dataclass(frozen=True, slots=True)
class _Part:
    inline: msgspec.Raw | None  # the part as JSON, when it stays in its row
    digest: str | None  # else the part's digest in `decision_log_parts`


class Parts:
    """The request parts of one batch of rows: each distinct one encoded once and stored once.

    The items of an AuthZEN batch share the request's top-level context (and subject and resource) as one
    object, so parts are first known by identity (encoded once, however many items share it: the batch keeps
    them alive, so identities are not reused meanwhile), then by digest (equal parts of different requests,
    e.g. the checks of a `/v1/checks` batch, are stored once too). A part above `max_bytes` is stored as the
    subset of its keys that fits, marked truncated, under the digest of the whole.
    """

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._seen: dict[int, _Part] = {}
        self._now = dt.datetime.now(dt.UTC)
        self.stored: dict[str, dict[str, Any]] = {}  # digest → row of `decision_log_parts`
        self.truncated = 0

    def request(
        self, subject_properties: Any, resource_properties: Any, context: Any, at: float | None
    ) -> tuple[str, str | None]:
        """The `request` and `parts` columns of a row asked with these."""
        request: dict[str, Any] = {}
        refs: dict[str, str] = {}
        for name, value in zip(_PART_NAMES, (subject_properties, resource_properties, context)):
            if not value:  # None or {}: nothing to share
                request[name] = value
                continue
            part = self._part(value)
            if part.digest is None:
                request[name] = part.inline
            else:
                request[name] = None
                refs[name] = part.digest
        request["at"] = at
        return msgspec.json.encode(request).decode(), msgspec.json.encode(refs).decode() if refs else None

    def _part(self, value: Any) -> _Part:
        known = self._seen.get(id(value))
        if known is not None:
            return known
        encoded = msgspec.json.encode(value)
        if len(encoded) <= _INLINE_UP_TO:
            part = _Part(msgspec.Raw(encoded), None)
        else:
            digest = hashlib.sha256(encoded).hexdigest()
            if digest not in self.stored:
                body, truncated = encoded, False
                if len(encoded) > self._max_bytes:
                    body, truncated = _keys_that_fit(value, self._max_bytes), True
                    self.truncated += 1
                self.stored[digest] = {
                    "digest": digest,
                    "body": body.decode(),
                    "bytes": len(encoded),
                    "truncated": truncated,
                    "last_seen": self._now,
                }
            part = _Part(None, digest)
        self._seen[id(value)] = part
        return part


def _keys_that_fit(value: Any, limit: int) -> bytes:
    """As many of an object's entries as fit in `limit` bytes of JSON, in their order (an entry too big is left
    out, smaller ones after it are kept); what is kept is still an object, so readers need no special case."""
    if not isinstance(value, dict):
        return b"{}"
    kept: dict[str, Any] = {}
    size = 2  # {}
    for key, item in value.items():
        entry = len(msgspec.json.encode(key)) + len(msgspec.json.encode(item)) + 2  # "key": value,
        if size + entry <= limit:
            kept[key] = item
            size += entry
    return msgspec.json.encode(kept)


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
        max_part_bytes: int = 65_536,
    ) -> None:
        self._sessions = sessions
        self._sample_rate = sample_rate
        self._retention = dt.timedelta(days=retention_days)
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_queue = max_queue
        self._max_part_bytes = max_part_bytes
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
            parts = Parts(self._max_part_bytes)
            rows = [item.row_values(parts) for item in batch]
            with self._sessions.begin() as session:
                log_store.insert_many(session, rows, list(parts.stored.values()))
            LOG_WRITTEN.inc(len(rows))
            if parts.truncated:
                LOG_TRUNCATED.inc(parts.truncated)
                log.warning(
                    "%d request part(s) above %d bytes logged truncated (DUTYLINE_DECISION_LOG_MAX_CONTEXT_BYTES)",
                    parts.truncated,
                    self._max_part_bytes,
                )
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
        cutoff = dt.datetime.now(dt.UTC) - self._retention
        try:
            with self._sessions.begin() as session:
                removed = log_store.delete_older_than(session, cutoff)
            if removed:
                log.info("removed %d decision(s) older than %s", removed, cutoff.isoformat())
        except Exception:
            log.warning("decision log retention failed", exc_info=True)
