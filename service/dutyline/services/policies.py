"""Keeping a process's compiled policy (organisations and rules) in step with the store."""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping

from sqlalchemy.orm import Session, sessionmaker

from dutyline.engines.compiler import compile_org
from dutyline.engines.policyset import PolicySet
from dutyline.engines.rulehost import RuleHost
from dutyline.engines.rules import CompiledRules, compile_rules
from dutyline.orgmodel.document import Organisation
from dutyline.rulemodel.document import RulePack
from dutyline.services.metrics import POLICY_VERSION
from dutyline.settings import Bounds
from dutyline.store import orgs as org_store
from dutyline.store import rule_packs as pack_store


class PolicyService:
    """Owns the current `PolicySet` and the rule host; `refresh()` recompiles only what changed."""

    def __init__(self, sessions: sessionmaker[Session], host: RuleHost | None = None, bounds: Bounds | None = None) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()
        self.host = host or RuleHost()
        self.bounds = bounds or Bounds()  # what requests and packs may hold (settings), for every compile
        self.current = PolicySet()
        # Called with the new version after each swap (on the refreshing thread; must not block): wakes the checks
        # waiting for it (`services.consistency`).
        self.applied: Callable[[int], None] | None = None

    @classmethod
    def of_documents(
        cls, documents: Iterable[Organisation], packs: Mapping[str, Iterable[RulePack]], bounds: Bounds | None = None
    ) -> PolicyService:
        """A policy compiled from documents in memory, with no store behind it (`dutyline explain FILE`): decided
        by the same code as the service's."""
        service = cls(None, bounds=bounds)  # type: ignore[arg-type]  # refresh() is never called
        orgs = [compile_org(document) for document in documents]
        rules = {org.id: compile_rules(packs.get(org.id, ()), org, service.bounds) for org in orgs}
        service.current = PolicySet().replace(orgs, (), 0, rules)
        service.host.load({name: c for r in rules.values() for name, c in r.rulesets.items()})
        return service

    def refresh(self) -> PolicySet:
        """Apply every version stored since the last refresh; returns the (possibly new) current set."""
        with self._lock:
            after = self.current.version
            with self._sessions() as session:
                latest = org_store.latest_version(session)
                if latest <= after:
                    return self.current
            return self._apply(after, latest)

    def _apply(self, after: int, latest: int) -> PolicySet:
        """Compile the organisations and rules changed since `after` and swap them in (lock held)."""
        with _long_lived():
            with self._sessions() as session:
                stored = org_store.heads(session, after=after)
                changed = [compile_org(s.document, s.version) for s in stored if s.document is not None]
                removed = [s.org_id for s in stored if s.document is None]
                compiled = {org.id: org for org in changed}
                rule_orgs = (pack_store.orgs_changed_since(session, after) | set(compiled)) - set(removed)
                rules: dict[str, CompiledRules] = {}
                for org_id in rule_orgs:
                    org = compiled.get(org_id) or self.current.get(org_id)
                    if org is not None:
                        packs = [p.pack for p in pack_store.current(session, org_id) if p.pack is not None]
                        rules[org_id] = compile_rules(packs, org, self.bounds)
            candidate = self.current.replace(changed, removed, latest, rules)
            if rules or removed:
                self.host.load({name: cond for r in candidate.rules.values() for name, cond in r.rulesets.items()})
            self.current = candidate
            POLICY_VERSION.set(candidate.version)
            if self.applied is not None:
                self.applied(candidate.version)
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


@contextlib.contextmanager
def _long_lived() -> Iterator[None]:
    """Build compiled policy without the cyclic garbage collector, then exempt it from collection.

    A 1M-line policy is tens of millions of Python objects. With the collector on, decoding and compiling
    them triggers repeated full collections (start-up 4× slower), and each later full collection would stop
    the process for seconds to scan objects that never die. Compiled policy holds no reference cycles, so
    reference counting frees it when a refresh replaces it; `gc.freeze()` moves what exists into the
    permanent generation that collections skip.

    Garbage cycles that exist at that moment would be frozen for good: each refresh's own queries leave ~150
    (SQL expression objects), other threads' requests more; measured, ~20 KB per policy change, 110 MiB in a
    5-minute soak of 20 edits a second. So they are collected first when that is cheap, i.e. when the refresh
    made fewer than `_COLLECT_BELOW` new objects (an edit to an ordinary organisation: milliseconds). After
    compiling a huge policy the collection is skipped (it would scan every new object, pausing decisions), and
    those few objects are the price of a rare event.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        if gc.get_count()[0] < _COLLECT_BELOW:
            gc.collect()
        gc.freeze()


_COLLECT_BELOW = 500_000
