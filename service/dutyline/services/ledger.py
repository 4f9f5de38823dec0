"""What the rules know beyond the request: usage totals, approval history, and approvals presented with a check.

The decision path reads memory only: usage totals per (organisation, rule, person, period) and, per
resource, who approved it (newest first). Both are loaded from the database at start and refreshed
every `refresh_interval` with what other replicas recorded; a replica's own writes are in its memory at
once. The one database read on the decision path is the approval a check presents (`approval_id`): a
primary-key read, only for checks that carry one.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.decision import Check
from dutyline.engines.rules import CompiledRules, Facts, period_key
from dutyline.errors import Invalid, Issue, NotFound
from dutyline.rulemodel import document as rm
from dutyline.services.decisions import FactsProvider, Question
from dutyline.services.policies import PolicyService
from dutyline.store import approvals as approval_store
from dutyline.store import usage as usage_store
from dutyline.store.tables import ApprovalRow

log = logging.getLogger("dutyline.ledger")

UsageKey = tuple[str, str, str]  # (rule, person, period)
ResourceKey = tuple[str, str | None]  # (resource type, resource id)


@dataclass(frozen=True, slots=True)
class Recorded:
    id: int
    organisation: str
    rule: str
    person: str
    period: str
    amount: float
    total: float
    used_at: dt.datetime
    recorded_at: dt.datetime


def find_rule(rules: CompiledRules | None, rule_id: str) -> rm.Rule | None:
    """A rule of an organisation's compiled rule packs by id (None if no pack has it, or it is disabled)."""
    if rules is None:
        return None
    for compiled in rules.index.values():
        for entry in compiled:
            if entry.rule.id == rule_id:
                return entry.rule
    return None


def attribute(path: str, context: Mapping[str, Any] | None, resource: Mapping[str, Any], subject: Mapping[str, Any]) -> Any:
    """The value at an attribute path (context.amount, resource.risk_level, subject.grade)."""
    root, *names = path.split(".")
    source: Any = {"context": context or {}, "resource": resource, "subject": subject}.get(root)
    for name in names:
        if not isinstance(source, Mapping):
            return None
        source = source.get(name)
    return source


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


