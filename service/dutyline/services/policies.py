"""Keeping a process's compiled policy (organisations and rules) in step with the store.

Organisations are isolated from each other: a document or rule pack of one that cannot be decoded, compiled or
loaded in the rule host leaves that organisation on its last good compiled version (or, with none since
start-up, unavailable: every decision for it is a deny) while every other organisation moves on. Each such
problem is logged once per stored version, counted in `dutyline_policy_errors_total{organisation}`, and shown by
`/healthz` and `/readyz` (`PolicySet.problems`).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping

from sqlalchemy.orm import Session, sessionmaker

from dutyline.engines.compiler import CompiledOrg, compile_org
from dutyline.engines.policyset import PolicySet, Problem
from dutyline.engines.rulehost import RuleBackend, check_condition, new_backend
from dutyline.engines.rules import CompiledRules, compile_rules
from dutyline.orgmodel.document import Organisation
from dutyline.rulemodel.document import RulePack
from dutyline.services.metrics import POLICY_ERRORS, POLICY_NOT_CURRENT, POLICY_VERSION
from dutyline.settings import Bounds
from dutyline.store import orgs as org_store
from dutyline.store import rule_packs as pack_store

log = logging.getLogger("dutyline.policies")


class PolicyService:
    """Owns the current `PolicySet` and the rule host; `refresh()` recompiles only what changed."""

    def __init__(
        self, sessions: sessionmaker[Session], host: RuleBackend | None = None, bounds: Bounds | None = None
    ) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()
        self.host = host or new_backend()
        self.bounds = bounds or Bounds()  # what requests and packs may hold (settings), for every compile
        self.current = PolicySet()
        # Called with the new version after each swap (on the refreshing thread; must not block): wakes the checks
        # waiting for it (`services.consistency`).
        self.applied: Callable[[int], None] | None = None
        self._reported: dict[str, int] = {}  # organisation → the stored version whose problem was logged

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
        """Apply every version stored since the last refresh; returns the (possibly new) current set.

        A database error raises (nothing changes; the refresh loop tries again). A stored version that cannot
        be used never does: it is that organisation's problem only."""
        with self._lock:
            after = self.current.version
            with self._sessions() as session:
                latest = org_store.latest_version(session)
                if latest <= after:
                    return self.current
            return self._apply(after, latest)

    def _apply(self, after: int, latest: int) -> PolicySet:
        """Compile the organisations and rules changed since `after` and swap them in (lock held)."""
        current = self.current
        with _long_lived():
            with self._sessions() as session:  # every read first; compiling needs no database
                heads: dict[str, org_store.StoredOrg | None] = {
                    s.org_id: s for s in org_store.heads(session, after=after)
                }
                for org_id in pack_store.orgs_changed_since(session, after) - set(heads):
                    # an organisation not current is rebuilt from its newest document whenever anything of it changes
                    rebuild = org_id in current.problems or current.get(org_id) is None
                    heads[org_id] = org_store.newest(session, org_id) if rebuild else None
                removed = [o for o, s in heads.items() if s is not None and s.deleted]
                built = [o for o, s in heads.items() if o not in removed and (s is not None or o in current.orgs)]
                packs = {org_id: pack_store.current(session, org_id) for org_id in built}
            problems = {o: p for o, p in current.problems.items() if o not in removed}
            changed: dict[str, CompiledOrg] = {}
            rules: dict[str, CompiledRules] = {}
            newest: dict[str, int] = {}  # the newest stored version each built organisation is made of
            for org_id in sorted(built):
                result = _build(org_id, heads[org_id], packs[org_id], current, self.bounds)
                if isinstance(result, Problem):
                    problems[org_id] = result
                    continue
                org, org_rules, newest[org_id] = result
                if org is not current.get(org_id):
                    changed[org_id] = org
                rules[org_id] = org_rules
                problems.pop(org_id, None)
            if rules or removed:
                self._load(current, removed, changed, rules, newest, problems)
            candidate = current.replace(changed.values(), removed, latest, rules, problems)
            self._report(current, candidate)
            self.current = candidate
            POLICY_VERSION.set(candidate.version)
            if self.applied is not None:
                self.applied(candidate.version)
            return self.current

    def _load(
        self,
        current: PolicySet,
        removed: list[str],
        changed: dict[str, CompiledOrg],
        rules: dict[str, CompiledRules],
        newest: dict[str, int],
        problems: dict[str, Problem],
    ) -> None:
        """Load the new rules in the host. If it refuses them, find the organisations whose rules it refuses by
        adding the changed ones one at a time to what it holds now; each of those keeps its last good version
        (taken out of `changed` and `rules`, put in `problems`)."""
        held = {o: r for o, r in current.rules.items() if o not in removed}
        try:
            self.host.load(_rulesets({**held, **rules}))
            return
        except ValueError:
            pass
        for org_id in sorted(rules):
            trial = {**held, org_id: rules[org_id]}
            try:
                self.host.load(_rulesets(trial))
                held = trial
            except ValueError as exc:
                problems[org_id] = _problem(current, org_id, newest[org_id], "load", f"the rule host refuses it: {exc}")
                changed.pop(org_id, None)
                del rules[org_id]

    def _report(self, before: PolicySet, after: PolicySet) -> None:
        """Log each problem once per stored version (and its end), count it, and set the gauges."""
        for org_id, problem in after.problems.items():
            if self._reported.get(org_id) == problem.version:
                continue
            self._reported[org_id] = problem.version
            POLICY_ERRORS.labels(org_id).inc()
            if problem.serving is None:
                log.error(
                    "organisation %s is unavailable (every decision for it is a deny): version %d: %s",
                    org_id,
                    problem.version,
                    problem.reason,
                )
            else:
                log.error(
                    "organisation %s stays at policy version %d: version %d cannot be used: %s",
                    org_id,
                    problem.serving,
                    problem.version,
                    problem.reason,
                )
        for org_id in set(before.problems) - set(after.problems):
            self._reported.pop(org_id, None)
            if org_id in after.orgs:
                log.info("organisation %s is current again (policy version %d)", org_id, after.version)
        states = [p.state for p in after.problems.values()]
        for state in ("stale", "unavailable"):
            POLICY_NOT_CURRENT.labels(state).set(states.count(state))

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


