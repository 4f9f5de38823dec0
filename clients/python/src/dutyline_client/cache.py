"""An optional, bounded cache of `/v1/check` answers, keyed by the request and the policy version that decided it.

A cached answer is served only while the client has seen no newer policy version (any answer carrying a higher
`policy_version`, or `after_change`, empties the cache) and for at most `max_age` seconds: a check without `at` is
asked about "now", and acting windows, business hours and usage totals move with time, and another replica's
change is seen only when an answer carries it. Answers with effects are never cached (an approval presented, a
simulated check, an allow with obligations: the server notifies on each decision), nor the client's own fail-closed
answers.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from dutyline_client.models import CheckResult


@dataclass(frozen=True, slots=True)
class _Entry:
    result: CheckResult
    stored_at: float


class DecisionCache:
    """Least recently used, at most `maxsize` answers, each for at most `max_age` seconds. Thread-safe: one cache
    may serve every thread of a sync client."""

    def __init__(self, maxsize: int = 10_000, max_age: float = 5.0) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self.max_age = max_age
        self._entries: OrderedDict[tuple[bytes, int], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._version = -1

    def get(self, key: bytes, version: int) -> CheckResult | None:
        with self._lock:
            entry = self._entries.get((key, version))
            if entry is None:
                return None
            if time.monotonic() - entry.stored_at > self.max_age:
                del self._entries[(key, version)]
                return None
            self._entries.move_to_end((key, version))
            return entry.result

    def put(self, key: bytes, result: CheckResult) -> None:
        with self._lock:
            if result.policy_version < self._version:
                return  # decided on an older version than one already seen: not worth keeping
            self._entries[(key, result.policy_version)] = _Entry(result, time.monotonic())
            self._entries.move_to_end((key, result.policy_version))
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def saw_version(self, version: int) -> None:
        """A newer policy version exists: every answer decided on an older one is dropped."""
        with self._lock:
            if version <= self._version:
                return
            self._version = version
            for key in [k for k in self._entries if k[1] < version]:
                del self._entries[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
