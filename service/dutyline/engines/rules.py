"""Business rules on top of the duty grant: compile rule packs, decide which fire, combine into a verdict.

Each rule becomes one condition of the rule backend (`rulehost`: durable_rules, the only package that touches it,
or the pure-Python reference), which reads a small flat event this module builds from the request, the org model
and the facts (usage totals, approval history). Rules are indexed by (resource type, action): a request that no rule mentions
never reaches the rules engine.

**Rules fail closed by construction.** Each rule declares the inputs it reads (`inputs_of`; for conditions,
every attribute path the expression reads, typed by how it is used or by the pack's `inputs`). Before a rule
asks the engine anything, its inputs are read through one reader (`engines/attributes.py`: what the
organisation stores wins over what the caller sends) and checked: a missing, ill-typed, non-finite,
out-of-range or oversized input, a currency the rule cannot compare, or a party who resolves to nobody makes the
rule answer its own restrictive effect (`RuleHit.problem` names the input) — never "the rule does not apply".
Only a condition's `exists(...)` test, or `optional: true` in the pack's `inputs`, lets an attribute be absent.

Combination: a duty deny stays a deny; among the rules that fire, a deny wins, then needs_approval (with the
approver chain up the reporting line); notifications become obligations of an allowed decision.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

from dutyline.engines.attributes import read, resolve_party, split
from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.decision import Check, Decision
from dutyline.engines.queries import Holder, holders_of
from dutyline.engines.rulehost import RuleBackend, condition_json
from dutyline.expressions import (
    Arithmetic,
    Call,
    Comparison,
    Constant,
    Expression,
    ListOf,
    Logical,
    Negate,
    Node,
    Not,
    Path,
    is_finite_number,
    parse,
)
from dutyline.orgmodel.document import Names
from dutyline.orgmodel.windows import zone
from dutyline.rulemodel import document as rm
from dutyline.rulemodel.currencies import currency_code
from dutyline.settings import Bounds

Effect = Literal["deny", "needs_approval", "notify"]
_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# Attributes every request has, built from the decision itself: never missing, never the caller's.
_BUILT_IN = frozenset(
    {
        ("subject", "id"),
        ("subject", "posts"),
        ("subject", "departments"),
        ("subject", "acting"),
        ("action", "name"),
        ("resource", "type"),
    }
)


def flat_key(path: tuple[str, ...]) -> str:
    """The event field a condition path reads: ("resource", "owner") → "resource__owner"."""
    return "__".join(path)


@dataclass(frozen=True, slots=True)
class Facts:
    """What the decision may know beyond the request: read from the service's in-memory ledgers."""

    usage: Callable[[str, str, str], float] = lambda rule, person, period: 0.0
    approvals: Callable[[str, str | None], Sequence[str]] = lambda resource, rid: ()
    approved: frozenset[str] = frozenset()  # rule ids an approval presented with the check covers


NO_FACTS = Facts()


@dataclass(frozen=True, slots=True)
class ApproverStep:
    post: str
    people: tuple[str, ...]


