"""Checking rule packs: structure, and every reference against the organisation they govern."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema
import msgspec

from dutyline.errors import Invalid, Issue, IssueCode, did_you_mean, nearest
from dutyline.expressions import ExpressionError, parse
from dutyline.orgmodel.document import Organisation
from dutyline.orgmodel.salvage import salvage
from dutyline.orgmodel.shape import shape_issues
from dutyline.orgmodel.source import Path, SourceMap
from dutyline.rulemodel import document as rm
from dutyline.rulemodel.currencies import is_currency
from dutyline.settings import Bounds


@cache
def _validator() -> jsonschema.protocols.Validator:
    return jsonschema.Draft202012Validator(rm.schema())


@dataclass(frozen=True, slots=True)
class ParsedPack:
    pack: rm.RulePack
    source: SourceMap
    warnings: tuple[Issue, ...]


# Lets validation ask whether a condition can run in the rules engine (within the bounds on its compiled size)
# without importing the engine here.
ConditionCheck = Callable[[Any, Bounds], None]


def check_pack(
    data: Any,
    source: SourceMap,
    org: Organisation | None,
    engine_check: ConditionCheck | None = None,
    bounds: Bounds | None = None,
) -> ParsedPack:
    """Validate a loaded rule pack; with `org`, also every post, resource and action it names."""
    bounds = bounds or Bounds()
    rules = data.get("rules") if isinstance(data, dict) else None
    if isinstance(rules, list) and len(rules) > bounds.pack_rules:
        detail = f"a pack holds at most {bounds.pack_rules} rules (DUTYLINE_MAX_PACK_RULES), this one {len(rules)}"
        issue = source.issue(("rules",), detail, code=IssueCode.TOO_LARGE, params={"detail": detail})
        raise Invalid.of([issue])
    found = shape_issues(_validator(), data, source)
    if found:
        structural = [issue for _, issue in found]
        rest = salvage(data, [cut for cut, _ in found], rm.RulePack)
        if rest is not None:  # the other rules' meaning (unknown posts, expressions), in the same answer
            remapped = SourceMap(source.file, source.mapped(), remap=rest.original)
            meaning = _semantic(rest.value, remapped, org, engine_check, bounds)
            structural += [i for i in meaning if i.severity == "error"]
        raise Invalid.of(sorted(structural, key=lambda i: (i.line, i.path, i.message)))
    try:
        pack = msgspec.convert(data, rm.RulePack)
    except msgspec.ValidationError as exc:
        params = {"field": "document", "detail": str(exc)}
        raise Invalid(str(exc), [source.issue((), str(exc), code=IssueCode.SCHEMA, params=params)]) from None
    issues = sorted(_semantic(pack, source, org, engine_check, bounds), key=lambda i: (i.line, i.path, i.message))
    errors = [i for i in issues if i.severity == "error"]
    if errors:
        raise Invalid.of(errors)
    return ParsedPack(pack, source, tuple(issues))


def pack_from_json(
    payload: bytes | str | dict, org: Organisation | None, engine_check: ConditionCheck | None = None
) -> ParsedPack:
    data = json.loads(payload) if isinstance(payload, (bytes, str)) else payload
    return check_pack(data, SourceMap("<request>"), org, engine_check)


def _semantic(
    pack: rm.RulePack, src: SourceMap, org: Organisation | None, engine_check: ConditionCheck | None, bounds: Bounds
) -> Iterator[Issue]:
    seen: dict[str, int] = {}
    for i, rule in enumerate(pack.rules):
        if rule.id in seen:
            line = str(src.line(("rules", seen[rule.id])))
            yield src.issue(
                ("rules", i, "id"),
                f"duplicate rule id {rule.id!r} (first on line {line})",
                code=IssueCode.DUPLICATE,
                params={"case": "rule", "what": "rule", "id": rule.id, "first_line": line},
            )
        seen.setdefault(rule.id, i)
        parsed_all = True
        for field, text in _expressions(rule):
            try:
                expression = parse(text)
            except ExpressionError as exc:
                yield _expression(src, ("rules", i, field), field, exc)
                parsed_all = False
                continue
            if engine_check is not None:
                try:
                    engine_check(expression, bounds)
                except ExpressionError as exc:
                    yield _expression(src, ("rules", i, field), field, exc)
                    parsed_all = False
        if isinstance(rule, rm.Requirement) and parsed_all and engine_check is not None:
            try:  # the rule runs as one condition: `when` and not `require`
                engine_check(parse(f"({rule.when}) and not ({rule.require})"), bounds)
            except ExpressionError as exc:
                yield _expression(src, ("rules", i, "require"), "when and require together", exc)
        yield from _currencies(rule, src, ("rules", i))
        yield from _placeholders(rule, src, ("rules", i))
    yield from _limits_in_other_currencies(pack, src)
    for path, spec in pack.inputs.items():
        if spec.minimum is not None and spec.maximum is not None and spec.minimum > spec.maximum:
            yield src.issue(
                ("inputs", path),
                f"minimum {spec.minimum} is above maximum {spec.maximum}",
                code=IssueCode.BAD_BOUNDS,
                params={"minimum": str(spec.minimum), "maximum": str(spec.maximum)},
            )
    case_ids: dict[str, int] = {}
    for i, case_type in enumerate(pack.case_types):
        if case_type.id in case_ids:
            line = str(src.line(("case_types", case_ids[case_type.id])))
            yield src.issue(
                ("case_types", i, "id"),
                f"duplicate case type id {case_type.id!r}",
                code=IssueCode.DUPLICATE,
                params={"case": "case_type", "what": "case_type", "id": case_type.id, "first_line": line},
            )
        case_ids.setdefault(case_type.id, i)
    if org is None:
        yield src.issue(
            ("org",),
            f"no organisation {pack.org!r} to check this pack against",
            code=IssueCode.UNKNOWN_ORGANISATION,
            params={"case": "none", "id": pack.org},
        )
        return
    if org.id != pack.org:
        yield src.issue(
            ("org",),
            f"pack is for {pack.org!r}, checked against {org.id!r}",
            code=IssueCode.UNKNOWN_ORGANISATION,
            params={"case": "other", "id": pack.org, "checked": org.id},
        )
    yield from _references(pack, src, org)


def _expression(src: SourceMap, path: Path, field: str, exc: ExpressionError) -> Issue:
    return src.issue(
        path, f"{field}: {exc}", code=IssueCode.BAD_EXPRESSION, params={"field": field, "detail": str(exc)}
    )


def _currencies(rule: rm.Rule, src: SourceMap, here: Path) -> Iterator[Issue]:
    if not isinstance(rule, rm.Limit):
        return
    unknown = IssueCode.UNKNOWN_CURRENCY
    if rule.currency is not None and not is_currency(rule.currency):
        message = f"{rule.currency!r} is not an ISO 4217 currency code"
        yield src.issue((*here, "currency"), message, code=unknown, params={"case": "not_iso", "id": rule.currency})
    for code in rule.rates:
        if not is_currency(code):
            message = f"{code!r} is not an ISO 4217 currency code"
            yield src.issue((*here, "rates", code), message, code=unknown, params={"case": "not_iso", "id": code})
        elif code == rule.currency:
            message = f"a rate for {code}, the limit's own currency"
            yield src.issue((*here, "rates", code), message, code=unknown, params={"case": "own_rate", "id": code})
    if rule.rates and rule.currency is None:
        message = "rates convert to the limit's `currency`, which the rule does not name"
        yield src.issue((*here, "rates"), message, code=unknown, params={"case": "no_currency"})


_PLACEHOLDER = re.compile(r"(?<!\{)\{([^{}]*)\}(?!\})")


def _placeholders(rule: rm.Rule, src: SourceMap, here: Path) -> Iterator[Issue]:
    if rule.message is None:
        return
    kind = str(type(rule).__struct_config__.tag)
    offered = set(rm.PLACEHOLDERS[kind])
    for field in ("when", "require"):
        text = getattr(rule, field, None)
        if isinstance(text, str):
            try:
                offered |= {".".join(p) for p in parse(text).paths()}
            except ExpressionError:
                pass  # reported with the expression
    for language in ("zh", "en"):
        for name in _PLACEHOLDER.findall(getattr(rule.message, language)):
            if name not in offered:
                choices = ", ".join(f"{{{o}}}" for o in sorted(offered)) or "none"
                yield src.issue(
                    (*here, "message", language),
                    f"unknown placeholder {{{name}}}; a {kind} rule's message may quote {choices}",
                    code=IssueCode.BAD_EXPRESSION,
                    params={"case": "placeholder", "field": language, "detail": name, "kind": kind, "known": choices},
                )


def _limits_in_other_currencies(pack: rm.RulePack, src: SourceMap) -> Iterator[Issue]:
    """Two limits on the same requests in different currencies refuse each other's currency: say so."""
    seen: dict[tuple[str, str], tuple[int, rm.Limit]] = {}
    for i, rule in enumerate(pack.rules):
        if not isinstance(rule, rm.Limit) or rule.currency is None or not rule.enabled:
            continue
        actions = rule.applies_to.actions if rule.applies_to.actions != "*" else ["*"]
        for resource in rule.applies_to.resources:
            for action in actions:
                first = seen.setdefault((resource, action), (i, rule))
                other = first[1]
                if other is not rule and other.currency != rule.currency and rule.currency not in other.rates:
                    line = str(src.line(("rules", first[0])))
                    yield src.issue(
                        ("rules", i, "currency"),
                        f"limit {other.id!r} (line {line}) applies to the same requests in "
                        f"{other.currency}; it refuses {rule.currency} requests unless it has a rate for it",
                        severity="warning",
                        code=IssueCode.UNKNOWN_CURRENCY,
                        params={
                            "case": "other_currency",
                            "what": other.id,
                            "line": line,
                            "currency": str(other.currency),
                            "id": str(rule.currency),
                        },
                    )


