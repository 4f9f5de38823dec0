"""What the rules know beyond the request: usage totals, approval history, and approvals presented with a check.

The decision path reads memory only: usage totals per (organisation, rule, person, period) and, per
resource, who approved it (newest first). Both are loaded from the database at start and refreshed
every `refresh_interval` with what other replicas recorded; a replica's own writes are in its memory at
once. The database is reached on the decision path only for a check that presents an approval
(`approval_id`): a primary-key read of it, and, when the decision is allowed thanks to it, the conditional
update that takes one of its uses (`consume`), in one transaction with the event that names the decision.

Usage amounts are exact decimals, positive and finite; a correction is a reversal of one earlier entry (its
opposite, naming it), so a total is a sum of positive entries less some of them: never below zero, never
infinite. Totals are decimals too; the rules engine compares floats, so they become floats only where the
rules read them (`Facts.usage`).
"""

from __future__ import annotations

import bisect
import datetime as dt
import decimal
import json
import logging
import threading
import time
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dutyline.engines.binding import ApprovalTerms, Presented, present
from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.decision import Check, Decision
from dutyline.engines.rules import CompiledRules, Facts, period_key
from dutyline.errors import Conflict, Invalid, Issue, NotFound
from dutyline.orgmodel.windows import moment
from dutyline.rulemodel import document as rm
from dutyline.services.decisions import FactsProvider, Question
from dutyline.services.policies import PolicyService
from dutyline.services.shapes import Shape
from dutyline.store import approvals as approval_store
from dutyline.store import events
from dutyline.store import usage as usage_store
from dutyline.store.tables import ApprovalRow, UsageRow

log = logging.getLogger("dutyline.ledger")

UsageKey = tuple[str, str, str]  # (rule, person, period)
ResourceKey = tuple[str, str | None]  # (resource type, resource id)

ZERO = Decimal(0)
# What an amount may be: the usage column holds NUMERIC(36, 18) (store.tables.ExactDecimal).
MAX_DIGITS = 18
MAX_AMOUNT = Decimal(10) ** 18
MAX_DECIMALS = 18
# Totals are sums of such amounts: with 60 digits no sum of them is ever rounded, and a sum that would be is an
# error (Inexact is trapped), not a silently different total.
_EXACT = decimal.Context(prec=60, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])


@dataclass(frozen=True, slots=True)
class Recorded:
    id: int
    organisation: str
    rule: str
    person: str
    period: str
    amount: Decimal  # negative for a reversal
    total: Decimal
    used_at: dt.datetime
    recorded_at: dt.datetime
    reverses: int | None = None


class UsageRecorded(Shape):
    """A ledger entry; amounts and totals are exact decimals, sent as JSON numbers as written."""

    id: int
    organisation: str
    rule: str
    person: str
    period: str
    amount: Decimal  # negative for a reversal
    total: Decimal
    used_at: str
    recorded_at: str
    reverses: int | None  # the entry this one reverses


class UsageTotal(Shape):
    organisation: str
    rule: str
    person: str
    period: str
    total: Decimal


def find_rule(rules: CompiledRules | None, rule_id: str) -> rm.Rule | None:
    """A rule of an organisation's compiled rule packs by id (None if no pack has it, or it is disabled)."""
    if rules is None:
        return None
    for compiled in rules.index.values():
        for entry in compiled:
            if entry.rule.id == rule_id:
                return entry.rule
    return None


def _bad_amount(message: str) -> Invalid:
    return Invalid(f"amount: {message}", [Issue("<request>", 0, "amount", message)])


def parse_amount(value: object) -> Decimal:
    """A usage amount as the ledger keeps it: a JSON number (exact, as written), finite and positive, with at most
    18 significant digits, below 10^18 and at most 18 decimals; Invalid naming `amount` otherwise. Corrections are
    reversals (`reverses`), never negative amounts."""
    if isinstance(value, bool):
        raise _bad_amount(f"must be a number, not {str(value).lower()}")
    if isinstance(value, str):
        raise _bad_amount("must be a JSON number, not text")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(repr(value))
    elif isinstance(value, Decimal):
        amount = value
    else:
        raise _bad_amount("must be a number")
    if not amount.is_finite():
        raise _bad_amount("must be finite")
    if amount <= 0:
        raise _bad_amount("must be positive (to correct an entry, reverse it: `reverses`)")
    if amount >= MAX_AMOUNT:
        raise _bad_amount("must be below 10^18")
    _, digits, exponent = amount.normalize().as_tuple()
    if len(digits) > MAX_DIGITS:
        raise _bad_amount(f"at most {MAX_DIGITS} significant digits")
    if isinstance(exponent, int) and exponent < -MAX_DECIMALS:
        raise _bad_amount(f"at most {MAX_DECIMALS} decimal places")
    return amount