ProblemKind = Literal[
    "missing",  # absent or null
    "not_number",  # not a number (a bool is not one)
    "not_finite",  # NaN or an infinity
    "not_text",
    "not_boolean",
    "out_of_range",  # outside the pack's declared minimum / maximum
    "too_large",  # nested, long or big beyond the service's bounds
    "unknown_currency",  # not an ISO 4217 code
    "no_rate",  # a currency the limit has neither a limit nor a rate for
    "unknown_person",  # names nobody of the organisation (or several people)
]


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a rule could not read one of its inputs, and so answered its restrictive effect (fail closed)."""

    input: str  # the attribute path, e.g. "context.currency"
    kind: ProblemKind
    given: str = ""  # a short rendering of what the request held ("" when missing)


@dataclass(frozen=True, slots=True)
class Notice:
    """One post a notification goes to. `instead_of` names the post the rule named when that one is vacant at the
    moment decided (nobody holds it): the next post up the reporting line with someone in it is told instead, and
    `post` is None when there is nobody up the line either."""

    post: str | None
    instead_of: str | None = None


@dataclass(frozen=True, slots=True)
class RuleHit:
    rule: str
    kind: str
    effect: Effect
    message: Names
    approvers: tuple[ApproverStep, ...] = ()
    notify: tuple[str, ...] = ()  # the posts told (vacant ones replaced, see `notices`)
    detail: Mapping[str, Any] = field(default_factory=dict)
    problem: Problem | None = None  # set when the rule fired because an input was missing or unreadable
    notices: tuple[Notice, ...] = ()  # notifications: who is told, and for which vacant post


@dataclass(frozen=True, slots=True)
class Verdict:
    """The final decision: the duty decision, the rules that fired, approvers and obligations."""

    outcome: Literal["allow", "deny", "needs_approval"]
    decision: Decision
    hits: tuple[RuleHit, ...] = ()
    approvers: tuple[ApproverStep, ...] = ()
    notify: tuple[str, ...] = ()  # the posts an allowed decision tells, once each
    notices: tuple[Notice, ...] = ()  # the same with the vacancies they stand in for, once each

    @property
    def allowed(self) -> bool:
        return self.outcome == "allow"

    @property
    def code(self) -> str:
        """The machine-readable reason of the outcome, the one every answer and record states: the duty
        decision's (granted, no_grant, denied_by_duty, unknown_*, internal_error) when the rules left it as it
        was; `rule_denied` when a rule denies; `beyond_authority` when approval is needed and nobody up the line
        may give it; `needs_approval` otherwise."""
        if self.outcome == self.decision.outcome:
            return self.decision.code
        if self.outcome == "needs_approval":
            return "needs_approval"
        if any(h.effect == "deny" for h in self.hits):
            return "rule_denied"
        return "beyond_authority"


InputRole = Literal["amount", "currency", "party", "level", "value"]


@dataclass(frozen=True, slots=True)
class Input:
    """One attribute a rule reads, and what it is to the rule: an `amount` a limit bounds, the `currency` it is
    in, a `party` (a person: maker, requester, second person), a risk `level`, or any other `value` a
    condition reads."""

    path: str
    role: InputRole


@dataclass(frozen=True, slots=True)
class Required:
    """An attribute a condition reads, as it must be for the condition to be asked at all."""

    path: tuple[str, ...]
    type: rm.InputType = "any"
    optional: bool = False  # the condition tests it with exists(), or the pack says absence is allowed
    minimum: float | None = None
    maximum: float | None = None

    @property
    def name(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One rule ready to run: its ruleset name and condition, and how to build its event."""

    rule: rm.Rule
    name: str  # logical ruleset name in the rule host
    condition: Mapping[str, Any] | None  # None: fires whenever it applies (no condition to test)
    expressions: tuple[Expression, ...] = ()
    inputs: tuple[Input, ...] = ()  # every attribute the rule reads (the approval binding digests them)
    # Conditions only: what each attribute the condition reads must be, and its event fields.
    required: tuple[Required, ...] = ()
    built_ins: tuple[tuple[str, ...], ...] = ()  # the built-in attributes it reads (subject.id, subject.posts …)
    # Requirements only: the `when` part asked on its own first, so that what `require` reads is needed only
    # when the requirement applies (None: `when` is `true`).
    when: CompiledRule | None = None


@dataclass(slots=True)
class CompiledRules:
    org: str
    index: dict[tuple[str, str], tuple[CompiledRule, ...]]
    case_types: dict[str, rm.CaseType]
    rulesets: dict[str, Mapping[str, Any]]  # name → condition, for RuleBackend.load
    bounds: Bounds = field(default_factory=Bounds)

    def for_request(self, resource: str, action: str) -> tuple[CompiledRule, ...]:
        return self.index.get((resource, action), ())


def compile_rules(packs: Iterable[rm.RulePack], org: CompiledOrg, bounds: Bounds | None = None) -> CompiledRules:
    """Compile every enabled rule of an organisation's packs against its org model."""
    index: dict[tuple[str, str], list[CompiledRule]] = {}
    rulesets: dict[str, Mapping[str, Any]] = {}
    case_types: dict[str, rm.CaseType] = {}
    for pack in packs:
        for case_type in pack.case_types:
            case_types[case_type.id] = case_type
        for rule in pack.rules:
            if not rule.enabled:
                continue
            compiled = _compile_rule(org.id, rule, pack.inputs)
            for part in (compiled, compiled.when):
                if part is not None and part.condition is not None:
                    rulesets[part.name] = part.condition
            for resource in rule.applies_to.resources:
                for leaf in sorted(org.group_leaves.get(resource, (resource,))):
                    actions = org.action_order.get(leaf, ())
                    chosen = (
                        actions
                        if rule.applies_to.actions == "*"
                        else [a for a in rule.applies_to.actions if a in actions]
                    )
                    for action in chosen:
                        index.setdefault((leaf, action), []).append(compiled)
    return CompiledRules(org.id, {k: tuple(v) for k, v in index.items()}, case_types, rulesets, bounds or Bounds())


