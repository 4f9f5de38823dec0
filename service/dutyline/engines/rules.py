"""Business rules on top of the duty grant: compile rule packs, decide which fire, combine into a verdict.

Each rule becomes one durable_rules ruleset (through `rulehost`, the only module that touches
durable_rules) whose condition reads a small flat event this module builds from the request, the org
model and the facts (usage totals, approval history). Rules are indexed by (resource type, action): a
request that no rule mentions never reaches the rules engine.

Combination: a duty deny stays a deny; among the rules that fire, a deny wins, then needs_approval (with
the approver chain up the reporting line); notifications become obligations of an allowed decision.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.decision import Check, Decision
from dutyline.engines.queries import Holder, holders_of
from dutyline.engines.rulehost import RuleHost, condition_json
from dutyline.expressions import Expression, parse
from dutyline.orgmodel.document import Names
from dutyline.orgmodel.windows import zone
from dutyline.rulemodel import document as rm

Effect = Literal["deny", "needs_approval", "notify"]
_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def flat_key(path: tuple[str, ...]) -> str:
    """The event field a condition path reads: ("resource", "owner") → "resource__owner"."""
    return "__".join(path)


@dataclass(frozen=True, slots=True)
class Facts:
    """What the decision may know beyond the request: read from the service's in-memory ledgers."""

    usage: Callable[[str, str, str], float] = lambda rule, person, period: 0.0  # noqa: E731
    approvals: Callable[[str, str | None], Sequence[str]] = lambda resource, rid: ()  # noqa: E731
    approved: frozenset[str] = frozenset()  # rule ids an approval presented with the check covers


NO_FACTS = Facts()


@dataclass(frozen=True, slots=True)
class ApproverStep:
    post: str
    people: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RuleHit:
    rule: str
    kind: str
    effect: Effect
    message: Names
    approvers: tuple[ApproverStep, ...] = ()
    notify: tuple[str, ...] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The final decision: the duty decision, the rules that fired, approvers and obligations."""

    outcome: Literal["allow", "deny", "needs_approval"]
    decision: Decision
    hits: tuple[RuleHit, ...] = ()
    approvers: tuple[ApproverStep, ...] = ()
    notify: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.outcome == "allow"


InputRole = Literal["amount", "currency", "party", "level", "value"]


@dataclass(frozen=True, slots=True)
class Input:
    """One attribute a rule reads, and what it is to the rule: an `amount` a limit bounds, the `currency` it is
    in, a `party` (a person: maker, requester, second person), a risk `level`, or any other `value` a
    condition reads."""

    path: str
    role: InputRole


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One rule ready to run: its ruleset name and condition, and how to build its event."""

    rule: rm.Rule
    name: str  # logical ruleset name in the rule host
    condition: Mapping[str, Any] | None  # None: fires whenever it applies (no condition to test)
    expressions: tuple[Expression, ...] = ()
    inputs: tuple[Input, ...] = ()  # every attribute the rule reads (the approval binding digests them)


@dataclass(slots=True)
class CompiledRules:
    org: str
    index: dict[tuple[str, str], tuple[CompiledRule, ...]]
    case_types: dict[str, rm.CaseType]
    rulesets: dict[str, Mapping[str, Any]]  # name → condition, for RuleHost.load

    def for_request(self, resource: str, action: str) -> tuple[CompiledRule, ...]:
        return self.index.get((resource, action), ())


def compile_rules(packs: Iterable[rm.RulePack], org: CompiledOrg) -> CompiledRules:
    """Compile every enabled rule of an organisation's packs against its org model."""
    index: dict[tuple[str, str], list[CompiledRule]] = {}
    rulesets: dict[str, Mapping[str, Any]] = {}
    case_types: dict[str, rm.CaseType] = {}
    leaves = _leaves(org)
    for pack in packs:
        for case_type in pack.case_types:
            case_types[case_type.id] = case_type
        for rule in pack.rules:
            if not rule.enabled:
                continue
            compiled = _compile_rule(org.id, rule)
            if compiled.condition is not None:
                rulesets[compiled.name] = compiled.condition
            for resource in rule.applies_to.resources:
                for leaf in leaves.get(resource, (resource,)):
                    actions = org.action_order.get(leaf, ())
                    chosen = actions if rule.applies_to.actions == "*" else [a for a in rule.applies_to.actions if a in actions]
                    for action in chosen:
                        index.setdefault((leaf, action), []).append(compiled)
    return CompiledRules(org.id, {k: tuple(v) for k, v in index.items()}, case_types, rulesets)


