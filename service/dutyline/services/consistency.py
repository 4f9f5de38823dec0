"""Read-your-writes: a check with `at_least_version` waits until this process has applied that policy version,
without a thread of its own.

Each waiting check is a future on the event loop. `PolicyService` calls `applied(version)` after every swap of
the compiled policy, from whichever thread refreshed (the periodic refresh, the change listener on PostgreSQL, the
catch-up below); that wakes the waiters the version satisfies, so a waiter is answered as soon as another
replica's change is applied here. While anyone waits, one catch-up task refreshes from the store every
`_CATCH_UP` seconds (the version may be committed before its notification arrives, and SQLite notifies no one):
one refresh loop for all waiters, not one per waiter. A wait ends after `DUTYLINE_CONSISTENCY_WAIT`; at most
`DUTYLINE_CONSISTENCY_WAITERS` wait at once, and one more is refused (503, Retry-After) rather than queued.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from dutyline.errors import Unavailable
from dutyline.services.metrics import CONSISTENCY_REFUSED, CONSISTENCY_WAITERS
from dutyline.services.policies import PolicyService

log = logging.getLogger("dutyline.consistency")

# How often the catch-up task looks for a newer version while someone waits (seconds).
_CATCH_UP = 0.05


@dataclass(eq=False, slots=True)
class _Waiter:
    version: int
    woken: asyncio.Future[None]


class VersionWaits:
    def __init__(self, policies: PolicyService, max_waiters: int) -> None:
        self._policies = policies
        self._max_waiters = max_waiters
        self._waiters: list[_Waiter] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._catch_up: asyncio.Task[None] | None = None

    async def wait_for(self, version: int, timeout: float) -> bool:
        """True once this process has applied `version` (at once if it has); False after `timeout` seconds without.
        `Unavailable` (503, Retry-After) when `DUTYLINE_CONSISTENCY_WAITERS` checks are waiting already."""
        if self._policies.current.version >= version:
            return True
        if len(self._waiters) >= self._max_waiters:
            CONSISTENCY_REFUSED.inc()
            raise Unavailable(
                f"policy version {version} is not applied here yet (this server is at "
                f"{self._policies.current.version}) and {len(self._waiters)} checks are waiting for a version "
                f"already (DUTYLINE_CONSISTENCY_WAITERS); retry shortly",
                retry_after=1,
            )
        self._loop = asyncio.get_running_loop()
        waiter = _Waiter(version, self._loop.create_future())
        self._waiters.append(waiter)
        CONSISTENCY_WAITERS.set(len(self._waiters))
        if self._catch_up is None:
            self._catch_up = asyncio.create_task(self._catch_up_while_waited())
        try:
            # A swap between the first look and joining the waiters woke nobody: look again.
            if self._policies.current.version >= version:
                return True
            await asyncio.wait_for(waiter.woken, timeout)
            return True
        except TimeoutError:
            return self._policies.current.version >= version
        finally:
            self._waiters.remove(waiter)
            CONSISTENCY_WAITERS.set(len(self._waiters))

    def applied(self, version: int) -> None:
        """Called by the policy service after it swapped in `version`, on any thread; never blocks."""
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._wake, version)
        except RuntimeError:  # the loop has closed: the server is stopping, nobody waits any more
            pass

    def _wake(self, version: int) -> None:
        for waiter in self._waiters:
            if waiter.version <= version and not waiter.woken.done():
                waiter.woken.set_result(None)

    async def _catch_up_while_waited(self) -> None:
        failed = False
        try:
            while self._waiters:
                try:
                    await asyncio.to_thread(self._policies.refresh)
                except Exception:  # the database may be down: the waiters time out with a 503
                    if not failed:  # once per stretch of waiting, not every 50 ms
                        log.warning("refresh for checks waiting for a policy version failed", exc_info=True)
                    failed = True
                await asyncio.sleep(_CATCH_UP)
        finally:
            self._catch_up = None