def _compile_rule(org: str, rule: rm.Rule, declared: Mapping[str, rm.InputSpec] | None = None) -> CompiledRule:
    compiled = _compile_condition(org, rule, declared or {})
    return replace(compiled, inputs=inputs_of(rule, compiled.expressions))


def inputs_of(rule: rm.Rule, expressions: tuple[Expression, ...] = ()) -> tuple[Input, ...]:
    """The attributes a rule reads, in a stable order."""
    return KINDS[type(rule)].inputs(rule, expressions)


def _expression_inputs(rule: rm.Rule, expressions: tuple[Expression, ...]) -> tuple[Input, ...]:
    paths = sorted({".".join(p) for e in expressions for p in e.paths()} - {".".join(p) for p in _BUILT_IN})
    return tuple(Input(p, "party" if _is_party(p, expressions) else "value") for p in paths)


def _is_party(path: str, expressions: tuple[Expression, ...]) -> bool:
    return any(required.type == "person" for e in expressions for required in _requirements(e) if required.name == path)


def _compile_condition(org: str, rule: rm.Rule, declared: Mapping[str, rm.InputSpec]) -> CompiledRule:
    return KINDS[type(rule)].compile(f"{org}.{rule.id}", rule, declared)


def _compile_time_window(name: str, rule: rm.TimeWindow, declared: Mapping[str, rm.InputSpec]) -> CompiledRule:
    outside = []
    for window in rule.windows:
        off_day = [{"$neq": {"day": d}} for d in window.days]
        outside.append(
            {
                "$or": [
                    {"$and": off_day},
                    {"$lt": {"minute": _minute(window.start)}},
                    {"$gte": {"minute": _minute(window.end)}},
                ]
            }
        )
    if not rule.holidays:
        return CompiledRule(rule, name, {"$and": outside})
    # On a holiday no window opens: the rule fires whatever the time.
    return CompiledRule(
        rule, name, {"$or": [{"$and": outside}, *({"date": day} for day in sorted(set(rule.holidays)))]}
    )


def _compile_requirement(name: str, rule: rm.Requirement, declared: Mapping[str, rm.InputSpec]) -> CompiledRule:
    expression = parse(f"({rule.when}) and not ({rule.require})")
    when = None
    if rule.when.strip() != "true":
        guard = parse(rule.when)
        when = _condition_rule(rule, f"{name}#when", guard, declared, guard)
    return replace(_condition_rule(rule, name, expression, declared, expression), when=when)


def _compile_when(
    name: str, rule: rm.Notification | rm.ConditionRule, declared: Mapping[str, rm.InputSpec]
) -> CompiledRule:
    expression = parse(rule.when)
    if expression.text.strip() == "true":
        return CompiledRule(rule, name, None, (expression,))
    return _condition_rule(rule, name, expression, declared, expression)


def _condition_rule(
    rule: rm.Rule, name: str, expression: Expression, declared: Mapping[str, rm.InputSpec], typed_by: Expression
) -> CompiledRule:
    required = tuple(_declared(r, declared.get(r.name)) for r in _requirements(typed_by))
    if isinstance(rule, rm.Notification):
        # A notification restricts nothing: what it reads may be absent (it then does not notify), and only a
        # value it cannot read at all (non-finite, too large) makes it notify, erring on the side of telling.
        required = tuple(Required(r.path, "any", True) for r in required)
    built_ins = tuple(sorted(p for p in expression.paths() if p in _BUILT_IN))
    return CompiledRule(
        rule, name, condition_json(expression, flat_key), (expression,), required=required, built_ins=built_ins
    )


def _declared(required: Required, spec: rm.InputSpec | None) -> Required:
    """What the pack declares about an attribute wins over what the condition's use of it suggests."""
    if spec is None:
        return required
    return Required(
        required.path,
        spec.type if spec.type != "any" else required.type,
        required.optional or spec.optional,
        None if spec.minimum is None else float(spec.minimum),
        None if spec.maximum is None else float(spec.maximum),
    )


# --- what a condition needs of the attributes it reads ----------------------------------------------------------