def _leaves(org: CompiledOrg) -> dict[str, tuple[str, ...]]:
    groups = {g.id: g.members for g in org.document.catalogue.groups}

    def expand(ref: str, seen: frozenset[str]) -> tuple[str, ...]:
        if ref not in groups or ref in seen:
            return (ref,)
        out: list[str] = []
        for member in groups[ref]:
            out += [x for x in expand(member, seen | {ref}) if x not in out]
        return tuple(out)

    return {g: expand(g, frozenset()) for g in groups}


def _compile_rule(org: str, rule: rm.Rule) -> CompiledRule:
    compiled = _compile_condition(org, rule)
    return replace(compiled, inputs=inputs_of(rule, compiled.expressions))


def inputs_of(rule: rm.Rule, expressions: tuple[Expression, ...] = ()) -> tuple[Input, ...]:
    """The attributes a rule reads, in a stable order."""
    if isinstance(rule, rm.Limit):
        return (Input(rule.attribute, "amount"),) + ((Input("context.currency", "currency"),) if rule.currency else ())
    if isinstance(rule, rm.Separation):
        if rule.check == "four_eyes":
            return ()
        return (Input(rule.maker if rule.check == "maker_checker" else rule.requester, "party"),)
    if isinstance(rule, rm.DualControl):
        return (Input(rule.second_person, "party"),)
    if isinstance(rule, rm.Suitability):
        return (Input(rule.risk, "level"), Input(rule.tolerance, "level"))
    paths = sorted({".".join(p) for e in expressions for p in e.paths()})
    return tuple(Input(p, "value") for p in paths)


def _compile_condition(org: str, rule: rm.Rule) -> CompiledRule:
    name = f"{org}.{rule.id}"
    if isinstance(rule, rm.Limit):
        return CompiledRule(rule, name, {"$gt": {"amount": {"$m": "limit"}}})
    if isinstance(rule, rm.Separation):
        if rule.check == "four_eyes":
            return CompiledRule(rule, name, {"$gte": {"streak": {"$m": "needed"}}})
        return CompiledRule(rule, name, {"other": {"$m": "subject"}})
    if isinstance(rule, rm.DualControl):
        return CompiledRule(rule, name, {"ok": 0})
    if isinstance(rule, rm.Suitability):
        return CompiledRule(rule, name, {"$gt": {"risk": {"$m": "tolerance"}}})
    if isinstance(rule, rm.TimeWindow):
        outside = []
        for window in rule.windows:
            off_day = [{"$neq": {"day": d}} for d in window.days]
            outside.append(
                {"$or": [{"$and": off_day}, {"$lt": {"minute": _minute(window.start)}}, {"$gte": {"minute": _minute(window.end)}}]}
            )
        return CompiledRule(rule, name, {"$and": outside})
    if isinstance(rule, rm.Requirement):
        expression = parse(f"({rule.when}) and not ({rule.require})")
        return CompiledRule(rule, name, condition_json(expression, flat_key), (expression,))
    if isinstance(rule, (rm.Notification, rm.ConditionRule)):
        expression = parse(rule.when)
        if expression.text.strip() == "true":
            return CompiledRule(rule, name, None, (expression,))
        return CompiledRule(rule, name, condition_json(expression, flat_key), (expression,))
    raise TypeError(f"unknown rule kind {type(rule).__name__}")


