"""What a proposed change to an organisation would do: who gains or loses which permissions, whose approver
chain (reporting line) changes, and how given checks would be decided before and after (by the duty model
alone, or with business rules too). Pure: compiled organisations and rules in, plain data out."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import msgspec

from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.decision import Check, Decision, decide
from dutyline.engines.queries import HeldPermission, permissions_of
from dutyline.engines.rulehost import RuleBackend
from dutyline.engines.rules import NO_FACTS, CompiledRules, Verdict, apply_rules

log = logging.getLogger("dutyline.impact")


@dataclass(frozen=True, slots=True)
class PermissionChange:
    person: str
    gained: tuple[dict[str, Any], ...]
    lost: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class ChainChange:
    post: str
    before: tuple[str, ...]  # the superior posts, nearest first (() : the post is not there)
    after: tuple[str, ...]


def _held(org: CompiledOrg | None, person: str, at: float) -> dict[tuple[str, str], HeldPermission]:
    if org is None or person not in org.assignments:
        return {}
    return {(h.resource, h.action): h for h in permissions_of(org, person, at)}


def _shown(held: HeldPermission) -> dict[str, Any]:
    return {
        "resource": held.resource,
        "action": held.action,
        "posts": list(held.posts),
        "duties": list(held.duties),
        "conditional": held.conditional,
    }


def permission_changes(before: CompiledOrg | None, after: CompiledOrg | None, at: float) -> list[PermissionChange]:
    """For every person in either version, the permissions held at `at` only after, and only before.

    A permission that stays but turns conditional (or unconditional) counts as lost and gained."""
    people = sorted(set(before.assignments if before else ()) | set(after.assignments if after else ()))
    out = []
    for person in people:
        old, new = _held(before, person, at), _held(after, person, at)
        gained = [_shown(h) for k, h in sorted(new.items()) if k not in old or old[k].conditional != h.conditional]
        lost = [_shown(h) for k, h in sorted(old.items()) if k not in new or new[k].conditional != h.conditional]
        if gained or lost:
            out.append(PermissionChange(person, tuple(gained), tuple(lost)))
    return out


def _chain(org: CompiledOrg | None, post: str) -> tuple[str, ...]:
    if org is None or post not in org.superiors:
        return ()
    chain: list[str] = []
    current = org.superiors.get(post)
    while current is not None and current not in chain and current != post:
        chain.append(current)
        current = org.superiors.get(current)
    return tuple(chain)


def chain_changes(before: CompiledOrg | None, after: CompiledOrg | None) -> list[ChainChange]:
    """Posts whose line of superiors (the approver chain of their requests) differs between the versions."""
    posts = sorted(set(before.superiors if before else ()) | set(after.superiors if after else ()))
    out = []
    for post in posts:
        old, new = _chain(before, post), _chain(after, post)
        if old != new:
            out.append(ChainChange(post, old, new))
    return out


def verdict_of(org: CompiledOrg | None, rules: CompiledRules | None, host: RuleBackend, check: Check) -> Verdict:
    """A check decided by the duty model and then the business rules (`rules`, loaded in `host`), as
    `DecisionService.answer` decides it but without facts (usage totals, approval history): a preview compares
    policies, not ledgers. Fails closed, as decisions do."""
    if org is None:
        return Verdict("deny", Decision("deny", "unknown_organisation"))
    try:
        return apply_rules(host, org, rules, check, decide(org, check), NO_FACTS)
    except Exception:  # a broken draft must not break the preview: the check is a deny, as a decision would be
        log.exception(
            "preview decision failed in %s for %s %s %s", org.id, check.subject_id, check.resource_type, check.action
        )
        return Verdict("deny", Decision("deny", "internal_error", version=org.version))


# --- a change at every moment it matters ------------------------------------------------------------------------
# A change effective next week, or an acting assignment for next week, changes nothing *now*: previewed only
# now it reads "nobody gains or loses a permission". So the preview decides at every moment where what anyone
# holds can change (now, each assignment window's start and end in either version, the change's effective date)
# and reports each gain or loss with the window in which it holds.

MAX_MOMENTS = 64  # a document with hundreds of windows ahead is previewed at its nearest 64 boundaries


def moments(
    before: CompiledOrg | None, after: CompiledOrg | None, now: float, effective: float | None = None
) -> list[float]:
    """The moments to preview at, in order: `now` (or the effective date, if later), then every start and end of
    an assignment window after it, in either version."""
    start = max(now, effective) if effective is not None else now
    found: set[float] = set()
    for org in (before, after):
        if org is None:
            continue
        for windows in org.assignments.values():
            for window in windows:
                for edge in (window.start, window.end):
                    if edge is not None and edge > start:
                        found.add(edge)
    return [start, *sorted(found)[: MAX_MOMENTS - 1]]


@dataclass(frozen=True, slots=True)
class TimedChange:
    """A permission (or limit) someone gains or loses under the change, and when: from `since` (epoch seconds)
    until `until` (None: from then on, as far as the documents say)."""

    person: str
    change: str  # "gained" | "lost"
    permission: dict[str, Any]
    since: float
    until: float | None


def permission_timeline(before: CompiledOrg | None, after: CompiledOrg | None, at: list[float]) -> list[TimedChange]:
    """Every gain and loss the change brings at any of the moments `at` (see `moments`), as windows: a change that
    holds at consecutive moments is one window."""
    open_: dict[tuple[str, str, str, str], TimedChange] = {}
    out: list[TimedChange] = []
    for index, moment in enumerate(at):
        seen: set[tuple[str, str, str, str]] = set()
        for change in permission_changes(before, after, moment):
            for kind, items in (("gained", change.gained), ("lost", change.lost)):
                for item in items:
                    key = (change.person, kind, item["resource"], item["action"])
                    seen.add(key)
                    if key not in open_:
                        open_[key] = TimedChange(change.person, kind, item, moment, None)
        for key in [k for k in open_ if k not in seen]:
            out.append(_closed(open_.pop(key), moment))
        if index == len(at) - 1:
            out += open_.values()
    return sorted(out, key=lambda c: (c.since, c.person, c.change, c.permission["resource"], c.permission["action"]))


def _closed(change: TimedChange, until: float) -> TimedChange:
    return TimedChange(change.person, change.change, change.permission, change.since, until)


@dataclass(frozen=True, slots=True)
class LimitChange:
    """A limit that binds someone differently under the change: the most they may do without approval, before and
    after (None: no limit), from `since` until `until`."""

    person: str
    rule: str
    before: float | None
    after: float | None
    since: float
    until: float | None


def limit_timeline(
    before: CompiledOrg | None,
    after: CompiledOrg | None,
    before_rules: CompiledRules | None,
    after_rules: CompiledRules | None,
    at: list[float],
) -> list[LimitChange]:
    """Whose limits (limit rules: the highest limit among the posts they hold) change under the change, when."""
    from dutyline.engines.rules import limit_for

    people = sorted(set(before.assignments if before else ()) | set(after.assignments if after else ()))
    limits = _limit_rules(before_rules) | _limit_rules(after_rules)
    open_: dict[tuple[str, str], LimitChange] = {}
    out: list[LimitChange] = []
    for index, moment in enumerate(at):
        seen: set[tuple[str, str]] = set()
        for person in people:
            for rule_id in sorted(limits):
                old = limit_for(_limit_rules(before_rules).get(rule_id), _posts(before, person, moment))
                new = limit_for(_limit_rules(after_rules).get(rule_id), _posts(after, person, moment))
                if old == new:
                    continue
                key = (person, rule_id)
                seen.add(key)
                current = open_.get(key)
                if current is None or (current.before, current.after) != (old, new):
                    if current is not None:
                        out.append(_limit_closed(current, moment))
                    open_[key] = LimitChange(person, rule_id, old, new, moment, None)
        for key in [k for k in open_ if k not in seen]:
            out.append(_limit_closed(open_.pop(key), moment))
        if index == len(at) - 1:
            out += open_.values()
    return sorted(out, key=lambda c: (c.since, c.person, c.rule))


def _limit_closed(change: LimitChange, until: float) -> LimitChange:
    return LimitChange(change.person, change.rule, change.before, change.after, change.since, until)


def _limit_rules(rules: CompiledRules | None) -> dict[str, Any]:
    from dutyline.rulemodel import document as rm

    if rules is None:
        return {}
    return {c.rule.id: c.rule for entries in rules.index.values() for c in entries if isinstance(c.rule, rm.Limit)}


def _posts(org: CompiledOrg | None, person: str, at: float) -> tuple[str, ...]:
    if org is None:
        return ()
    return tuple(dict.fromkeys(a.post for a in org.assignments.get(person, ()) if a.active(at)))


# --- a rule pack change, field by field -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleFieldChange:
    """One thing a rule pack change changes: a rule added or removed, or one field (a post's limit) before → after,
    with the line a person reads: "transaction_limit · 综合经办柜员: 50,000 → 80,000"."""

    rule: str
    field: str  # "" for a rule added or removed; "limits.teller", "default", "when" …
    before: Any
    after: Any
    zh: str
    en: str


def rule_changes(before: Any, after: Any, org: CompiledOrg | None) -> list[RuleFieldChange]:
    """What changes between two versions of a rule pack (`RulePack`s, or None for none), rule by rule."""
    old = {r.id: r for r in (before.rules if before is not None else [])}
    new = {r.id: r for r in (after.rules if after is not None else [])}
    out: list[RuleFieldChange] = []
    for rule_id in sorted(set(old) | set(new)):
        a, b = old.get(rule_id), new.get(rule_id)
        if a is None or b is None:
            verb = ("新增规则", "rule added") if a is None else ("删除规则", "rule removed")
            out.append(
                RuleFieldChange(
                    rule_id, "", a is not None, b is not None, f"{rule_id}:{verb[0]}", f"{rule_id}: {verb[1]}"
                )
            )
            continue
        out += _field_changes(rule_id, msgspec.to_builtins(a), msgspec.to_builtins(b), org)
    return out


def _field_changes(
    rule_id: str, a: dict[str, Any], b: dict[str, Any], org: CompiledOrg | None
) -> list[RuleFieldChange]:
    out = []
    for field in sorted(set(a) | set(b)):
        x, y = a.get(field), b.get(field)
        if x == y or field == "note":
            continue
        if field in ("limits", "rates") and isinstance(x or {}, dict) and isinstance(y or {}, dict):
            for key in sorted(set(x or {}) | set(y or {})):
                p, q = (x or {}).get(key), (y or {}).get(key)
                if p != q:
                    zh, en = _post_label(org, key) if field == "limits" else (key, key)
                    out.append(
                        RuleFieldChange(
                            rule_id,
                            f"{field}.{key}",
                            p,
                            q,
                            f"{rule_id} · {zh}:{_value(p, 'zh')} → {_value(q, 'zh')}",
                            f"{rule_id} · {en}: {_value(p, 'en')} → {_value(q, 'en')}",
                        )
                    )
            continue
        if field == "applies_to" and isinstance(x, dict) and isinstance(y, dict):
            for key in sorted(set(x) | set(y)):
                p, q = x.get(key), y.get(key)
                if p != q:
                    out.append(_change(rule_id, f"applies_to.{key}", p, q, org))
            continue
        out.append(_change(rule_id, field, x, y, org))
    return out


def _change(rule_id: str, field: str, x: Any, y: Any, org: CompiledOrg | None) -> RuleFieldChange:
    """One field's change, its values worded for people: posts by name, windows by day and time, names and
    messages in the line's own language."""
    return RuleFieldChange(
        rule_id,
        field,
        x,
        y,
        f"{rule_id} · {field}:{_worded(field, x, 'zh', org)} → {_worded(field, y, 'zh', org)}",
        f"{rule_id} · {field}: {_worded(field, x, 'en', org)} → {_worded(field, y, 'en', org)}",
    )


_POST_FIELDS = frozenset({"posts", "notify", "approver", "applies_to.posts"})
_NOTIFY = {
    "superior": ("直接上级", "the direct superior"),
    "department_heads": ("各部门负责人", "every department's head"),
    "leadership": ("领导层", "leadership"),
}
_DAYS = {
    "mon": ("周一", "Mon"),
    "tue": ("周二", "Tue"),
    "wed": ("周三", "Wed"),
    "thu": ("周四", "Thu"),
    "fri": ("周五", "Fri"),
    "sat": ("周六", "Sat"),
    "sun": ("周日", "Sun"),
}


def _worded(field: str, value: Any, language: str, org: CompiledOrg | None) -> str:
    which = 0 if language == "zh" else 1
    if field == "enabled" and value is None:
        value = True  # the default, left out of the pack
    if value is None:
        return _value(value, language)
    if field in _POST_FIELDS:
        ids = value if isinstance(value, list) else [value]
        if all(isinstance(i, str) for i in ids):
            labels = [_NOTIFY[i][which] if i in _NOTIFY else _post_label(org, i)[which] for i in ids]
            return ("、" if language == "zh" else ", ").join(labels) or _value(None, language)
    if field == "holidays" and isinstance(value, list):
        return ", ".join(str(day) for day in value) or _value(None, language)
    if field == "windows" and isinstance(value, list) and all(isinstance(w, dict) for w in value):
        return "; ".join(_window(w, which) for w in value)
    if field in ("name", "message") and isinstance(value, dict) and isinstance(value.get(language), str):
        return str(value[language])
    if field == "enabled" and isinstance(value, bool):
        return (("启用", "停用") if language == "zh" else ("enabled", "disabled"))[0 if value else 1]
    return _value(value, language)


def _window(window: dict[str, Any], which: int) -> str:
    days = window.get("days", list(_DAYS))
    named = ",".join(_DAYS[d][which] if d in _DAYS else str(d) for d in days)
    return f"{named} {window.get('start', '?')}–{window.get('end', '?')}"


def _post_label(org: CompiledOrg | None, post: str) -> tuple[str, str]:
    if org is not None:
        for entry in org.document.posts:
            if entry.id == post:
                return entry.name.zh, entry.name.en
    return post, post


def _value(value: Any, language: str) -> str:
    if value is None:
        return "(无)" if language == "zh" else "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        number = float(value)
        return f"{int(number):,}" if number.is_integer() else f"{number:,}"
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()