def _requirements(expression: Expression) -> list[Required]:
    """Each attribute path an expression reads (built-in ones aside), typed by how it is used: ordered or in
    arithmetic, a number (text when ordered against text); compared with `true`/`false`, a boolean; with a
    number or text constant, that; with `subject.id`, a person. A path the expression tests with exists() is
    optional. A path used in two incompatible ways is `any`."""
    uses: dict[tuple[str, ...], set[str]] = {}
    guarded: set[tuple[str, ...]] = set()
    _uses(expression.tree, uses, guarded)
    out = []
    for path in sorted(uses):
        if path in _BUILT_IN:
            continue
        types = uses[path] - {""}
        kind = cast("rm.InputType", next(iter(types))) if len(types) == 1 else "any"  # the kinds a use gives
        out.append(Required(path, kind, path in guarded))
    return out


def _path(node: Node) -> tuple[str, ...] | None:
    return (node.root, *node.names) if isinstance(node, Path) else None


def _constant_type(node: Node) -> str:
    if isinstance(node, Constant):
        value = node.value
        if isinstance(value, bool):
            return "boolean"
        if isinstance(value, (int, float)):
            return "number"
        if isinstance(value, str):
            return "text"
    return ""


def _uses(node: Node, uses: dict[tuple[str, ...], set[str]], guarded: set[tuple[str, ...]]) -> None:
    def use(sub: Node, kind: str) -> None:
        path = _path(sub)
        if path is not None:
            uses.setdefault(path, set()).add(kind)
        else:
            _uses(sub, uses, guarded)

    match node:
        case Path():
            use(node, "")
        case Call("exists", (argument,)):
            path = _path(argument)
            if path is not None:
                guarded.add(path)
                uses.setdefault(path, set()).add("")
        case Call(_, args):
            for argument in args:
                use(argument, "")
        case Not(operand):
            use(operand, "")
        case Negate(operand):
            use(operand, "number")
        case Logical(_, operands) | ListOf(operands):
            for operand in operands:
                use(operand, "")
        case Arithmetic(first, rest):
            use(first, "number")
            for _, operand in rest:
                use(operand, "number")
        case Comparison(op, left, right):
            if op in ("<", "<=", ">", ">="):
                use(left, "text" if _constant_type(right) == "text" else "number")
                use(right, "text" if _constant_type(left) == "text" else "number")
            elif op in ("==", "!="):
                for side, other in ((left, right), (right, left)):
                    kind = "person" if _path(other) == ("subject", "id") else _constant_type(other)
                    use(side, kind)
            else:  # in / not in
                items = right.items if isinstance(right, ListOf) else ()
                kinds = {_constant_type(item) for item in items}
                use(left, next(iter(kinds)) if len(kinds) == 1 and "" not in kinds else "")
                use(right, "")


_DAY_NAMES = {
    "mon": ("周一", "Mon"),
    "tue": ("周二", "Tue"),
    "wed": ("周三", "Wed"),
    "thu": ("周四", "Thu"),
    "fri": ("周五", "Fri"),
    "sat": ("周六", "Sat"),
    "sun": ("周日", "Sun"),
}


def _windows(rule: rm.TimeWindow) -> dict[str, str]:
    """The rule's windows as people read them, in both languages: 周一至周五 08:30–17:00 / Mon–Fri 08:30–17:00."""
    out: dict[str, list[str]] = {"zh": [], "en": []}
    for window in rule.windows:
        days = [d for d in _DAYS if d in window.days]
        consecutive = len(days) > 2 and _DAYS.index(days[-1]) - _DAYS.index(days[0]) == len(days) - 1
        for index, language in enumerate(("zh", "en")):
            names = [_DAY_NAMES[d][index] for d in days]
            joined = (
                (f"{names[0]}至{names[-1]}" if index == 0 else f"{names[0]}–{names[-1]}")
                if consecutive
                else ("、" if index == 0 else ", ").join(names)
            )
            out[language].append(f"{joined} {window.start}–{window.end}")
    return {language: "; ".join(parts) for language, parts in out.items()}