def _minute(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def apply_rules(
    host: RuleHost, org: CompiledOrg, rules: CompiledRules | None, check: Check, decision: Decision, facts: Facts = NO_FACTS
) -> Verdict:
    """The verdict for a request whose duty decision is `decision`."""
    if not decision.allowed or rules is None:
        return Verdict(decision.outcome, decision)
    relevant = rules.for_request(check.resource_type, check.action)
    if not relevant:
        return Verdict("allow", decision)
    posts = tuple(dict.fromkeys(b.post for b in decision.allowed_by))
    environment: dict[str, Any] = {}
    hits: list[RuleHit] = []
    for compiled in relevant:
        if compiled.rule.applies_to.posts and not set(compiled.rule.applies_to.posts) & set(posts):
            continue
        hit = _run(host, org, compiled, check, decision, posts, facts, environment)
        if hit is not None and not (hit.effect == "needs_approval" and hit.rule in facts.approved):
            hits.append(hit)
    denies = [h for h in hits if h.effect == "deny"]
    decisive = tuple(h for h in hits if h.effect != "notify")  # notifications are obligations of an allow only
    if denies:
        return Verdict("deny", decision, decisive)
    approvals = [h for h in hits if h.effect == "needs_approval"]
    if approvals:
        chain: list[ApproverStep] = []
        for h in approvals:
            chain += [step for step in h.approvers if step not in chain]
        if any(not h.approvers for h in approvals):
            # Nobody up the line may approve it: beyond everyone's authority (严禁越权办理业务) is a deny.
            return Verdict("deny", decision, decisive, tuple(chain))
        return Verdict("needs_approval", decision, decisive, tuple(chain))
    notify = tuple(dict.fromkeys(p for h in hits for p in h.notify))
    return Verdict("allow", decision, tuple(hits), (), notify)


def _run(
    host: RuleHost,
    org: CompiledOrg,
    compiled: CompiledRule,
    check: Check,
    decision: Decision,
    posts: tuple[str, ...],
    facts: Facts,
    environment: dict[str, Any],
) -> RuleHit | None:
    rule = compiled.rule
    person = decision.subject
    message = rule.message or rule.name
    if isinstance(rule, rm.Limit):
        if rule.currency is not None and _value(check, "context.currency") not in (None, rule.currency):
            return None
        limit = _limit_of(rule, posts)
        if limit is None:
            return None
        amount = _value(check, rule.attribute)
        if not _is_number(amount):
            # A limited action must state its amount; without one nobody can tell it is within the limit.
            return RuleHit(rule.id, "limit", "needs_approval", message, _approvers(org, rule, posts, person, check.at, math.inf),
                           detail={"reason": f"{rule.attribute} missing or not a number"})
        total = float(amount)
        if rule.period is not None:
            total += facts.usage(rule.id, person, period_key(rule.period, check.at, org.document.timezone))
        if not host.fires(compiled.name, {"amount": total, "limit": float(limit)}):
            return None
        return RuleHit(rule.id, "limit", "needs_approval", message, _approvers(org, rule, posts, person, check.at, total),
                       detail={"amount": total, "limit": limit, "period": rule.period})
    if isinstance(rule, rm.Separation):
        if rule.check == "four_eyes":
            history = facts.approvals(check.resource_type, check.resource_id)
            needed = rule.history - 1
            streak = 0
            for approver in history[:needed]:
                if approver != person:
                    break
                streak += 1
            fired = needed > 0 and host.fires(compiled.name, {"streak": streak, "needed": needed})
            return RuleHit(rule.id, "separation", "deny", message, detail={"history": list(history[:needed])}) if fired else None
        path = rule.maker if rule.check == "maker_checker" else rule.requester
        other = _value(check, path)
        if not isinstance(other, str):
            return None
        other = org.identities.get(other, other)
        if host.fires(compiled.name, {"other": other, "subject": person}):
            return RuleHit(rule.id, "separation", "deny", message, detail={path: other})
        return None
    if isinstance(rule, rm.DualControl):
        second = _value(check, rule.second_person)
        second_id = org.identities.get(second) if isinstance(second, str) else None
        ok = second_id is not None and second_id != person and any(
            h.person == second_id for post in rule.posts for h in holders_of(org, post, check.at)
        )
        if host.fires(compiled.name, {"ok": 1 if ok else 0}):
            return RuleHit(rule.id, "dual_control", "deny", message, detail={"second_person": second})
        return None
    if isinstance(rule, rm.Suitability):
        risk, tolerance = _value(check, rule.risk), _value(check, rule.tolerance)
        # Unknown risk or unknown tolerance fails closed: nothing is suitable until both are assessed.
        event = {
            "risk": float(risk) if _is_number(risk) else 1.0,
            "tolerance": float(tolerance) if _is_number(tolerance) else -1.0,
        }
        if host.fires(compiled.name, event):
            return RuleHit(rule.id, "suitability", "deny", message, detail={"risk": risk, "tolerance": tolerance})
        return None
    if isinstance(rule, rm.TimeWindow):
        local = dt.datetime.fromtimestamp(check.at, zone(org.document.timezone))
        event = {"day": _DAYS[local.weekday()], "minute": local.hour * 60 + local.minute}
        if host.fires(compiled.name, event):
            return RuleHit(rule.id, "time_window", "deny", message, detail={"local_time": local.isoformat(timespec="minutes")})
        return None
    # requirement, notification, condition: expressions over the request's attributes
    if compiled.condition is not None:
        if not environment:
            environment.update(flat_event(org, check, decision, posts))
        if not host.fires(compiled.name, environment):
            return None
    if isinstance(rule, rm.Notification):
        return RuleHit(rule.id, "notification", "notify", message, notify=_notified(org, rule, posts))
    effect = rule.otherwise if isinstance(rule, rm.Requirement) else rule.effect  # type: ignore[union-attr]
    approvers: tuple[ApproverStep, ...] = ()
    if effect == "needs_approval":
        approvers = _named_approvers(org, rule.approver, posts, person, check.at)  # type: ignore[union-attr]
    return RuleHit(rule.id, kind_of(rule), effect, message, approvers)


def kind_of(rule: rm.Rule) -> str:
    """The rule's `kind` as written in the pack (the struct's tag)."""
    return str(type(rule).__struct_config__.tag)


def flat_event(org: CompiledOrg, check: Check, decision: Decision, posts: tuple[str, ...]) -> dict[str, Any]:
    """The request's attributes as one flat event: ("context", "amount") → "context__amount"."""
    subject = {**(check.subject_properties or {}), **org.person_attributes.get(decision.subject, {})}
    subject["id"] = decision.subject
    subject["posts"] = list(posts)
    subject["departments"] = departments_of(org, posts)
    subject["acting"] = any(b.assignment is not None and b.assignment.kind == "acting" for b in decision.allowed_by)
    stored = org.instances.get((check.resource_type, check.resource_id or ""), {})
    resource = {**(check.resource_properties or {}), **stored, "id": check.resource_id, "type": check.resource_type}
    out: dict[str, Any] = {}
    for root, values in (("subject", subject), ("resource", resource), ("action", {"name": check.action}), ("context", check.context or {})):
        _flatten(out, (root,), values)
    return out


def departments_of(org: CompiledOrg, posts: Iterable[str]) -> list[str]:
    """The departments of the posts a subject acts through."""
    return list(dict.fromkeys(org.post_departments[p] for p in posts if p in org.post_departments))


def _flatten(out: dict[str, Any], prefix: tuple[str, ...], values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping):
            _flatten(out, path, value)
        elif value is not None:
            out[flat_key(path)] = value


def _value(check: Check, path: str) -> Any:
    root, *names = path.split(".")
    source: Any
    if root == "context":  # the usual case (amounts, currencies): no merged dictionaries to build
        source = check.context
    elif root == "resource":
        source = {**(check.resource_properties or {}), "id": check.resource_id, "type": check.resource_type}
    elif root == "subject":
        source = {**(check.subject_properties or {}), "id": check.subject_id}
    else:
        return None
    for name in names:
        if not isinstance(source, Mapping):
            return None
        source = source.get(name)
    return source


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _limit_of(rule: rm.Limit, posts: Iterable[str]) -> float | None:
    """The subject's limit: the highest limit among the posts it acts through; None when one has no limit."""
    best: float | None = -math.inf
    for post in posts:
        limit = rule.limits.get(post, rule.default)
        if limit is None:
            return None
        best = max(best, float(limit))  # type: ignore[type-var]
    return None if best == -math.inf else best


def period_key(period: str, at: float, timezone: str) -> str:
    """The ledger bucket a moment falls in: 2026-07-06, 2026-W28, 2026-07."""
    local = dt.datetime.fromtimestamp(at, zone(timezone))
    if period == "day":
        return local.date().isoformat()
    if period == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{local.year}-{local.month:02d}"


def _eligible(org: CompiledOrg, post: str, at: float, requester: str) -> tuple[str, ...]:
    holders: tuple[Holder, ...] = holders_of(org, post, at)
    return tuple(dict.fromkeys(h.person for h in holders if h.person != requester))


def _approvers(org: CompiledOrg, rule: rm.Limit, posts: tuple[str, ...], requester: str, at: float, needed: float) -> tuple[ApproverStep, ...]:
    """Up the reporting line from the requester's posts: every superior post whose limit covers `needed`,
    nearest first, skipping vacant posts and the requester; acting holders count inside their window."""
    chain: list[ApproverStep] = []
    for start in posts:
        seen = {start}
        current = org.superiors.get(start)
        while current is not None and current not in seen:
            seen.add(current)
            limit = rule.limits.get(current, rule.default)
            if limit is None or float(limit) >= needed:
                people = _eligible(org, current, at, requester)
                step = ApproverStep(current, people)
                if people and step not in chain:
                    chain.append(step)
            current = org.superiors.get(current)
    return tuple(chain)


def _named_approvers(org: CompiledOrg, post: str | None, posts: tuple[str, ...], requester: str, at: float) -> tuple[ApproverStep, ...]:
    """The named approver post (or, without one, the first superior post with someone to approve)."""
    if post is not None:
        people = _eligible(org, post, at, requester)
        chain = [ApproverStep(post, people)] if people else []
        current = org.superiors.get(post)
    else:
        chain, current = [], None
        for start in posts:
            current = org.superiors.get(start)
            if current is not None:
                break
    seen = {c.post for c in chain}
    while current is not None and current not in seen and not chain:
        seen.add(current)
        people = _eligible(org, current, at, requester)
        if people:
            chain.append(ApproverStep(current, people))
        current = org.superiors.get(current)
    return tuple(chain)


def _notified(org: CompiledOrg, rule: rm.Notification, posts: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for target in rule.notify:
        if target == "superior":
            out += [s for p in posts if (s := org.superiors.get(p)) is not None]
        elif target == "department_heads":
            out += [d.head for d in org.document.departments if d.head is not None]
        elif target == "leadership":
            out += [p for p, s in org.superiors.items() if s is None]
        else:
            out.append(target)
    return tuple(dict.fromkeys(out))