class Ledger(FactsProvider):
    """The service's facts provider: usage ledger and approval history in memory, refreshed from the store."""

    # Usage and approvals recorded by other replicas are read again for this long behind the last refresh,
    # so that a row committed a little after it was stamped is not missed (rows are de-duplicated by id).
    OVERLAP = dt.timedelta(seconds=60)
    # The longest limit period is a month: older usage cannot count towards a total being decided.
    USAGE_HORIZON = dt.timedelta(days=35)
    HISTORY_HORIZON = dt.timedelta(days=365)
    HISTORY_DEPTH = 100  # a four_eyes rule looks at most 100 approvals back

    def __init__(self, sessions: sessionmaker[Session], policies: PolicyService) -> None:
        self._sessions = sessions
        self._policies = policies
        self._lock = threading.Lock()
        self._usage: dict[str, dict[UsageKey, float]] = {}
        self._usage_seen: dict[int, dt.datetime] = {}  # row id → recorded_at
        self._usage_touched: dict[tuple[str, UsageKey], dt.datetime] = {}
        self._history_entries: dict[str, dict[ResourceKey, list[tuple[float, str, str]]]] = {}
        self._history: dict[str, dict[ResourceKey, tuple[str, ...]]] = {}
        self._history_seen: set[str] = set()
        self._facts: dict[str, Facts] = {}
        self._watermark: dt.datetime | None = None

    # --- the decision path ---------------------------------------------------------------------------

    def facts_for(self, org: CompiledOrg, question: Question, check: Check) -> Facts:
        facts = self._facts.get(org.id)
        if facts is None:
            facts = self._facts.setdefault(org.id, self._facts_of(org.id))
        if question.approval_id is None:
            return facts
        approved = self.presented(org, question.approval_id, check)
        return replace(facts, approved=approved) if approved else facts

    def _facts_of(self, org_id: str) -> Facts:
        usage = self._usage.setdefault(org_id, {})
        history = self._history.setdefault(org_id, {})

        def used(rule: str, person: str, period: str) -> float:
            return usage.get((rule, person, period), 0.0)

        def approvers(resource_type: str, resource_id: str | None) -> tuple[str, ...]:
            return history.get((resource_type, resource_id), ())

        return Facts(usage=used, approvals=approvers)

    def presented(self, org: CompiledOrg, approval_id: str, check: Check) -> frozenset[str]:
        """The rule ids an approval presented with a check covers: none unless it is approved, for this
        organisation, requester, resource and action, and every limited amount is at most the approved one."""
        try:
            with self._sessions() as session:
                row = approval_store.get(session, approval_id)
        except Exception:  # the database may be down: decide as if no approval were presented
            log.warning("could not read approval %s", approval_id, exc_info=True)
            return frozenset()
        if row is None or row.status != "approved" or row.organisation != org.id:
            return frozenset()
        person = org.identities.get(check.subject_id) if check.subject_type == "person" else None
        if (person, check.resource_type, check.resource_id, check.action) != (
            row.requester, row.resource_type, row.resource_id, row.action
        ):
            return frozenset()
        return self._covered(org, row, check)

    def _covered(self, org: CompiledOrg, row: ApprovalRow, check: Check) -> frozenset[str]:
        request = json.loads(row.request)
        approved_resource = {**((request.get("resource") or {}).get("properties") or {}), "id": row.resource_id, "type": row.resource_type}
        approved_subject = {**((request.get("subject") or {}).get("properties") or {}), "id": row.requester}
        resource = {**(check.resource_properties or {}), "id": check.resource_id, "type": check.resource_type}
        subject = {**(check.subject_properties or {}), "id": check.subject_id}
        rules = self._policies.current.rules.get(org.id)
        covered = set()
        for rule_id in json.loads(row.rules):
            rule = find_rule(rules, rule_id)
            if isinstance(rule, rm.Limit):
                asked = _number(attribute(rule.attribute, check.context, resource, subject))
                allowed = _number(attribute(rule.attribute, request.get("context"), approved_resource, approved_subject))
                if asked is None or allowed is None or asked > allowed:
                    continue
            covered.add(rule_id)
        return frozenset(covered)

    # --- usage ---------------------------------------------------------------------------------------

    def record_usage(
        self, org: CompiledOrg, rules: CompiledRules | None, person: str, rule_id: str, amount: float,
        at: float, decision_id: str | None = None,
    ) -> Recorded:
        """Store usage the caller's system executed and add it to this replica's totals at once."""
        who = org.identities.get(person)
        if who is None:
            raise NotFound(f"person {person!r} not found in {org.id!r}")
        rule = find_rule(rules, rule_id)
        if rule is None:
            raise NotFound(f"rule {rule_id!r} not found in the rule packs of {org.id!r}")
        if not isinstance(rule, rm.Limit) or rule.period is None:
            raise Invalid(
                f"rule: {rule_id!r} is not a limit with a period; only cumulative limits keep a ledger",
                [Issue("<request>", 0, "rule", "not a limit with a period")],
            )
        if not math.isfinite(amount):
            raise Invalid("amount: must be a finite number", [Issue("<request>", 0, "amount", "not finite")])
        period = period_key(rule.period, at, org.document.timezone)
        now = dt.datetime.now(dt.timezone.utc)
        used_at = dt.datetime.fromtimestamp(at, dt.timezone.utc)
        with self._sessions.begin() as session:
            row = usage_store.insert(session, org.id, rule_id, who, period, amount, used_at, now, decision_id)
            row_id = row.id
        with self._lock:
            self._add_usage(row_id, org.id, rule_id, who, period, amount, now)
            total = self._usage[org.id].get((rule_id, who, period), 0.0)
        return Recorded(row_id, org.id, rule_id, who, period, amount, total, used_at, now)

    def usage_total(self, org_id: str, rule_id: str, person: str, period: str) -> float:
        return self._usage.get(org_id, {}).get((rule_id, person, period), 0.0)

    def _add_usage(self, row_id: int, org_id: str, rule: str, person: str, period: str, amount: float, recorded_at: dt.datetime) -> None:
        if row_id in self._usage_seen:
            return
        self._usage_seen[row_id] = recorded_at
        totals = self._usage.setdefault(org_id, {})
        key = (rule, person, period)
        totals[key] = totals.get(key, 0.0) + amount
        self._usage_touched[(org_id, key)] = recorded_at

    # --- approval history (four eyes) ----------------------------------------------------------------

    def remember_approval(self, row: ApprovalRow) -> None:
        """Add an approved approval to this replica's history at once (others pick it up on refresh)."""
        with self._lock:
            self._add_history(row)

    def _add_history(self, row: ApprovalRow) -> None:
        if row.id in self._history_seen or row.decided_by is None or row.decided_at is None:
            return
        self._history_seen.add(row.id)
        key = (row.resource_type, row.resource_id)
        entries = self._history_entries.setdefault(row.organisation, {}).setdefault(key, [])
        bisect.insort(entries, (-row.decided_at.timestamp(), row.id, row.decided_by))
        del entries[self.HISTORY_DEPTH:]
        self._history.setdefault(row.organisation, {})[key] = tuple(who for _, _, who in entries)

    # --- refresh -------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read what was recorded since the last refresh (with an overlap) and add what is new."""
        started = dt.datetime.now(dt.timezone.utc)
        if self._watermark is None:
            usage_since, history_since = started - self.USAGE_HORIZON, started - self.HISTORY_HORIZON
        else:
            usage_since = history_since = self._watermark - self.OVERLAP
        with self._sessions() as session:
            usage_rows = usage_store.recorded_since(session, usage_since)
            approved = approval_store.approved_since(session, history_since)
        with self._lock:
            for u in usage_rows:
                self._add_usage(u.id, u.organisation, u.rule, u.person, u.period, u.amount, u.recorded_at)
            for a in approved:
                self._add_history(a)
            self._watermark = started
            self._prune(started)

    def _prune(self, now: dt.datetime) -> None:
        cutoff = now - self.OVERLAP * 2
        if len(self._usage_seen) > 10_000:
            self._usage_seen = {i: t for i, t in self._usage_seen.items() if t >= cutoff}
        stale = [k for k, t in self._usage_touched.items() if t < now - self.USAGE_HORIZON]
        for org_id, key in stale:
            del self._usage_touched[(org_id, key)]
            self._usage.get(org_id, {}).pop(key, None)