def _expressions(rule: rm.Rule) -> Iterator[tuple[str, str]]:
    for field in ("when", "require"):
        value = getattr(rule, field, None)
        if isinstance(value, str):
            yield field, value


def _references(pack: rm.RulePack, src: SourceMap, org: Organisation) -> Iterator[Issue]:
    posts = {p.id for p in org.posts}
    actions = {r.id: set(r.actions) for r in org.catalogue.resources}
    groups = {g.id: g.members for g in org.catalogue.groups}

    def actions_of(ref: str, seen: frozenset[str] = frozenset()) -> set[str] | None:
        if ref in actions:
            return actions[ref]
        if ref not in groups or ref in seen:
            return None
        out: set[str] = set()
        for member in groups[ref]:
            out |= actions_of(member, seen | {ref}) or set()
        return out

    def post(path: Path, ident: str | None) -> Iterator[Issue]:
        if ident is not None and ident not in posts:
            suggestion = nearest(ident, posts)
            yield src.issue(
                path,
                f"unknown post {ident!r} in {org.id!r}" + did_you_mean(suggestion),
                code=IssueCode.UNKNOWN_POST,
                params={"case": "in_org", "id": ident, "org": org.id, "suggestion": suggestion},
            )

    for i, rule in enumerate(pack.rules):
        here = ("rules", i)
        available: set[str] = set()
        for j, resource in enumerate(rule.applies_to.resources):
            found = actions_of(resource)
            if found is None:
                suggestion = nearest(resource, [*actions, *groups])
                yield src.issue(
                    (*here, "applies_to", "resources", j),
                    f"unknown resource or group {resource!r}" + did_you_mean(suggestion),
                    code=IssueCode.UNKNOWN_RESOURCE,
                    params={"id": resource, "suggestion": suggestion},
                )
            else:
                available |= found
        if rule.applies_to.actions != "*":
            for j, action in enumerate(rule.applies_to.actions):
                if available and action not in available:
                    resources = ", ".join(rule.applies_to.resources)
                    suggestion = nearest(action, available)
                    yield src.issue(
                        (*here, "applies_to", "actions", j),
                        f"action {action!r} is not in the catalogue for {resources}" + did_you_mean(suggestion),
                        code=IssueCode.UNKNOWN_ACTION,
                        params={
                            "case": "rule",
                            "id": action,
                            "resource": resources,
                            "known": ", ".join(sorted(available)),
                            "suggestion": suggestion,
                        },
                    )
        for j, ident in enumerate(rule.applies_to.posts):
            yield from post((*here, "applies_to", "posts", j), ident)
        if isinstance(rule, rm.Limit):
            for ident in rule.limits:
                yield from post((*here, "limits", ident), ident)
        if isinstance(rule, rm.DualControl):
            for j, ident in enumerate(rule.posts):
                yield from post((*here, "posts", j), ident)
        if isinstance(rule, (rm.Requirement, rm.ConditionRule)):
            yield from post((*here, "approver"), rule.approver)
        if isinstance(rule, rm.Notification):
            for j, target in enumerate(rule.notify):
                if target not in ("superior", "department_heads", "leadership"):
                    yield from post((*here, "notify", j), target)
        if isinstance(rule, rm.TimeWindow):
            for j, window in enumerate(rule.windows):
                if window.end <= window.start:
                    yield src.issue(
                        (*here, "windows", j),
                        f"window ends ({window.end}) before it starts ({window.start})",
                        code=IssueCode.BAD_WINDOW,
                        params={"case": "window", "start": window.start, "end": window.end},
                    )
            for j, day in enumerate(rule.holidays):
                try:
                    dt.date.fromisoformat(day)
                except ValueError as exc:
                    yield src.issue(
                        (*here, "holidays", j),
                        f"impossible date: {exc}",
                        code=IssueCode.BAD_WINDOW,
                        params={"case": "impossible_date", "detail": str(exc), "start": day, "end": day},
                    )
    for i, case_type in enumerate(pack.case_types):
        yield from post(("case_types", i, "owner"), case_type.owner)
        for j, step in enumerate(case_type.steps):
            if step.to != "superior":
                yield from post(("case_types", i, "steps", j, "to"), step.to)