def _build(
    org_id: str,
    head: org_store.StoredOrg | None,
    packs: list[pack_store.StoredPack],
    current: PolicySet,
    bounds: Bounds,
) -> tuple[CompiledOrg, CompiledRules, int] | Problem:
    """One organisation compiled with its rule packs (from `head`, or the compiled one it has if None), or the
    problem that stops it. Pure: whatever fails here is this organisation's only."""
    if head is not None:
        if head.document is None:
            return _problem(current, org_id, head.version, "decode", head.error or "no document")
        try:
            org = compile_org(head.document, head.version)
        except Exception as exc:  # a bug or a document the compiler cannot take: this organisation's problem only
            return _problem(current, org_id, head.version, "compile", f"the document cannot be compiled: {exc!r}")
    else:
        org = current.orgs[org_id]
    newest = max([org.version, *(p.version for p in packs)])
    for pack in packs:
        if pack.pack is None:
            return _problem(current, org_id, pack.version, "decode", pack.error or "no pack")
    try:
        compiled = compile_rules([p.pack for p in packs if p.pack is not None], org, bounds)
    except Exception as exc:
        return _problem(current, org_id, newest, "compile", f"the rule packs cannot be compiled: {exc!r}")
    for name, condition in compiled.rulesets.items():
        try:
            check_condition(condition)
        except (ValueError, TypeError) as exc:
            return _problem(current, org_id, newest, "load", f"the rule host refuses rule {name!r}: {exc}")
    return org, compiled, newest


def _problem(current: PolicySet, org_id: str, version: int, stage: str, reason: str) -> Problem:
    """A problem of `org_id`, which goes on being decided at the version it is decided at now (if any)."""
    serving = current.version_of(org_id) if org_id in current.orgs else None
    return Problem(org_id, version, stage, reason, serving)  # type: ignore[arg-type]


def _rulesets(rules: Mapping[str, CompiledRules]) -> dict[str, Mapping[str, object]]:
    return {name: condition for r in rules.values() for name, condition in r.rulesets.items()}


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
