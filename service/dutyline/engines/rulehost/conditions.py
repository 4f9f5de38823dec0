"""The condition language both backends accept: checked, guarded, split within durable_rules' limits.

## Hand-written conditions

`load()` also takes durable_rules conditions over plain fields (ASCII letters, digits and `_`), such as
`{"$gt": {"amount": {"$m": "limit"}}}`. Those fields are sent as they are (numbers as doubles, only the fields
the condition names) and keep durable_rules' own semantics, except that `$m` references are guarded (a missing
reference does not match) and `$nex`, regular expressions and constant-only arithmetic are refused.


Limits, measured on 2.0.28: a rule with 16 `$and`/`$or` groups is refused (error 113); a node with 512 successors
(a flat `$or` of 512, or 64 rules of 14 branches) makes `assert_event` loop forever. A condition with more than 15
groups is split at its top-level `$or` into up to 16 rules of the same ruleset; more than 400 tests and groups in
all, or a top-level `$and` of more than 15 groups, is refused. `$nex` loops forever when the field is missing, the
only case it exists for: refused. A `$m` reference to a missing field matches (`a > b` holds when `b` is missing):
every raw reference is guarded with `$ex`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from dutyline.engines.rulehost.encoding import CONSTANT_VALUES, dumps, raw_value, typed_fields, unescape
from dutyline.expressions import ExpressionError, is_finite_number

SESSION = "0"
_TAGS = frozenset("kcnsft")
_RAW_NAME = re.compile(r"[A-Za-z0-9_]+")
_BASE = re.compile(r"(?:[A-Za-z0-9_]|~[0-9a-f]+~)+")
_COMPARISONS = {"$eq", "$neq", "$lt", "$lte", "$gt", "$gte"}
_MAX_GROUPS = 15  # per rule
_MAX_RULES = 16  # per ruleset, when a top-level $or is split into rules
_MAX_NODES = 400  # tests and groups per ruleset


class NotExpressible(ExpressionError):
    """A valid condition that durable_rules cannot evaluate; `construct` names what, e.g. "len()"."""

    def __init__(self, construct: str, text: str, hint: str = "") -> None:
        column = text.find(hint) + 1 if hint and hint in text else 1
        super().__init__(f"durable_rules cannot evaluate {construct}", column)
        self.construct = construct


@dataclass(frozen=True, slots=True)
class Prepared:
    """A checked condition: the ruleset JSON both backends run, and the plan of the event fields it reads."""

    text: str  # the ruleset JSON
    digest: str
    head: str  # '"sid":"0"' and the constant fields the condition reads
    typed: tuple[tuple[str, str, str], ...]  # (flat key, '"<key>#', tags read)
    raw: tuple[tuple[str, str], ...]  # (field name, '"name":')


class _Plan(Protocol):
    @property
    def head(self) -> str: ...
    @property
    def typed(self) -> tuple[tuple[str, str, str], ...]: ...
    @property
    def raw(self) -> tuple[tuple[str, str], ...]: ...


def event_fields(plan: _Plan, event: Mapping[str, Any]) -> str:
    """The JSON members of the event a prepared condition reads, from the caller's flat event (a missing
    attribute is null; a raw field is sent only when given)."""
    parts = [plan.head]
    for flat, prefix, tags in plan.typed:
        fields = typed_fields(prefix, tags, event.get(flat))
        if fields:
            parts.append(fields)
    for field, quoted in plan.raw:
        if field in event:
            parts.append(quoted + raw_value(field, event[field]))
    return ",".join(parts)


def check_condition(condition: Mapping[str, Any], max_bytes: int | None = None) -> None:
    """Raise ValueError if `RuleHost.load` would refuse this condition (for validation at compile time:
    `load` replaces everything at once, so one refused condition stops a whole reload); with `max_bytes`,
    `NotExpressible` if its ruleset JSON is larger (durable_rules registers it under the engine lock, which
    every decision waits for: ≈0.6 ms per KB measured on 2.0.28)."""
    prepared = prepare(condition)
    if max_bytes is not None and len(prepared.text) > max_bytes:
        raise NotExpressible(
            f"this condition: it compiles to {len(prepared.text):,} bytes of rules, more than the "
            f"{max_bytes:,} allowed (DUTYLINE_MAX_CONDITION_BYTES); split it into simpler rules",
            "",
        )


def prepare(condition: Mapping[str, Any]) -> Prepared:
    """Check a condition, guard its raw references, and write the ruleset JSON and the event plan."""
    fields: dict[str, None] = {}
    parts = split(_flat(_check(condition, fields)))
    rules = [f'"r{i}":{{"all":[{{"m":{dumps(part)}}}]}}' for i, part in enumerate(parts)]
    text = "{" + ",".join([*rules, '"prime":{"all":[{"m":{"$ex":{"#prime":1}}}]}']) + "}"
    digest = hashlib.sha256(text.encode()).hexdigest()[:20]
    constants: list[str] = []
    typed: dict[str, list[str]] = {}
    raw: list[tuple[str, str]] = []
    for field in fields:
        if field in CONSTANT_VALUES:
            constants.append(f'"{field}":{CONSTANT_VALUES[field]}')
        elif "#" in field:
            base, tag = field.rsplit("#", 1)
            typed.setdefault(base, []).append(tag)
        else:
            raw.append((field, f'"{field}":'))
    head = ",".join([f'"sid":"{SESSION}"', *constants])
    plan = tuple((unescape(base), f'"{base}#', "".join(sorted(tags))) for base, tags in sorted(typed.items()))
    return Prepared(text, digest, head, plan, tuple(sorted(raw)))


def _flat(condition: Any) -> Any:
    """The same condition with an $and directly inside an $and (an $or inside an $or) merged into it."""
    ((key, value),) = condition.items()
    if key not in ("$and", "$or"):
        return condition
    items: list[Any] = []
    for item in map(_flat, value):
        items.extend(item[key] if next(iter(item)) == key else [item])
    return {key: items}


def _shape(condition: Any) -> tuple[int, int]:
    """(groups, tests): how many $and/$or and how many tests the condition holds."""
    ((key, value),) = condition.items()
    if key not in ("$and", "$or"):
        return 0, 1
    groups, tests = 1, 0
    for item in value:
        g, t = _shape(item)
        groups, tests = groups + g, tests + t
    return groups, tests


def split(condition: Any) -> list[Any]:
    """The condition as one rule, or its top-level alternatives packed into several, within durable_rules'
    limits; ValueError if it cannot fit."""
    groups, tests = _shape(condition)
    if groups + tests > _MAX_NODES:
        raise ValueError(
            f"{tests} tests in {groups} groups of $and/$or; durable_rules hangs on large ones (at most {_MAX_NODES})"
        )
    if groups <= _MAX_GROUPS:
        return [condition]
    ((key, alternatives),) = condition.items()
    if key != "$or":
        raise ValueError(f"{groups} groups of $and/$or; durable_rules takes at most {_MAX_GROUPS} in a rule")
    rules: list[list[Any]] = [[]]
    cost = 0
    for alternative in alternatives:
        own = _shape(alternative)[0]
        if own > _MAX_GROUPS:
            raise ValueError(
                f"an alternative with {own} groups of $and/$or; durable_rules takes at most {_MAX_GROUPS} in a rule"
            )
        if rules[-1] and cost + own + 1 > _MAX_GROUPS:  # +1: the $or that holds them
            rules.append([])
            cost = 0
        rules[-1].append(alternative)
        cost += own
    if len(rules) > _MAX_RULES:
        raise ValueError(f"{groups} groups of $and/$or do not fit in {_MAX_RULES} rules of {_MAX_GROUPS}")
    return [items[0] if len(items) == 1 else {"$or": items} for items in rules]


def _check(condition: Any, fields: dict[str, None]) -> Any:
    """Validate one test or $and/$or; collect the fields read; return it with raw `$m` references guarded."""
    if not isinstance(condition, Mapping) or len(condition) != 1:
        raise ValueError(f"a condition is one test or one $and/$or, not {condition!r}")
    ((key, value),) = condition.items()
    if key in ("$and", "$or"):
        if not isinstance(value, list) or not value:
            raise ValueError(f"{key} needs a non-empty list")
        return {key: [_check(item, fields) for item in value]}
    if key == "$nex":
        raise ValueError("$nex is refused: durable_rules 2.0.28 loops forever when the field is missing")
    if key == "$ex":
        if not isinstance(value, Mapping) or len(value) != 1:
            raise ValueError("$ex takes one field")
        _field(next(iter(value)), fields)
        return {key: {next(iter(value)): 1}}
    if key in _COMPARISONS:
        if not isinstance(value, Mapping) or len(value) != 1:
            raise ValueError(f"{key} takes one field and its operand")
        ((field, operand),) = value.items()
    elif key.startswith("$"):
        raise ValueError(f"operator {key} is not supported")
    else:
        field, operand = key, value
    _field(field, fields)
    references: list[str] = []
    _operand(operand, fields, references)
    raw = [{"$ex": {ref: 1}} for ref in dict.fromkeys(references) if "#" not in ref]
    return {"$and": [*raw, dict(condition)]} if raw else dict(condition)


def _operand(value: Any, fields: dict[str, None], references: list[str]) -> bool:
    """Validate a right-hand side; return whether it is constant."""
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and not is_finite_number(value):
            raise ValueError("NaN and infinity cannot be written for durable_rules")
        return True
    if isinstance(value, Mapping) and len(value) == 1:
        ((key, inner),) = value.items()
        if key == "$m" and isinstance(inner, str):
            _field(inner, fields)
            references.append(inner)
            return False
        if key in ("$add", "$sub", "$mul", "$div") and isinstance(inner, Mapping) and set(inner) == {"$l", "$r"}:
            left = _operand(inner["$l"], fields, references)
            right = _operand(inner["$r"], fields, references)
            if left and right:
                raise ValueError(
                    "arithmetic between two constants, which durable_rules computes wrongly: write the result"
                )
            for side in (inner["$l"], inner["$r"]):
                if side is None or isinstance(side, (bool, str)):
                    raise ValueError("arithmetic needs numbers")
            return False
    raise ValueError(f"unsupported operand {value!r}")


def _field(name: Any, fields: dict[str, None]) -> None:
    if not isinstance(name, str):
        raise ValueError(f"field names are text, not {name!r}")
    if name in CONSTANT_VALUES:
        pass
    elif "#" in name:
        base, tag = name.rsplit("#", 1)
        if tag not in _TAGS or not _BASE.fullmatch(base):
            raise ValueError(f"{name!r} is not a field condition_json writes")
    elif not _RAW_NAME.fullmatch(name) or name in ("id", "sid"):
        raise ValueError(f"field {name!r}: plain fields are ASCII letters, digits and _, and not id or sid")
    fields[name] = None
