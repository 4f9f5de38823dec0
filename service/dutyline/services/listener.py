"""Applying other replicas' changes as soon as they commit: PostgreSQL LISTEN/NOTIFY on a thread of its own.

Every transaction that stores a policy version sends `NOTIFY dutyline_policy, '<version>'` (delivered only on
commit). This listener holds one dedicated connection, and on a notification newer than what the process
has applied it calls `PolicyService.refresh()`, which recompiles only the organisations that changed.
Notifications that arrive while a refresh runs are covered by it and skipped: a burst costs one or two
refreshes, not one per version. If PostgreSQL goes away the listener reconnects with backoff and refreshes
once on reconnecting, so nothing committed in between is missed; the periodic refresh in `app.py` stays as
the fallback (and is the only mechanism on SQLite).
"""

from __future__ import annotations

import logging
import threading

from dutyline.services.policies import PolicyService
from dutyline.store import notify

log = logging.getLogger("dutyline.listener")


class ChangeListener:
    def __init__(
        self, database_url: str, policies: PolicyService, *, poll: float = 0.5, max_backoff: float = 10.0
    ) -> None:
        self._url = database_url
        self._policies = policies
        self._poll = poll  # how often the thread looks at the stop flag while no notification comes
        self._max_backoff = max_backoff
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()
        self.backend_pid = 0  # the listening connection's server process (operators can find it in pg_stat_activity)
        self.refreshes = 0  # refreshes triggered by notifications (and reconnects): for tests and metrics

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dutyline-listener", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._poll + 5)

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                with notify.listening(self._url) as connection:
                    self.backend_pid = connection.info.backend_pid
                    self.connected.set()
                    backoff = 0.1
                    self._refresh()  # whatever committed while we were not listening
                    while not self._stop.is_set():
                        versions = notify.received(connection, self._poll)
                        if versions and max(versions) > self._policies.current.version:
                            self._refresh()
            except Exception:  # the database went away or refused us: serve what we have, reconnect later
                if not self._stop.is_set():
                    log.warning("policy listener lost its connection; retrying in %.1f s", backoff, exc_info=True)
            self.connected.clear()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    def _refresh(self) -> None:
        self.refreshes += 1
        self._policies.refresh()
