"""Keeping a process's compiled policy in step with the store."""

from __future__ import annotations

import threading
import time

from sqlalchemy.orm import Session, sessionmaker

from dutyline.engines.compiler import compile_org
from dutyline.engines.policyset import PolicySet
from dutyline.store import orgs as org_store


class PolicyService:
    """Owns the current `PolicySet`; `refresh()` compiles only the organisations changed since the last one."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()
        self.current = PolicySet()

    def refresh(self) -> PolicySet:
        """Apply every version stored since the last refresh; returns the (possibly new) current set."""
        with self._lock:
            with self._sessions() as session:
                stored = org_store.heads(session, after=self.current.version)
                latest = org_store.latest_version(session)
            changed = [compile_org(s.document, s.version) for s in stored if s.document is not None]
            removed = [s.org_id for s in stored if s.document is None]
            if changed or removed or latest > self.current.version:
                self.current = self.current.replace(changed, removed, latest)
            return self.current

    def wait_for(self, version: int, timeout: float) -> bool:
        """Refresh until the policy is at least `version`; False if that did not happen within `timeout`."""
        deadline = time.monotonic() + timeout
        while self.current.version < version:
            self.refresh()
            if self.current.version >= version:
                break
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True