def _minute(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


# --- deciding ---------------------------------------------------------------------------------------------------


class _Request:
    """The attributes of one request, read once each through the one reader, with the built-in ones."""

    __slots__ = ("_cache", "check", "decision", "org", "posts", "subject")

    def __init__(self, org: CompiledOrg, check: Check, decision: Decision, posts: tuple[str, ...]) -> None:
        self.org, self.check, self.subject, self.posts, self.decision = org, check, decision.subject, posts, decision
        self._cache: dict[tuple[str, ...], Any] = {}

    def get(self, path: tuple[str, ...]) -> Any:
        try:
            return self._cache[path]
        except KeyError:
            pass
        if path == ("subject", "posts"):
            value: Any = list(self.posts)
        elif path == ("subject", "departments"):
            value = departments_of(self.org, self.posts)
        elif path == ("subject", "acting"):
            value = any(b.assignment is not None and b.assignment.kind == "acting" for b in self.decision.allowed_by)
        else:
            value = read(self.org, self.check, self.subject, path)
        self._cache[path] = value
        return value


def apply_rules(
    host: RuleBackend | None,
    org: CompiledOrg,
    rules: CompiledRules | None,
    check: Check,
    decision: Decision,
    facts: Facts = NO_FACTS,
) -> Verdict:
    """The verdict for a request whose duty decision is `decision`. Rules with no host to run them in are a bug the
    caller's fail-closed guard turns into a deny."""
    if not decision.allowed or rules is None:
        return Verdict(decision.outcome, decision)
    if host is None:
        raise RuntimeError(f"rules of {org.id} without a rule host to run them")
    relevant = rules.for_request(check.resource_type, check.action)
    if not relevant:
        return Verdict("allow", decision)
    posts = tuple(dict.fromkeys(b.post for b in decision.allowed_by))
    request = _Request(org, check, decision, posts)
    hits: list[RuleHit] = []
    for compiled in relevant:
        if compiled.rule.applies_to.posts and not set(compiled.rule.applies_to.posts) & set(posts):
            continue
        hit = _run(host, org, compiled, request, facts, rules.bounds)
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
    notices = tuple(dict.fromkeys(n for h in hits for n in h.notices))
    return Verdict("allow", decision, tuple(hits), (), notify, notices)


def _run(
    host: RuleBackend, org: CompiledOrg, compiled: CompiledRule, request: _Request, facts: Facts, bounds: Bounds
) -> RuleHit | None:
    return KINDS[type(compiled.rule)].run(host, org, compiled, request, facts, bounds)


def _time_window(
    host: RuleBackend, org: CompiledOrg, compiled: CompiledRule, request: _Request, facts: Facts, bounds: Bounds
) -> RuleHit | None:
    rule: rm.TimeWindow = compiled.rule  # type: ignore[assignment]
    local = dt.datetime.fromtimestamp(request.check.at, zone(org.document.timezone))
    event = {"day": _DAYS[local.weekday()], "minute": local.hour * 60 + local.minute, "date": local.date().isoformat()}
    if host.fires(compiled.name, event):
        detail = {
            "local_time": local.isoformat(timespec="minutes"),
            "time": local.strftime("%Y-%m-%d %H:%M"),
            "window": _windows(rule),
        }
        return _hit(rule, "deny", detail=detail)
    return None


def _hit(
    rule: rm.Rule,
    effect: Effect,
    approvers: tuple[ApproverStep, ...] = (),
    detail: Mapping[str, Any] | None = None,
    problem: Problem | None = None,
    notify: tuple[str, ...] = (),
) -> RuleHit:
    if problem is not None:
        detail = {**(detail or {}), "input": problem.input, "problem": problem.kind, "given": problem.given}
    return RuleHit(rule.id, kind_of(rule), effect, rule.message or rule.name, approvers, notify, detail or {}, problem)


def _limit(
    host: RuleBackend, org: CompiledOrg, compiled: CompiledRule, request: _Request, facts: Facts, bounds: Bounds
) -> RuleHit | None:
    rule: rm.Limit = compiled.rule  # type: ignore[assignment]
    limit = _limit_of(rule, request.posts)
    if limit is None:
        return None  # a post the subject acts through has no limit: nothing to bound
    person, at = request.subject, request.check.at
    raw = request.get(split(rule.attribute))
    amount, problem = _number(rule.attribute, raw, bounds)
    if problem is None and rule.currency is not None:
        given = request.get(("context", "currency"))
        code = currency_code(given)
        if given is None:
            problem = Problem("context.currency", "missing")
        elif code is None:
            problem = Problem("context.currency", "unknown_currency", _show(given))
        elif code != rule.currency:
            rate = rule.rates.get(code)
            if rate is None:
                problem = Problem("context.currency", "no_rate", code)
            else:
                amount *= rate
    if problem is not None:
        # Nobody can tell the request is within a limit: only a post with no limit may approve it.
        return _hit(rule, "needs_approval", _approvers(org, rule, request.posts, person, at, math.inf), problem=problem)
    total = abs(amount)
    if rule.period is not None:
        total += float(facts.usage(rule.id, person, period_key(rule.period, at, org.document.timezone)))
    if not host.fires(compiled.name, {"amount": total, "limit": float(limit)}):
        return None
    return _hit(
        rule,
        "needs_approval",
        _approvers(org, rule, request.posts, person, at, total),
        detail={"amount": total, "limit": limit, "period": rule.period, "currency": rule.currency},
    )


def _separation(
    host: RuleBackend, org: CompiledOrg, compiled: CompiledRule, request: _Request, facts: Facts, bounds: Bounds
) -> RuleHit | None:
    rule: rm.Separation = compiled.rule  # type: ignore[assignment]
    person, check = request.subject, request.check
    if rule.check == "four_eyes":
        history = facts.approvals(check.resource_type, check.resource_id)
        needed = rule.history - 1
        streak = 0
        for approver in history[:needed]:
            if approver != person:
                break
            streak += 1
        fired = needed > 0 and host.fires(compiled.name, {"streak": streak, "needed": needed})
        return _hit(rule, "deny", detail={"history": list(history[:needed])}) if fired else None
    path = rule.maker if rule.check == "maker_checker" else rule.requester
    other, problem = _party(request.org, path, request.get(split(path)), bounds)
    if problem is not None:
        return _hit(rule, "deny", problem=problem)
    if host.fires(compiled.name, {"other": other, "subject": person}):
        return _hit(rule, "deny", detail={path: other, "party": other})
    return None


def _dual_control(
    host: RuleBackend, org: CompiledOrg, compiled: CompiledRule, request: _Request, facts: Facts, bounds: Bounds
) -> RuleHit | None:
    rule: rm.DualControl = compiled.rule  # type: ignore[assignment]
    person, at = request.subject, request.check.at
    second, problem = _party(org, rule.second_person, request.get(split(rule.second_person)), bounds)
    if problem is not None:
        return _hit(rule, "deny", problem=problem)
    ok = second != person and any(h.person == second for post in rule.posts for h in holders_of(org, post, at))
    if host.fires(compiled.name, {"ok": 1 if ok else 0}):
        return _hit(rule, "deny", detail={"second_person": second})
    return None


def _suitability(
    host: RuleBackend, org: CompiledOrg, compiled: CompiledRule, request: _Request, facts: Facts, bounds: Bounds
) -> RuleHit | None:
    rule: rm.Suitability = compiled.rule  # type: ignore[assignment]
    # Unknown risk or unknown tolerance fails closed: nothing is suitable until both are assessed.
    risk, problem = _number(rule.risk, request.get(split(rule.risk)), bounds)
    if problem is None:
        tolerance, problem = _number(rule.tolerance, request.get(split(rule.tolerance)), bounds)
    if problem is not None:
        return _hit(rule, "deny", problem=problem)
    if host.fires(compiled.name, {"risk": risk, "tolerance": tolerance}):
        return _hit(rule, "deny", detail={"risk": risk, "tolerance": tolerance})
    return None


def _condition(
    host: RuleBackend, org: CompiledOrg, compiled: CompiledRule, request: _Request, facts: Facts, bounds: Bounds
) -> RuleHit | None:
    """Requirements, notifications and conditions: expressions over the request's attributes."""
    rule = compiled.rule
    if compiled.when is not None:  # a requirement applies only when its `when` holds
        event, problem = _event(org, compiled.when, request, bounds)
        if problem is None and not host.fires(compiled.when.name, event):
            return None
        if problem is not None:
            return _restrict(org, rule, request, problem)
    detail: dict[str, Any] = {}
    if compiled.condition is not None:
        event, problem = _event(org, compiled, request, bounds)
        if problem is not None:
            return _restrict(org, rule, request, problem)
        if not host.fires(compiled.name, event):
            return None
        # what was compared, for the record and the message's placeholders ({context.budget_remaining})
        detail = {r.name: event[flat_key(r.path)] for r in compiled.required if flat_key(r.path) in event}
    return _restrict(org, rule, request, None, detail)


def _restrict(
    org: CompiledOrg, rule: rm.Rule, request: _Request, problem: Problem | None, detail: dict[str, Any] | None = None
) -> RuleHit:
    """The hit of a condition-kind rule: its effect (a notification notifies: reporting errs on the side of
    telling too many)."""
    if isinstance(rule, rm.Notification):
        notices = _notices(org, _notified(org, rule, request.posts), request.check.at)
        told = tuple(dict.fromkeys(n.post for n in notices if n.post is not None))
        return replace(_hit(rule, "notify", detail=detail, problem=problem, notify=told), notices=notices)
    effect = rule.otherwise if isinstance(rule, rm.Requirement) else rule.effect  # type: ignore[union-attr]
    approvers: tuple[ApproverStep, ...] = ()
    if effect == "needs_approval":
        approvers = _named_approvers(org, rule.approver, request.posts, request.subject, request.check.at)  # type: ignore[union-attr]
    return _hit(rule, effect, approvers, detail=detail, problem=problem)


def _event(
    org: CompiledOrg, compiled: CompiledRule, request: _Request, bounds: Bounds
) -> tuple[dict[str, Any], Problem | None]:
    """The flat event a condition reads (only the attributes it reads), each checked against what it must be."""
    event: dict[str, Any] = {}
    for required in compiled.required:
        value, problem = _conform(org, required, request.get(required.path), bounds)
        if problem is not None:
            return event, problem
        if value is not None:
            event[flat_key(required.path)] = value
    for path in compiled.built_ins:
        event[flat_key(path)] = request.get(path)
    return event, None


# --- reading inputs: every way an attribute can be wrong ---------------------------------------------------------


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _too_large(value: Any, bounds: Bounds) -> bool:
    """Whether a value is nested, long or big beyond the bounds (walked with an early stop, never whole)."""
    if isinstance(value, str):
        return len(value) > bounds.value_bytes
    if not isinstance(value, (list, tuple, Mapping)):
        return False
    budget_items, budget_bytes = bounds.value_items, bounds.value_bytes
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > bounds.value_depth:
            return True
        children = item.values() if isinstance(item, Mapping) else item
        for child in children:
            budget_items -= 1
            if isinstance(child, str):
                budget_bytes -= len(child)
            elif isinstance(child, (list, tuple, Mapping)):
                stack.append((child, depth + 1))
            else:
                budget_bytes -= 8
            if budget_items < 0 or budget_bytes < 0:
                return True
        if isinstance(item, Mapping):
            budget_bytes -= sum(len(str(k)) for k in item)
    return False


def _number(path: str, value: Any, bounds: Bounds) -> tuple[float, Problem | None]:
    if value is None:
        return 0.0, Problem(path, "missing")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0, Problem(path, "too_large" if _too_large(value, bounds) else "not_number", _show(value))
    if not is_finite_number(value):  # NaN, an infinity, an integer beyond the doubles
        return 0.0, Problem(path, "not_finite", _show(value))
    return float(value), None


def _party(org: CompiledOrg, path: str, value: Any, bounds: Bounds) -> tuple[str, Problem | None]:
    if value is None:
        return "", Problem(path, "missing")
    if not isinstance(value, str):
        return "", Problem(path, "too_large" if _too_large(value, bounds) else "not_text", _show(value))
    person = resolve_party(org, value)
    if person is None:
        return "", Problem(path, "unknown_person", _show(value))
    return person, None


def _conform(org: CompiledOrg, required: Required, value: Any, bounds: Bounds) -> tuple[Any, Problem | None]:
    """The value as the condition reads it (a person resolved to their id, a currency normalised), or why not."""
    name = required.name
    if value is None:
        return None, (None if required.optional else Problem(name, "missing"))
    if _too_large(value, bounds):
        return None, Problem(name, "too_large", _show(value))
    kind = required.type
    if kind == "number":
        number, problem = _number(name, value, bounds)
        if problem is not None:
            return None, problem
        if (required.minimum is not None and number < required.minimum) or (
            required.maximum is not None and number > required.maximum
        ):
            return None, Problem(name, "out_of_range", _show(value))
        return value, None
    if kind == "text" and not isinstance(value, str):
        return None, Problem(name, "not_text", _show(value))
    if kind == "boolean" and not isinstance(value, bool):
        return None, Problem(name, "not_boolean", _show(value))
    if kind == "person":
        return _party(org, name, value, bounds)
    if kind == "currency":
        code = currency_code(value)
        return (code, None) if code is not None else (None, Problem(name, "unknown_currency", _show(value)))
    if isinstance(value, float) and not is_finite_number(value):
        return None, Problem(name, "not_finite", _show(value))
    return value, None


def kind_of(rule: rm.Rule) -> str:
    """The rule's `kind` as written in the pack (the struct's tag)."""
    return str(type(rule).__struct_config__.tag)


def departments_of(org: CompiledOrg, posts: Iterable[str]) -> list[str]:
    """The departments of the posts a subject acts through."""
    return list(dict.fromkeys(org.post_departments[p] for p in posts if p in org.post_departments))


def limit_for(rule: rm.Limit | None, posts: Iterable[str]) -> float | None:
    """The most a subject acting through `posts` may do under limit `rule` without approval (None: no limit binds
    them, or no such rule; 0 when they hold no post). For the impact preview."""
    if rule is None:
        return None
    posts = tuple(posts)
    if not posts:
        return 0.0
    return _limit_of(rule, posts)


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


def _approvers(
    org: CompiledOrg, rule: rm.Limit, posts: tuple[str, ...], requester: str, at: float, needed: float
) -> tuple[ApproverStep, ...]:
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


def _named_approvers(
    org: CompiledOrg, post: str | None, posts: tuple[str, ...], requester: str, at: float
) -> tuple[ApproverStep, ...]:
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


def _notices(org: CompiledOrg, targets: tuple[str, ...], at: float) -> tuple[Notice, ...]:
    """The posts to tell at `at`: each target, or for a vacant one the nearest post above it with a holder."""
    out: list[Notice] = []
    for target in targets:
        if holders_of(org, target, at):
            out.append(Notice(target))
            continue
        seen, current = {target}, org.superiors.get(target)
        while current is not None and current not in seen and not holders_of(org, current, at):
            seen.add(current)
            current = org.superiors.get(current)
        out.append(Notice(current if current is not None and current not in seen else None, target))
    return tuple(dict.fromkeys(out))


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


# --- the rule kinds -----------------------------------------------------------------------------------------------

_Runner = Callable[[RuleBackend, CompiledOrg, CompiledRule, "_Request", Facts, Bounds], "RuleHit | None"]


@dataclass(frozen=True, slots=True)
class RuleKind:
    """Everything one kind of rule needs, in one place: what it reads (`inputs`, given the expressions it
    compiled to), its condition for the rule backend (`compile`: logical name, rule, the pack's declared inputs →
    CompiledRule), and how it runs and fails closed (`run`: a RuleHit, with a Problem for every unreadable input,
    or None when it does not fire). How a hit is explained is kind-independent (`explain.explain_rules`): a kind
    says what to show through the hit's message and `detail`."""

    inputs: Callable[[Any, tuple[Expression, ...]], tuple[Input, ...]]
    compile: Callable[[str, Any, Mapping[str, rm.InputSpec]], CompiledRule]
    run: _Runner


def _separation_inputs(rule: rm.Separation, expressions: tuple[Expression, ...]) -> tuple[Input, ...]:
    if rule.check == "four_eyes":
        return ()
    return (Input(rule.maker if rule.check == "maker_checker" else rule.requester, "party"),)


def _separation_condition(name: str, rule: rm.Separation, declared: Mapping[str, rm.InputSpec]) -> CompiledRule:
    if rule.check == "four_eyes":
        return CompiledRule(rule, name, {"$gte": {"streak": {"$m": "needed"}}})
    return CompiledRule(rule, name, {"other": {"$m": "subject"}})


KINDS: dict[type[rm.Rule], RuleKind] = {
    rm.Limit: RuleKind(
        lambda rule, _: (
            (Input(rule.attribute, "amount"),) + ((Input("context.currency", "currency"),) if rule.currency else ())
        ),
        lambda name, rule, _: CompiledRule(rule, name, {"$gt": {"amount": {"$m": "limit"}}}),
        _limit,
    ),
    rm.Separation: RuleKind(_separation_inputs, _separation_condition, _separation),
    rm.DualControl: RuleKind(
        lambda rule, _: (Input(rule.second_person, "party"),),
        lambda name, rule, _: CompiledRule(rule, name, {"ok": 0}),
        _dual_control,
    ),
    rm.Suitability: RuleKind(
        lambda rule, _: (Input(rule.risk, "level"), Input(rule.tolerance, "level")),
        lambda name, rule, _: CompiledRule(rule, name, {"$gt": {"risk": {"$m": "tolerance"}}}),
        _suitability,
    ),
    rm.TimeWindow: RuleKind(_expression_inputs, _compile_time_window, _time_window),
    rm.Requirement: RuleKind(_expression_inputs, _compile_requirement, _condition),
    rm.Notification: RuleKind(_expression_inputs, _compile_when, _condition),
    rm.ConditionRule: RuleKind(_expression_inputs, _compile_when, _condition),
}