def terms_of(row: ApprovalRow) -> ApprovalTerms:
    """What the decision path needs to know of a stored approval."""
    limits = json.loads(row.limits or "{}")
    return ApprovalTerms(
        id=row.id,
        organisation=row.organisation,
        status=row.status,
        requester=row.requester,
        rules=tuple(json.loads(row.rules)),
        digest=row.digest,
        bound=row.bound,
        limits={path: None if value is None else Decimal(value) for path, value in limits.items()},
        uses=row.uses,
        uses_left=row.uses_left,
        expires_at=row.expires_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
    )


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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
        self._usage: dict[str, dict[UsageKey, Decimal]] = {}
        self._usage_seen: dict[int, dt.datetime] = {}  # row id → recorded_at
        self._usage_touched: dict[tuple[str, UsageKey], dt.datetime] = {}
        self._history_entries: dict[str, dict[ResourceKey, list[tuple[float, str, str]]]] = {}
        self._history: dict[str, dict[ResourceKey, tuple[str, ...]]] = {}
        self._history_seen: set[str] = set()
        self._facts: dict[str, Facts] = {}
        self._watermark: dt.datetime | None = None
        self._generation = 0  # grows with every usage or approval added: a listing that read facts is kept until then

    @property
    def generation(self) -> int:
        return self._generation

    # --- the decision path ---------------------------------------------------------------------------

    def facts_for(self, org: CompiledOrg, question: Question, check: Check) -> Facts:
        facts = self._facts.get(org.id)
        if facts is None:
            facts = self._facts.setdefault(org.id, self._facts_of(org.id))
        return facts

    def _facts_of(self, org_id: str) -> Facts:
        usage = self._usage.setdefault(org_id, {})
        history = self._history.setdefault(org_id, {})

        def used(rule: str, person: str, period: str) -> float:
            return float(usage.get((rule, person, period), ZERO))  # the rules engine compares floats

        def approvers(resource_type: str, resource_id: str | None) -> tuple[str, ...]:
            return history.get((resource_type, resource_id), ())

        return Facts(usage=used, approvals=approvers)

    def presented(
        self, org: CompiledOrg, rules: CompiledRules | None, question: Question, check: Check, decision: Decision
    ) -> Presented:
        """The approval a check presents, judged against it (`engines.binding.present`): a primary-key read."""
        assert question.approval_id is not None
        approval_id = question.approval_id
        try:
            with self._sessions() as session:
                row = approval_store.get(session, approval_id)
                terms = terms_of(row) if row is not None else None
        except Exception:  # the database may be down: decide as if no approval were presented
            log.warning("could not read approval %s", approval_id, exc_info=True)
            return Presented(approval_id).refused(
                f"审批 {approval_id} 暂时无法读取",
                f"approval {approval_id} could not be read (the database is unavailable)",
            )
        return present(org, rules, check, decision, approval_id, terms, _utcnow())

    def consume(self, presented: Presented, decision_id: str) -> Presented | None:
        """Take one use of a presented approval for the decision `decision_id`, with the event that names it, in
        one transaction; None when no use was left to take (a concurrent presentation took the last one, it
        expired meanwhile, or the database could not be reached)."""
        terms = presented.terms
        assert terms is not None
        now = _utcnow()
        try:
            with self._sessions.begin() as session:
                taken = approval_store.use(session, terms.id, now)
                if taken is None:
                    return None
                revision, uses_left = taken
                events.add(
                    session,
                    approval_store.ENTITY,
                    terms.id,
                    revision,
                    "used",
                    now,
                    terms.requester,
                    comment=f"decision {decision_id}",
                )
        except Exception:
            log.warning("could not take a use of approval %s", terms.id, exc_info=True)
            return None
        return presented.consumed(uses_left)

    # --- usage ---------------------------------------------------------------------------------------

    def record_usage(
        self,
        org: CompiledOrg,
        rules: CompiledRules | None,
        person: str,
        rule_id: str,
        amount: Decimal | None,
        at: float,
        decision_id: str | None = None,
        reverses: int | None = None,
    ) -> Recorded:
        """Store usage the caller's system executed (`amount`, checked by `parse_amount`), or the reversal of the
        entry `reverses` (of the same organisation, rule and person; `amount`, if given, must be its amount), and
        add it to this replica's totals at once."""
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
        if amount is not None:
            amount = parse_amount(amount)
        elif reverses is None:
            raise Invalid(
                "Object missing required field `amount` (or `reverses`, to reverse an entry)",
                [Issue("<request>", 0, "amount", "required")],
            )
        now = _utcnow()
        try:
            with self._sessions.begin() as session:
                if reverses is None:
                    assert amount is not None
                    period = period_key(rule.period, at, org.document.timezone)
                    used_at = dt.datetime.fromtimestamp(at, dt.UTC)
                    row = usage_store.insert(session, org.id, rule_id, who, period, amount, used_at, now, decision_id)
                else:
                    row = self._reverse(session, org, rule_id, who, amount, reverses, now, decision_id)
                recorded = (row.id, row.period, row.amount, row.used_at)
        except IntegrityError:  # ix_usage_reverses: another reversal of the same entry committed first
            raise Conflict(f"usage entry {reverses} is already reversed") from None
        row_id, period, stored, used_at = recorded
        with self._lock:
            self._add_usage(row_id, org.id, rule_id, who, period, stored, now)
            total = self._usage[org.id].get((rule_id, who, period), ZERO)
        return Recorded(row_id, org.id, rule_id, who, period, stored, total, used_at, now, reverses)

    def _reverse(
        self,
        session: Session,
        org: CompiledOrg,
        rule_id: str,
        person: str,
        amount: Decimal | None,
        entry_id: int,
        now: dt.datetime,
        decision_id: str | None,
    ) -> UsageRow:
        """The reversal of entry `entry_id`: its opposite, in its period, naming it."""
        original = usage_store.get(session, entry_id)
        if original is None or original.organisation != org.id:
            raise NotFound(f"usage entry {entry_id} not found in {org.id!r}")
        if original.reverses is not None:
            raise Conflict(
                f"usage entry {entry_id} is itself the reversal of entry {original.reverses}; it cannot be reversed"
            )
        if (original.rule, original.person) != (rule_id, person):
            raise Invalid(
                f"reverses: usage entry {entry_id} is {original.person}'s usage of {original.rule}, "
                f"not {person}'s of {rule_id}",
                [Issue("<request>", 0, "reverses", "an entry of the same rule and person")],
            )
        if amount is not None and amount != original.amount:
            was, given = format(original.amount, "f"), format(amount, "f")
            raise _bad_amount(f"a reversal's amount is the reversed entry's ({was}), not {given}")
        if original.recorded_at < now - self.USAGE_HORIZON + self.OVERLAP:
            raise Conflict(
                f"usage entry {entry_id} was recorded more than {self.USAGE_HORIZON.days} days ago: "
                "no total counts it any more"
            )
        done = usage_store.reversal_of(session, entry_id)
        if done is not None:
            raise Conflict(f"usage entry {entry_id} is already reversed (by entry {done.id})")
        return usage_store.insert(
            session,
            org.id,
            rule_id,
            person,
            original.period,
            -original.amount,
            original.used_at,
            now,
            decision_id,
            reverses=entry_id,
        )

    def organisation(self, org_id: str) -> CompiledOrg:
        org = self._policies.current.get(org_id)
        if org is None:
            raise NotFound(f"organisation {org_id!r} not found")
        return org

    def record(
        self,
        org: CompiledOrg,
        person: str,
        rule_id: str,
        amount: Decimal | None,
        at: str | None,
        decision_id: str | None = None,
        reverses: int | None = None,
    ) -> UsageRecorded:
        """`record_usage` with the organisation's rule packs now, at `at` in its time zone (default now)."""
        instant = time.time() if at is None else moment(at, org.document.timezone)
        rules = self._policies.current.rules.get(org.id)
        r = self.record_usage(org, rules, person, rule_id, amount, instant, decision_id, reverses)
        return UsageRecorded(
            r.id,
            r.organisation,
            r.rule,
            r.person,
            r.period,
            r.amount,
            r.total,
            r.used_at.isoformat(),
            r.recorded_at.isoformat(),
            r.reverses,
        )

    def total(self, org_id: str, person: str, rule_id: str, at: str | None) -> UsageTotal:
        """A person's total against a cumulative limit in the period `at` (default now) falls in."""
        org = self.organisation(org_id)
        who = org.identities.get(person)
        if who is None:
            raise NotFound(f"person {person!r} not found in {org_id!r}")
        found = find_rule(self._policies.current.rules.get(org.id), rule_id)
        if not isinstance(found, rm.Limit) or found.period is None:
            raise NotFound(f"no limit with a period called {rule_id!r} in the rule packs of {org_id!r}")
        instant = time.time() if at is None else moment(at, org.document.timezone)
        period = period_key(found.period, instant, org.document.timezone)
        return UsageTotal(org.id, rule_id, who, period, self.usage_total(org.id, rule_id, who, period))

    def usage_total(self, org_id: str, rule_id: str, person: str, period: str) -> Decimal:
        return self._usage.get(org_id, {}).get((rule_id, person, period), ZERO)

    def _add_usage(
        self, row_id: int, org_id: str, rule: str, person: str, period: str, amount: Decimal, recorded_at: dt.datetime
    ) -> None:
        if row_id in self._usage_seen:
            return
        self._usage_seen[row_id] = recorded_at
        self._generation += 1
        totals = self._usage.setdefault(org_id, {})
        key = (rule, person, period)
        totals[key] = _EXACT.add(totals.get(key, ZERO), amount)
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
        self._generation += 1
        key = (row.resource_type, row.resource_id)
        entries = self._history_entries.setdefault(row.organisation, {}).setdefault(key, [])
        bisect.insort(entries, (-row.decided_at.timestamp(), row.id, row.decided_by))
        del entries[self.HISTORY_DEPTH :]
        self._history.setdefault(row.organisation, {})[key] = tuple(who for _, _, who in entries)

    # --- refresh -------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read what was recorded since the last refresh (with an overlap) and add what is new."""
        started = dt.datetime.now(dt.UTC)
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
