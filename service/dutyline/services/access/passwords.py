"""Passwords as argon2id, with a bound on how many are hashed at once (each computation takes 64 MiB)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from dutyline.errors import Unavailable
from dutyline.services.metrics import PASSWORD_HASHES, PASSWORD_HASHES_PEAK, PASSWORD_HASHES_RUNNING

_hasher = PasswordHasher()
T = TypeVar("T")


class Passwords:
    """At most `limit` argon2id computations at once in this process: parallel logins queue here for at most
    `wait` seconds, then get a 503, rather than take the memory the process needs."""

    def __init__(self, limit: int, wait: float) -> None:
        self._slots = threading.BoundedSemaphore(max(1, limit))
        self._wait = wait
        self._lock = threading.Lock()
        self._running = 0
        self._peak = 0

    def hash(self, password: str | None) -> str | None:
        return self._run("hash", lambda: _hasher.hash(password)) if password is not None else None

    def verify(self, stored: str | None, password: str) -> bool:
        """Constant work whether or not the user exists: an unknown user is checked against a dummy hash."""
        against = stored or self._dummy_hash  # (made once, before this check takes its slot)

        def check() -> bool:
            try:
                return _hasher.verify(against, password) and stored is not None
            except (VerificationError, InvalidHashError):
                return False

        return self._run("verify", check)

    @staticmethod
    def needs_rehash(stored: str) -> bool:
        return _hasher.check_needs_rehash(stored)

    @functools.cached_property
    def _dummy_hash(self) -> str:
        return self._run("hash", lambda: _hasher.hash("not a password anyone has"))

    def _run(self, kind: str, work: Callable[[], T]) -> T:
        if not self._slots.acquire(timeout=self._wait):
            raise Unavailable("too many password checks at once; retry shortly")
        try:
            with self._lock:
                self._running += 1
                self._peak = max(self._peak, self._running)
                PASSWORD_HASHES_RUNNING.set(self._running)
                PASSWORD_HASHES_PEAK.set(self._peak)
            PASSWORD_HASHES.labels(kind).inc()
            return work()
        finally:
            with self._lock:
                self._running -= 1
                PASSWORD_HASHES_RUNNING.set(self._running)
            self._slots.release()
