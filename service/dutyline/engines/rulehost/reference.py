"""The reference rule backend: the condition language interpreted in Python, with no engine at all.

It reads exactly what durable_rules is given: the ruleset JSON `conditions.prepare` writes (checked, guarded,
split into rules) and the event `conditions.event_fields` writes (typed fields, numbers as doubles), and decides
each test as IEEE doubles and exact texts do. So it agrees with `RuleHost` wherever durable_rules is correct,
which the equivalence tests check on both backends and a property test checks between them; it is the backend
to fall back on if durable_rules (last released 2020) ever has to go, and the one to consult when it misbehaves.

Semantics of one test `{field: operand}` / `{"$op": {field: operand}}`: false when the field or a `$m` reference
is missing or null; between two numbers, two texts or two truth values, Python's comparison (texts by code point,
which is byte order for the ASCII the encoding sends); across kinds, `$neq` holds and every other test is false
(durable_rules coerces instead, `5 == "5"`, which no condition of ours relies on: `condition_json` never compares
across kinds, and `engines/rules.py` sends numbers against numbers, texts against texts). `$ex` holds when the
field is present and not null. Arithmetic is IEEE: a division by zero is ±infinity or NaN, never an error.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from dutyline.engines.rulehost.conditions import Prepared, event_fields, prepare

_MISSING = object()
_ORDER = {
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
}


class _Rule:
    __slots__ = ("conditions", "plan")

    def __init__(self, plan: Prepared) -> None:
        self.plan = plan
        rules = json.loads(plan.text)
        self.conditions = tuple(rule["all"][0]["m"] for name, rule in rules.items() if name != "prime")


class ReferenceHost:
    """Rules interpreted in Python, with `RuleHost`'s semantics and interface. Thread-safe (the set is replaced
    whole); holds nothing outside the object."""

    def __init__(self) -> None:
        self._rules: dict[str, _Rule] = {}
        self._loading = threading.Lock()

    def load(self, rulesets: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace the whole set atomically (see `RuleHost.load`); ValueError naming a refused rule, and then
        nothing changes."""
        with self._loading:
            rules: dict[str, _Rule] = {}
            for name, condition in rulesets.items():
                try:
                    rules[name] = _Rule(prepare(condition))
                except (ValueError, TypeError) as error:
                    raise ValueError(f"rule {name!r}: {error}") from error
            self._rules = rules

    def fires(self, name: str, event: Mapping[str, Any]) -> bool:
        """Whether rule `name` holds for `event` (see `RuleHost.fires`). Unknown name: KeyError."""
        rule = self._rules[name]
        fields = json.loads("{" + event_fields(rule.plan, event) + "}")
        return any(_holds(condition, fields) for condition in rule.conditions)

    def fired(self, events: Iterable[tuple[str, Mapping[str, Any]]]) -> list[bool]:
        """`fires` for each (name, event)."""
        return [self.fires(name, event) for name, event in events]

    def names(self) -> frozenset[str]:
        """The logical names loaded."""
        return frozenset(self._rules)

    def close(self) -> None:
        """Unload every rule."""
        self.load({})


def _holds(condition: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    ((key, value),) = condition.items()
    if key == "$and":
        return all(_holds(item, event) for item in value)
    if key == "$or":
        return any(_holds(item, event) for item in value)
    if key == "$ex":
        return event.get(next(iter(value))) is not None
    if key.startswith("$"):
        ((field, operand),) = value.items()
    else:
        key, field, operand = "$eq", key, value
    left, right = event.get(field), _operand(operand, event)
    if left is None or right is None or right is _MISSING:
        return False
    kind = _kind(left)
    if kind != _kind(right):
        return key == "$neq"
    if key == "$eq":
        return bool(left == right)
    if key == "$neq":
        return bool(left != right)
    return bool(_ORDER[key](left, right))


def _operand(value: Any, event: Mapping[str, Any]) -> Any:
    if not isinstance(value, Mapping):
        return value
    ((key, inner),) = value.items()
    if key == "$m":
        found = event.get(inner)
        return _MISSING if found is None else found
    a, b = _operand(inner["$l"], event), _operand(inner["$r"], event)
    if _kind(a) != "n" or _kind(b) != "n":
        return _MISSING
    a, b = float(a), float(b)
    if key == "$add":
        return a + b
    if key == "$sub":
        return a - b
    if key == "$mul":
        return a * b
    return _divide(a, b)


def _divide(a: float, b: float) -> float:
    """IEEE division, as the engine's C does it: x / 0 is ±infinity, 0 / 0 and NaN / 0 are NaN."""
    if b != 0:
        return a / b
    if a == 0 or a != a:
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _kind(value: Any) -> str:
    if value is True or value is False:
        return "b"
    if isinstance(value, (int, float)):
        return "n"
    if isinstance(value, str):
        return "s"
    return "x"
