"""Structured logs: one JSON object per line, each record of a request carrying its request and trace ids.

The ids are bound when a record is made, in the thread that logs it, not when it is formatted: records are
formatted on the queue listener's thread, which knows nothing of the request. They come from context variables,
which asyncio copies into every task and every `asyncio.to_thread` call of the request, so a record logged in a
worker thread on the request's behalf carries them too; threads of their own (the decision-log writer) start with
no request, and work they do later for one binds its id with `bound_to`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar

# The request's X-Request-ID as it came (at most 200 bytes, decoded only when a record is made).
REQUEST_ID: ContextVar[bytes | None] = ContextVar("dutyline_request_id", default=None)

# Set when tracing is on (services/tracing.py): the current span's trace and span ids, or None outside a span.
_trace_ids: Callable[[], tuple[str, str] | None] | None = None


def read_trace_ids_with(source: Callable[[], tuple[str, str] | None]) -> None:
    """Give every record made from now on the trace and span ids `source` returns (tracing's current span)."""
    global _trace_ids
    _trace_ids = source


@contextlib.contextmanager
def bound_to(request_id: str | None) -> Iterator[None]:
    """Records made inside carry `request_id`: for work done later on a request's behalf, on another thread."""
    token = REQUEST_ID.set(request_id.encode("latin-1", "replace") if request_id else None)
    try:
        yield
    finally:
        REQUEST_ID.reset(token)


def _with_ids(make: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def record(*args: object, **kwargs: object) -> logging.LogRecord:
        made = make(*args, **kwargs)
        request_id = REQUEST_ID.get()
        made.request_id = request_id.decode("latin-1") if request_id is not None else None
        ids = _trace_ids() if _trace_ids is not None else None
        made.trace_id, made.span_id = ids if ids is not None else (None, None)
        return made

    record.binds_request_ids = True  # type: ignore[attr-defined]
    return record


def bind_request_ids() -> None:
    """Make every log record of the process carry `request_id`, `trace_id` and `span_id` (None outside a request
    or a span). Idempotent: the app factory calls it for each app."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "binds_request_ids", False):
        logging.setLogRecordFactory(_with_ids(current))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "trace_id", "span_id"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)
