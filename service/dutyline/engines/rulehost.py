"""The one module that touches durable_rules: "does this rule fire for this event?", safely and fast.

Every rule is one durable_rules ruleset, asked one event at a time. durable_rules 2.0.28 (last released 2020)
has traps; each is closed here by construction, and the numbers below were measured on 2.0.28:

- **Timer and dispatch threads; actions run on the wrong thread.** `durable.engine.Host` starts two timer
  threads that may run an action themselves, so that `post()` returns without the result. We use neither `Host`
  nor `durable.engine`: we call the engine's C core, `durable_rules_engine`, through the same functions
  `Host.post` calls (`assert_event`, `start_action_for_state`, `complete_and_start_action`). Nothing starts a
  thread, so nobody else can take an action. There are no Python actions either: the engine hands back the
  matched event, and "fired" means the action handed back carries this call's correlation id (`id`). Without
  Python actions there is no `state['exception']` to miss; any unexpected engine result raises `RuleHostError`.
- **Not thread-safe.** One process-wide lock serialises every call into the engine, from every `RuleHost`
  (the engine is one global C state). The extension never releases the GIL, so the lock costs nothing extra.
- **1024 sessions per ruleset, then MemoryError and SIGSEGV.** Each ruleset has exactly one session, "0",
  created when the ruleset is registered and reused by every call; a call leaves nothing in it (200,000 calls:
  no growth). **A session that never ran an action holds uninitialised pointers that `delete_state` frees**
  (SIGSEGV, depending on the heap), so each ruleset has a second rule, `prime`, whose action is run to
  completion when the session is created. Only then can the session be deleted, which `delete_ruleset` needs:
  alone it leaks the session (≈80 KB).
- **`set_rulesets` mutates its argument; a name registers only once.** We write the ruleset JSON ourselves and
  name the ruleset after its content digest; logical names with equal conditions share it. `load()` replaces
  the whole set: unchanged content keeps its registration, the rest is registered anew, and what is no longer
  used is unregistered (session, then `delete_ruleset`). Memory is bounded: ≈180 KB per distinct condition
  (ruleset and session pools); 80 reloads of 300 changed rules leave the process no bigger than the first
  reload. The engine lock is taken per ruleset during a load (≈1 ms each), so decisions go on during a reload.
- **An unmatched event raises `MessageNotHandledException`.** At this level it is result code 1: "does not
  fire", as it should be.
- **Numbers.** The engine's JSON reader rejects exponents (`1e-06`, `1e+16`: error 204), does integer arithmetic
  on integers (`7 / 2 == 3`; an integer division by zero kills the process with SIGFPE), and computes arithmetic
  between two constants wrongly. We write every number, in rulesets and events, as a positional decimal with a
  point (`0.000001`, `5.0`), so all arithmetic is floating-point; constant arithmetic is folded beforehand.
- **`$nex` loops forever** (100 % CPU, in C) when the field is missing, the only case it exists for. Never
  written; `load()` refuses it.
- **A `$m` reference to a missing field matches** (`a > b` holds when `b` is missing). Every reference is guarded.
- **Texts longer than 65,535 bytes are compared modulo 65,536** (70,000 "x" equal their first 4,464). No value
  we send comes near that length (see the encoding).
- **Mixed types coerce** (`5 == "5"`, `"abc" > 5`, `true == 1`, `"m" < true`). See the encoding.
- **Size.** A rule with 16 `$and`/`$or` groups is refused (error 113); a node with 512 successors (a flat `$or`
  of 512, or 64 rules of 14 branches) makes `assert_event` loop forever. A condition with more than 15 groups
  is split at its top-level `$or` into up to 16 rules of the same ruleset; more than 400 tests and groups in all,
  or a top-level `$and` of more than 15 groups, is refused (`NotExpressible` / ValueError).

## Conditions compiled from expressions (`condition_json`)

The Python evaluator of `dutyline.expressions` is the specification; `condition_json` reproduces it, which a
property test checks on random expressions and events (30,000 expressions, ≈100,000 events: no difference).
Each attribute path the condition reads becomes typed fields of the event, which `fires()` writes from the
caller's flat event value `event[flat_key(path)]` (missing means null), only those the condition uses:

| field | holds | used for |
|---|---|---|
| `<key>#k` | a canonical text of the value, equal for two values iff the evaluator calls them equal (`1 == 1.0`, `true != 1`, lists and objects element by element, NaN equal to nothing); SHA-256 when longer than 256 characters | `==`, `!=`, `in`, null tests |
| `<key>#c` | ordering class: `"n"` number, `"s"` text, `"x"` anything else (NaN too) | orderings |
| `<key>#n` | the number as a double (numbers only; ±infinity allowed) | orderings, arithmetic |
| `<key>#s` | the UTF-8 of the text in hex (texts only): byte order is code point order, and hex needs no JSON escapes | text ordering, `startswith` |
| `<key>#f` | whether the value is a finite number | arithmetic |
| `<key>#t` | the evaluator's truthiness of the value | `and`, `or`, `not` of a bare value |

`<key>` is `flat_key(path)` with every character other than ASCII letters, digits and `_` written `~<hex>~`.
Constants complete the event when used: `#zero` (0.0), `#max` and `#min` (± the largest double).

Arithmetic is null when an operand is not a finite number, a divisor is zero or a step overflows, as in the
evaluator: every step is tested against `#max`/`#min` and every divisor against `#zero`. A comparison whose sides
are not a single field (`a * 2 > 10`, `a + b < c * d`) becomes the sign of their difference, `0 < (a * 2 - 10)`,
exact in IEEE arithmetic for finite numbers. Negation is pushed inward with each test's complement written out.

Supported: `==` `!=` `<` `<=` `>` `>=` between attributes, constants, arithmetic and conditions, either way round;
`in` / `not in` a written list (of constants or attributes); `and` `or` `not`; `exists(path)`;
`startswith(path, "text")`; `contains([list], x)`; the truth of any value; anything without attributes is
computed by the evaluator itself. Not expressible (`NotExpressible`, naming the construct): `len`, `lower`,
`upper`, `any_of`, `contains` and `startswith` over attributes, `in` with an attribute or a text on the right.

Known differences, all for values JSON cannot carry or numbers beyond 2^53: integers beyond ±2^53 are ordered
and computed as doubles (their equality stays exact); NaN and ±infinity are never finite operands, so `-x`,
`1 / x` are null for them (the evaluator keeps `-x` a number); integer arithmetic whose result exceeds 2^53 is
rounded; texts longer than 16 KiB of UTF-8 are ordered by their first 16 KiB; an empty mapping that is not a
dict counts as false; mappings with non-text keys compare by identity.

## Hand-written conditions

`load()` also takes durable_rules conditions over plain fields (ASCII letters, digits and `_`), such as
`{"$gt": {"amount": {"$m": "limit"}}}`. Those fields are sent as they are (numbers as doubles, only the fields
the condition names) and keep durable_rules' own semantics, except that `$m` references are guarded (a missing
reference does not match) and `$nex`, regular expressions and constant-only arithmetic are refused.

## Speed (bench/rulehost_bench.py; one thread, CPython 3.11, 2 cores with load average ≈5; the whole call)

| rule | p50 | p99 |
|---|---|---|
| `{"$gt": {"amount": {"$m": "limit"}}}`, fires | 2.8 µs | 4.3 µs |
| the same, does not fire | 1.9 µs | 2.3 µs |
| `context.amount > resource.limit` (condition_json), fires | 3.6 µs | 3.9 µs |
| `resource.owner == subject.id and context.amount > 2 * resource.limit`, fires | 6.4 µs | 7.2 µs |

Eight threads sharing one host: 140,000–165,000 calls/s in all. Loading 300 new rules: 0.06–0.3 s (the engine
lock is released between rulesets); loading the same condition objects again: under 1 ms.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from json.encoder import encode_basestring_ascii as _quote  # the C string encoder of json.dumps, without its overhead
from typing import Any, Union

import durable_rules_engine as _engine

from dutyline.errors import DutylineError
from dutyline.expressions import (
    Arithmetic,
    Call,
    Comparison,
    Expression,
    ExpressionError,
    ListOf,
    Logical,
    Negate,
    Node,
    Not,
    Path,
)

# The evaluator's own semantics for everything computed here from constants, so that folding cannot drift.
from dutyline.expressions import _ARITHMETIC, _COMPARE, _compile, _equal, _paths, _truthy

__all__ = ["NotExpressible", "RuleHost", "RuleHostError", "check_condition", "condition_json"]

_LOCK = threading.Lock()  # the engine is one global C state: every call from every RuleHost goes through this
_IDS = itertools.count(1)  # correlation ids, taken under _LOCK
_SESSION = "0"
_NOT_HANDLED = 1  # durable_rules' ERR_EVENT_NOT_HANDLED: the event matched no rule
_PRIME = '{"id":0,"sid":"0","#prime":true}'  # matched by each ruleset's second rule, "prime", and by nothing else

_MAX_KEY = 256  # canonical keys longer than this are digested (the engine truncates values at 65,536 bytes)
_MAX_HEX = 32768  # text ordering looks at the first 16 KiB of UTF-8; constants are far shorter (≤ 2000 characters)
_MAX_RAW_TEXT = 60000  # a hand-written condition's text field: refuse rather than let the engine truncate it
_MAX_DEPTH = 32  # the evaluator compares nested lists and objects this deep, then by identity
_TAGS = frozenset("kcnsft")
_RAW_NAME = re.compile(r"[A-Za-z0-9_]+")
_BASE = re.compile(r"(?:[A-Za-z0-9_]|~[0-9a-f]+~)+")
_ESCAPED = re.compile(r"~([0-9a-f]+)~")
_COMPARISONS = {"$eq", "$neq", "$lt", "$lte", "$gt", "$gte"}
_ARITHMETIC_OPS = {"+": "$add", "-": "$sub", "*": "$mul", "/": "$div"}
_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_NEGATE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}  # for numbers and texts, never NaN here
_OPERATOR = {"==": "$eq", "!=": "$neq", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
# durable_rules limits, measured on 2.0.28: a rule with 16 $and/$or groups is refused (error 113); a node with
# 512 successors (a flat $or of 512, or 64 rules of 14 branches) makes assert_event loop forever.
_MAX_GROUPS = 15  # per rule
_MAX_RULES = 16  # per ruleset, when a top-level $or is split into rules
_MAX_NODES = 400  # tests and groups per ruleset


class RuleHostError(DutylineError):
    """durable_rules did something it should not (an unexpected result code, an action for another event)."""


class NotExpressible(ExpressionError):
    """A valid condition that durable_rules cannot evaluate; `construct` names what, e.g. "len()"."""

    def __init__(self, construct: str, text: str, hint: str = "") -> None:
        column = text.find(hint) + 1 if hint and hint in text else 1
        super().__init__(f"durable_rules cannot evaluate {construct}", column)
        self.construct = construct


# ---------------------------------------------------------------------------------------------------------------
# Numbers and values as the engine must see them


def _decimal(number: float) -> str:
    """A finite double as a positional decimal with a point, which the engine reads exactly (never `1e-06`)."""
    text = repr(number)
    if "e" in text:
        text = format(Decimal(text), "f")
        if "." not in text:
            text += ".0"
    return text


_INFINITY = "1" + "0" * 400 + ".0"  # the engine reads this as +inf, as strtod would
_MAX = _decimal(sys.float_info.max)
_CONSTANT_VALUES = {"#zero": "0.0", "#max": _MAX, "#min": "-" + _MAX}


def _number(value: int | float) -> str:
    """Any int or float (not NaN) as an engine double literal."""
    try:
        number = float(value)
    except OverflowError:
        number = math.inf if value > 0 else -math.inf
    if math.isinf(number):
        return _INFINITY if number > 0 else "-" + _INFINITY
    if number != number:
        raise ValueError("NaN has no durable_rules literal")
    return _decimal(number)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


_NEVER = itertools.count()  # keys of values equal to nothing, not even themselves (NaN)


def _key(value: Any) -> str:
    """Equal keys iff `expressions._equal` calls the values equal."""
    key = _raw_key(value, 0)
    if key is None:
        return f"!{next(_NEVER)}"
    if len(key) > _MAX_KEY:
        return "#" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return key


def _raw_key(value: Any, depth: int) -> str | None:
    if value is None:
        return "z"
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, str):
        return "s" + value
    if isinstance(value, float):
        if value != value:
            return None
        return "n0.0" if value == 0 else "n" + repr(value)
    if isinstance(value, int):
        try:
            number = float(value)
        except OverflowError:
            return "n" + str(int(value))
        if number == value:
            return "n0.0" if number == 0 else "n" + repr(number)
        return "n" + str(int(value))  # no float equals it: digits alone, which no float repr looks like
    # Lists and objects: each part length-prefixed, so that the key is unambiguous without escaping, and its size
    # stays linear in the value's (quoting the parts at every level doubled it per level: 2^28 at depth 28).
    if depth < _MAX_DEPTH:
        if isinstance(value, (list, tuple)):
            items = [_raw_key(item, depth + 1) for item in value]
            return None if None in items else "l" + "".join(f"{len(k)}:{k}" for k in items)  # type: ignore[arg-type]
        if isinstance(value, Mapping) and all(type(k) is str for k in value):
            parts = []
            for k, v in sorted(value.items()):
                item = _raw_key(v, depth + 1)
                if item is None:
                    return None
                parts.append(f"{len(k)}:{k}{len(item)}:{item}")
            return "d" + "".join(parts)
    return f"@{id(value):x}"  # the evaluator's last resort: `a is b`


def _hex(text: str) -> str:
    return text.encode("utf-8", "surrogatepass").hex()[:_MAX_HEX]


def _typed_fields(prefix: str, tags: str, value: Any) -> str:
    """The event fields `"<key>#<tag>": ...` of one attribute value, for the tags the condition reads."""
    parts = []
    number = _is_number(value) and value == value  # NaN is no orderable number for durable_rules
    for tag in tags:
        if tag == "k":
            parts.append(f'{prefix}k":{_quote(_key(value))}')
        elif tag == "c":
            parts.append(f'{prefix}c":"{"n" if number else "s" if isinstance(value, str) else "x"}"')
        elif tag == "n":
            if number:
                parts.append(f'{prefix}n":{_number(value)}')
        elif tag == "s":
            if isinstance(value, str):
                parts.append(f'{prefix}s":"{_hex(value)}"')
        elif tag == "f":
            parts.append(f'{prefix}f":{"true" if number and _is_finite(value) else "false"}')
        else:  # "t"
            parts.append(f'{prefix}t":{"true" if _truthy(value) else "false"}')
    return ",".join(parts)


def _raw_value(name: str, value: Any) -> str:
    if type(value) is float and math.isfinite(value):  # the usual case (amounts, limits): `_number` inlined
        text = repr(value)
        return text if "e" not in text else _decimal(value)
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if _is_number(value):
        if value != value:
            raise ValueError(f"event field {name!r} is NaN, which durable_rules cannot read")
        return _number(value)
    if isinstance(value, str):
        text = _quote(value)
        if len(text) > _MAX_RAW_TEXT:
            raise ValueError(f"event field {name!r} is too long for durable_rules ({len(text)} characters)")
        return text
    raise TypeError(f"event field {name!r} must be null, a bool, a number or text, not {type(value).__name__}")


def _dumps(value: Any) -> str:
    """JSON as the engine must read it: every number a positional double."""
    if value is None or value is True or value is False:
        return "null" if value is None else "true" if value else "false"
    if _is_number(value):
        return _number(value)
    if isinstance(value, str):
        text = _quote(value)
        if len(text) > _MAX_RAW_TEXT:
            raise ValueError(f"a text of {len(text)} characters is too long for durable_rules")
        return text
    if isinstance(value, list):
        return "[" + ",".join(_dumps(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_quote(str(k))}:{_dumps(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"{type(value).__name__} in a condition")


# ---------------------------------------------------------------------------------------------------------------
# The rule host


@dataclass(frozen=True, slots=True)
class _Registration:
    """One ruleset in the engine, shared by every logical name whose condition has this content."""

    handle: int
    digest: str
    head: str  # '"sid":"0"' and the constant fields the condition reads
    typed: tuple[tuple[str, str, str], ...]  # (flat key, '"<key>#', tags read)
    raw: tuple[tuple[str, str], ...]  # (field name, '"name":')


@dataclass(frozen=True, slots=True)
class _Prepared:
    text: str  # the ruleset JSON
    digest: str
    head: str
    typed: tuple[tuple[str, str, str], ...]
    raw: tuple[tuple[str, str], ...]


class RuleHost:
    """Rules as durable_rules rulesets, asked one event at a time. Thread-safe; starts no threads."""

    def __init__(self) -> None:
        self._rules: dict[str, _Registration] = {}  # replaced whole, under _LOCK; read under _LOCK
        self._loading = threading.Lock()  # one load at a time per host
        # name → (the condition object last loaded under it, its preparation): `load` is given every rule of
        # every organisation on each change, and preparing them all again costs ~0.1 s at 1,000 organisations.
        # Conditions are not changed in place (they are compiled artefacts), so the same object means the same
        # preparation.
        self._prepared: dict[str, tuple[Mapping[str, Any], _Prepared]] = {}

    def load(self, rulesets: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace the whole set of rules atomically: logical name → durable_rules condition, the `m` of
        `{"all": [{"m": condition}]}` (from `condition_json`, or hand-written over plain fields).

        Names absent from `rulesets` stop existing (`fires` raises KeyError); a name whose condition is unchanged
        keeps its registration; identical conditions share one. Raises ValueError naming the rule whose
        condition is malformed or unsafe, and then nothing changes."""
        with self._loading:
            prepared: dict[str, _Prepared] = {}
            for name, condition in rulesets.items():
                cached = self._prepared.get(name)
                if cached is not None and cached[0] is condition:
                    prepared[name] = cached[1]
                    continue
                try:
                    prepared[name] = _prepare(condition)
                except (ValueError, TypeError) as error:
                    raise ValueError(f"rule {name!r}: {error}") from error
            current = {registration.digest: registration for registration in self._rules.values()}
            created: dict[str, _Registration] = {}
            try:
                for name, item in prepared.items():
                    if item.digest in current or item.digest in created:
                        continue
                    # The engine lock is taken per ruleset (≈1 ms each), so decisions go on during a reload.
                    with _LOCK:
                        try:
                            created[item.digest] = _register(item)
                        except _engine.error as error:
                            raise ValueError(f"rule {name!r}: durable_rules refused the condition: {error}") from error
                    time.sleep(0)  # hand the GIL to a decision waiting for the lock, or we would take it again first
            except BaseException:
                with _LOCK:
                    for registration in created.values():
                        _unregister(registration)
                raise
            available = {**current, **created}
            rules = {name: available[item.digest] for name, item in prepared.items()}
            kept = {registration.digest for registration in rules.values()}
            with _LOCK:
                self._rules = rules
                for digest, registration in current.items():
                    if digest not in kept:
                        _unregister(registration)
            self._prepared = {name: (rulesets[name], item) for name, item in prepared.items()}

    def fires(self, name: str, event: Mapping[str, Any]) -> bool:
        """Whether rule `name`'s condition holds for `event` (flat: field name → value; only the fields the
        condition reads are sent, a missing one is null). Unknown name: KeyError."""
        with _LOCK:
            return _ask(self._rules[name], event)

    def fired(self, events: Iterable[tuple[str, Mapping[str, Any]]]) -> list[bool]:
        """`fires` for each (name, event), under one acquisition of the engine lock."""
        with _LOCK:
            return [_ask(self._rules[name], event) for name, event in events]

    def names(self) -> frozenset[str]:
        """The logical names loaded."""
        return frozenset(self._rules)

    def registration(self, name: str) -> str:
        """The durable_rules ruleset serving `name` (it changes only when the condition does). KeyError if unknown."""
        return f"dutyline@{self._rules[name].digest}"

    def close(self) -> None:
        """Unregister every ruleset; the host is empty afterwards. (A host dropped without it keeps its rulesets
        in the engine: a finaliser could run inside `fires`, on the thread that holds the engine lock.)"""
        self.load({})


def check_condition(condition: Mapping[str, Any], max_bytes: int | None = None) -> None:
    """Raise ValueError if `RuleHost.load` would refuse this condition (for validation at compile time:
    `load` replaces everything at once, so one refused condition stops a whole reload); with `max_bytes`,
    `NotExpressible` if its ruleset JSON is larger (durable_rules registers it under the engine lock, which
    every decision waits for: ≈0.6 ms per KB measured on 2.0.28)."""
    prepared = _prepare(condition)
    if max_bytes is not None and len(prepared.text) > max_bytes:
        raise NotExpressible(
            f"this condition: it compiles to {len(prepared.text):,} bytes of rules, more than the "
            f"{max_bytes:,} allowed (DUTYLINE_MAX_CONDITION_BYTES); split it into simpler rules",
            "",
        )


def _ask(registration: _Registration, event: Mapping[str, Any]) -> bool:
    """One question to the engine. Called with _LOCK held."""
    parts = [registration.head]
    for flat, prefix, tags in registration.typed:
        fields = _typed_fields(prefix, tags, event.get(flat))
        if fields:
            parts.append(fields)
    for field, quoted in registration.raw:
        if field in event:
            parts.append(quoted + _raw_value(field, event[field]))
    cid = next(_IDS)
    return _post(registration.handle, f'{{"id":{cid},{",".join(parts)}}}', cid)


def _post(handle: int, text: str, cid: int) -> bool:
    """Assert one event and run every action it queued (ours alone, in practice), on this thread."""
    started = False
    try:
        code, state = _engine.assert_event(handle, text)
        if code == _NOT_HANDLED:
            return False
        if code != 0:
            raise RuleHostError(f"durable_rules answered {code} for {text}")
        echo = f'{{"id":{cid},'
        fired = False
        result = _engine.start_action_for_state(handle, state)
        messages = result[1] if result else None
        while messages is not None:
            started = True
            fired = fired or _carries(messages, echo, cid)
            messages = _engine.complete_and_start_action(handle, state)
            started = messages is not None
        if not fired:
            raise RuleHostError(f"durable_rules matched {text} but handed back no action for it")
        return True
    except _engine.error as error:
        raise RuleHostError(f"durable_rules failed on {text}: {error}") from error
    finally:
        if started:  # an action left open would lock the session for the engine's lease time
            _engine.abandon_action(handle, state)


def _carries(messages: str, echo: str, cid: int) -> bool:
    """Whether the action's messages are this call's event. The engine echoes our text verbatim, and no text
    value can hold `{"m":{"id":` unescaped, so a substring test decides; JSON is the fallback."""
    if '{"m":' + echo in messages:
        return True
    for value in json.loads(messages).values():
        for message in value if isinstance(value, list) else [value]:
            if isinstance(message, Mapping) and isinstance(message.get("m"), Mapping) and message["m"].get("id") == cid:
                return True
    return False


def _register(item: _Prepared) -> _Registration:
    handle = _engine.create_ruleset(f"dutyline@{item.digest}", item.text)
    try:
        # Create the one session now, through an action run to completion: a session that never ran an action
        # holds uninitialised pointers that delete_state would free (SIGSEGV).
        if not _post(handle, _PRIME, 0):
            raise RuleHostError("durable_rules did not run the priming rule")
    except BaseException:
        _engine.delete_ruleset(handle)
        raise
    return _Registration(handle, item.digest, item.head, item.typed, item.raw)


def _unregister(registration: _Registration) -> None:
    # The session first: delete_ruleset alone leaks it (≈80 KB). It is primed, so deleting it is safe.
    _engine.delete_state(registration.handle, _SESSION)
    _engine.delete_ruleset(registration.handle)


def _prepare(condition: Mapping[str, Any]) -> _Prepared:
    """Check a condition, guard its raw references, and write the ruleset JSON and the event plan."""
    fields: dict[str, None] = {}
    parts = _split(_flat(_check(condition, fields)))
    rules = [f'"r{i}":{{"all":[{{"m":{_dumps(part)}}}]}}' for i, part in enumerate(parts)]
    text = "{" + ",".join([*rules, '"prime":{"all":[{"m":{"$ex":{"#prime":1}}}]}']) + "}"
    digest = hashlib.sha256(text.encode()).hexdigest()[:20]
    constants: list[str] = []
    typed: dict[str, list[str]] = {}
    raw: list[tuple[str, str]] = []
    for field in fields:
        if field in _CONSTANT_VALUES:
            constants.append(f'"{field}":{_CONSTANT_VALUES[field]}')
        elif "#" in field:
            base, tag = field.rsplit("#", 1)
            typed.setdefault(base, []).append(tag)
        else:
            raw.append((field, f'"{field}":'))
    head = ",".join([f'"sid":"{_SESSION}"', *constants])
    plan = tuple((_unescape(base), f'"{base}#', "".join(sorted(tags))) for base, tags in sorted(typed.items()))
    return _Prepared(text, digest, head, plan, tuple(sorted(raw)))


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


def _split(condition: Any) -> list[Any]:
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
        if isinstance(value, float) and not math.isfinite(value):
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
                raise ValueError("arithmetic between two constants, which durable_rules computes wrongly: write the result")
            for side in (inner["$l"], inner["$r"]):
                if side is None or isinstance(side, (bool, str)):
                    raise ValueError("arithmetic needs numbers")
            return False
    raise ValueError(f"unsupported operand {value!r}")


def _field(name: Any, fields: dict[str, None]) -> None:
    if not isinstance(name, str):
        raise ValueError(f"field names are text, not {name!r}")
    if name in _CONSTANT_VALUES:
        pass
    elif "#" in name:
        base, tag = name.rsplit("#", 1)
        if tag not in _TAGS or not _BASE.fullmatch(base):
            raise ValueError(f"{name!r} is not a field condition_json writes")
    elif not _RAW_NAME.fullmatch(name) or name in ("id", "sid"):
        raise ValueError(f"field {name!r}: plain fields are ASCII letters, digits and _, and not id or sid")
    fields[name] = None


# ---------------------------------------------------------------------------------------------------------------
# Expressions → conditions

# A formula: a durable_rules test (dict), or ("and"|"or", formulas), or TRUE / FALSE.
_Formula = Union[dict, tuple]
TRUE: tuple = ("true",)
FALSE: tuple = ("false",)


def _all(*formulas: _Formula) -> _Formula:
    out: list[_Formula] = []
    for formula in formulas:
        if formula is FALSE:
            return FALSE
        if formula is TRUE:
            continue
        out.extend(formula[1] if isinstance(formula, tuple) and formula[0] == "and" else [formula])
    return TRUE if not out else out[0] if len(out) == 1 else ("and", out)


def _any(*formulas: _Formula) -> _Formula:
    out: list[_Formula] = []
    for formula in formulas:
        if formula is TRUE:
            return TRUE
        if formula is FALSE:
            continue
        out.extend(formula[1] if isinstance(formula, tuple) and formula[0] == "or" else [formula])
    return FALSE if not out else out[0] if len(out) == 1 else ("or", out)


@dataclass(frozen=True, slots=True)
class _Cond:
    """A condition and its complement, both written without negation."""

    yes: _Formula
    no: _Formula


_ALWAYS = _Cond(TRUE, FALSE)
_NEVER_COND = _Cond(FALSE, TRUE)


def _either(*conds: _Cond) -> _Cond:
    return _Cond(_any(*(c.yes for c in conds)), _all(*(c.no for c in conds)))


def _both(*conds: _Cond) -> _Cond:
    return _Cond(_all(*(c.yes for c in conds)), _any(*(c.no for c in conds)))


def _negated(cond: _Cond) -> _Cond:
    return _Cond(cond.no, cond.yes)


def _constant(truth: bool) -> _Cond:
    return _ALWAYS if truth else _NEVER_COND


# Values a comparison can have on either side.


@dataclass(frozen=True, slots=True)
class _Const:
    value: Any


@dataclass(frozen=True, slots=True)
class _Field:
    base: str  # the escaped flat key; its fields are base#k, #c, #n, #s, #f and #t

    def __call__(self, tag: str) -> str:
        return f"{self.base}#{tag}"


@dataclass(frozen=True, slots=True)
class _Num:
    """An arithmetic result: a durable_rules numeric expression, and when it is a number (else it is null)."""

    expression: Any
    valid: _Formula
    invalid: _Formula


@dataclass(frozen=True, slots=True)
class _Bool:
    cond: _Cond


@dataclass(frozen=True, slots=True)
class _List:
    items: tuple[Any, ...]  # values; a written list with attributes in it


_Value = Union[_Const, _Field, _Num, _Bool, _List]
_RANK = {_Field: 0, _Num: 1, _Bool: 2, _List: 3, _Const: 4}


def condition_json(expression: Expression, flat_key: Callable[[tuple[str, ...]], str]) -> dict[str, Any]:
    """The durable_rules condition (for `{"all": [{"m": ...}]}`) that holds exactly when `expression` does, over
    the typed fields `RuleHost.fires` writes from a flat event keyed by `flat_key(path)`. Raises `NotExpressible`
    naming the construct durable_rules cannot evaluate."""
    compiler = _Compiler(expression.text, flat_key)
    condition = _emit(compiler.condition(expression.tree).yes)
    try:
        _split(condition)
    except ValueError as error:
        raise NotExpressible(f"a condition this large: {error}", expression.text) from error
    return condition


def _emit(formula: _Formula) -> dict[str, Any]:
    if formula is TRUE:
        return {"#zero": 0.0}
    if formula is FALSE:
        return {"$neq": {"#zero": 0.0}}
    if isinstance(formula, tuple):
        return {f"${formula[0]}": [_emit(item) for item in formula[1]]}
    return formula


def _test(op: str, field: str, operand: Any) -> dict[str, Any]:
    return {field: operand} if op == "==" else {_OPERATOR[op]: {field: operand}}


def _is_plain_number(value: Any) -> bool:
    return _is_number(value) and value == value


class _Compiler:
    def __init__(self, text: str, flat_key: Callable[[tuple[str, ...]], str]) -> None:
        self.text = text
        self.flat_key = flat_key

    def refuse(self, construct: str, hint: str = "") -> NotExpressible:
        return NotExpressible(construct, self.text, hint)

    # conditions

    def condition(self, node: Node) -> _Cond:
        if not any(True for _ in _paths(node)):
            return _constant(_truthy(_compile(node)({})))
        match node:
            case Logical("and", operands):
                return _both(*(self.condition(operand) for operand in operands))
            case Logical(_, operands):
                return _either(*(self.condition(operand) for operand in operands))
            case Not(operand):
                return _negated(self.condition(operand))
            case Comparison(op, left, right):
                return self.comparison(op, left, right)
            case Call(function, args):
                return self.call(function, args)
            case ListOf(items):
                return _constant(bool(items))  # a list is true when it is not empty, whatever it holds
        return self.truth(self.value(node))

    def truth(self, value: _Value) -> _Cond:
        match value:
            case _Const(constant):
                return _constant(_truthy(constant))
            case _Field():
                return _Cond({value("t"): True}, {value("t"): False})
            case _Num(expression, valid, invalid):
                return _Cond(_all(valid, {"$neq": {"#zero": expression}}), _any(invalid, {"#zero": expression}))
            case _Bool(cond):
                return cond
            case _List(items):
                return _constant(bool(items))
        raise AssertionError(value)

    def call(self, function: str, args: tuple[Node, ...]) -> _Cond:
        if function == "exists":
            k = self.value(args[0])("k")  # type: ignore[operator]  # the parser makes the argument a path
            return _Cond({"$neq": {k: "z"}}, {k: "z"})
        if function == "startswith":
            subject, prefix = self.value(args[0]), self.value(args[1])
            if any(not isinstance(v, (_Field, _Const)) or isinstance(v, _Const) and not isinstance(v.value, str)
                   for v in (subject, prefix)):
                return _NEVER_COND  # only a text starts with a text (numbers, null, true, lists do not)
            if isinstance(subject, _Field) and isinstance(prefix, _Const):
                s, low = subject("s"), _hex(prefix.value)
                high = low + "g"  # above every hex string that starts with `low`, below every other one above it
                return _Cond(
                    _all({"$gte": {s: low}}, {"$lt": {s: high}}),
                    _any({"$neq": {subject("c"): "s"}}, {"$lt": {s: low}}, {"$gte": {s: high}}),
                )
            raise self.refuse("startswith() with an attribute as the prefix", "startswith")
        if function == "contains":
            return self.membership("in", self.value(args[1]), self.value(args[0]), "contains")
        raise self.refuse(f"{function}() of an attribute", function)

    # values

    def value(self, node: Node) -> _Value:
        if not any(True for _ in _paths(node)):
            return _Const(_compile(node)({}))
        match node:
            case Path(root, names):
                key = self.flat_key((root, *names))
                if not key:
                    raise self.refuse(f"the path {'.'.join((root, *names))} (its flat key is empty)")
                return _Field(_escape(key))
            case Arithmetic(first, rest):
                value = self.value(first)
                for op, operand in rest:
                    value = self.arithmetic(op, value, self.value(operand))
                return value
            case Negate(operand):
                return self.arithmetic("-", _Const(0.0), self.value(operand))
            case ListOf(items):
                return _List(tuple(self.value(item) for item in items))
            case Call(function, _) if function in ("exists", "startswith", "contains", "any_of"):
                return _Bool(self.condition(node))
            case Call(function, _):
                raise self.refuse(f"{function}() of an attribute", function)
            case Not() | Logical() | Comparison():
                return _Bool(self.condition(node))
        raise AssertionError(node)

    def arithmetic(self, op: str, left: _Value, right: _Value) -> _Value:
        if isinstance(left, _Const) and isinstance(right, _Const):
            return _Const(_ARITHMETIC[op](left.value, right.value))
        for side in (left, right):
            if isinstance(side, (_Bool, _List)) or isinstance(side, _Const) and not _is_plain_number(side.value):
                return _Const(None)  # arithmetic on anything but numbers is null, whatever the other side holds
            if isinstance(side, _Const) and not _is_finite(side.value):
                raise self.refuse("arithmetic with a number beyond the range of doubles")
        if op == "/" and isinstance(right, _Const) and right.value == 0:
            return _Const(None)
        (a, a_valid, a_invalid), (b, b_valid, b_invalid) = self.operand(left), self.operand(right)
        expression = {_ARITHMETIC_OPS[op]: {"$l": a, "$r": b}}
        valid = [a_valid, b_valid, {"$gte": {"#max": expression}}, {"$lte": {"#min": expression}}]
        invalid = [a_invalid, b_invalid, {"$lt": {"#max": expression}}, {"$gt": {"#min": expression}}]
        if op == "/" and not isinstance(right, _Const):
            valid.append({"$neq": {"#zero": b}})
            invalid.append({"#zero": b})
        # Flat: valid is "every operand a finite number, every divisor non-zero, every step finite"; invalid is
        # any of the opposites. A test computed from a missing or non-finite operand may say anything, but only
        # when another test of the same formula has already decided it; and with finite operands and non-zero
        # divisors no step is NaN, so "not finite" is "above #max or below #min".
        return _Num(expression, _all(*valid), _any(*invalid))

    def operand(self, value: _Value) -> tuple[Any, _Formula, _Formula]:
        match value:
            case _Const(constant):
                return float(constant), TRUE, FALSE
            case _Field():
                return {"$m": value("n")}, {value("f"): True}, {value("f"): False}
            case _Num(expression, valid, invalid):
                return expression, valid, invalid
        raise AssertionError(value)

    # comparisons

    def comparison(self, op: str, left_node: Node, right_node: Node) -> _Cond:
        left = self.value(left_node)
        if op in ("in", "not in"):
            return self.membership(op, left, self.value(right_node), "in")
        right = self.value(right_node)
        if isinstance(left, _List) or isinstance(right, _List):
            raise self.refuse("a comparison with a list that holds attributes", "[")
        if _RANK[type(left)] > _RANK[type(right)]:
            left, right, op = right, left, _FLIP[op]
        if op in ("==", "!="):
            equal = self.equal(left, right)
            return equal if op == "==" else _negated(equal)
        return self.order(op, left, right)

    def membership(self, op: str, x: _Value, container: _Value, hint: str) -> _Cond:
        if isinstance(container, _Const):
            if isinstance(container.value, tuple):
                items: tuple[_Value, ...] = tuple(_Const(item) for item in container.value)
            elif isinstance(container.value, str):
                raise self.refuse("'in' with a text on the right (a substring test)", hint)
            else:
                return _NEVER_COND  # no list: both `in` and `not in` are false
        elif isinstance(container, _List):
            items = container.items
        elif isinstance(container, (_Num, _Bool)):
            return _NEVER_COND  # a number, null or a truth value is no list
        else:
            raise self.refuse("'in' with an attribute on the right (membership in a list-valued attribute)", hint)
        for item in items:
            if isinstance(item, _List):
                raise self.refuse("a list that holds attributes inside a list", "[")
        found = _either(*(self.compare_equal(x, item) for item in items))
        return found if op == "in" else _negated(found)

    def compare_equal(self, left: _Value, right: _Value) -> _Cond:
        if isinstance(left, _List):
            raise self.refuse("a comparison with a list that holds attributes", "[")
        if _RANK[type(left)] > _RANK[type(right)]:
            left, right = right, left
        return self.equal(left, right)

    def equal(self, left: _Value, right: _Value) -> _Cond:
        """`left == right`, with left ranked no higher than right."""
        match left, right:
            case _Const(a), _Const(b):
                return _constant(_equal(a, b))
            case _Field(), _Const(c):
                k, key = left("k"), _key(c)
                return _Cond({k: key}, {"$neq": {k: key}})
            case _Field(), _Field():
                k, other = left("k"), {"$m": right("k")}
                return _Cond({k: other}, {"$neq": {k: other}})
            case _Field(), _Num(expression, valid, invalid):
                n, k = left("n"), left("k")
                return _Cond(
                    _any(_all(valid, {n: expression}), _all(invalid, {k: "z"})),
                    _any(
                        _all(valid, _any({"$neq": {left("c"): "n"}}, {"$neq": {n: expression}})),
                        _all(invalid, {"$neq": {k: "z"}}),
                    ),
                )
            case _Field(), _Bool(cond):
                k = left("k")
                return _Cond(
                    _any(_all(cond.yes, {k: "t"}), _all(cond.no, {k: "f"})),
                    _any(_all(cond.yes, {"$neq": {k: "t"}}), _all(cond.no, {"$neq": {k: "f"}})),
                )
            case _Num(), _Num():
                difference = {"$sub": {"$l": left.expression, "$r": right.expression}}
                both = _all(left.valid, right.valid)
                return _Cond(
                    _any(_all(both, {"#zero": difference}), _all(left.invalid, right.invalid)),
                    _any(
                        _all(both, {"$neq": {"#zero": difference}}),
                        _all(left.valid, right.invalid),
                        _all(left.invalid, right.valid),
                    ),
                )
            case _Num(expression, valid, invalid), _Const(c):
                if c is None:
                    return _Cond(invalid, valid)
                if not _is_plain_number(c):
                    return _NEVER_COND
                if not _is_finite(c):
                    raise self.refuse("a comparison with a number beyond the range of doubles")
                difference = {"$sub": {"$l": expression, "$r": float(c)}}
                return _Cond(_all(valid, {"#zero": difference}), _any(invalid, {"$neq": {"#zero": difference}}))
            case _Num(), _Bool():
                return _NEVER_COND  # a number or null never equals true or false
            case _Bool(a), _Bool(b):
                return _Cond(_any(_all(a.yes, b.yes), _all(a.no, b.no)), _any(_all(a.yes, b.no), _all(a.no, b.yes)))
            case _Bool(cond), _Const(c):
                return cond if c is True else _negated(cond) if c is False else _NEVER_COND
        raise AssertionError((left, right))

    def order(self, op: str, left: _Value, right: _Value) -> _Cond:
        """`left op right` for op in < <= > >=, with left ranked no higher than right."""
        negated = _NEGATE[op]
        match left, right:
            case _Const(a), _Const(b):
                return _constant(_COMPARE[op](a, b))
            case (_Bool(), _) | (_, _Bool()):
                return _NEVER_COND  # true and false are not ordered
            case _Field(), _Const(c):
                if _is_plain_number(c):
                    literal: Any = float(c) if _is_finite(c) else c
                    field, kind = left("n"), "n"
                elif isinstance(c, str):
                    literal, field, kind = _hex(c), left("s"), "s"
                else:
                    return _NEVER_COND
                return _Cond(
                    _test(op, field, literal), _any({"$neq": {left("c"): kind}}, _test(negated, field, literal))
                )
            case _Field(), _Field():
                # Same class, then one comparison per class: the other one's left field is missing, so it is false.
                same = {left("c"): {"$m": right("c")}}
                numbers, texts = {"$m": right("n")}, {"$m": right("s")}
                return _Cond(
                    _all(same, _any(_test(op, left("n"), numbers), _test(op, left("s"), texts))),
                    _any(
                        {"$neq": same},
                        {left("c"): "x"},
                        _test(negated, left("n"), numbers),
                        _test(negated, left("s"), texts),
                    ),
                )
            case _Field(), _Num(expression, valid, invalid):
                n = left("n")
                return _Cond(
                    _all(valid, _test(op, n, expression)),
                    _any(invalid, {"$neq": {left("c"): "n"}}, _test(negated, n, expression)),
                )
            case _Num(), _Num():
                difference = {"$sub": {"$l": left.expression, "$r": right.expression}}
                both = _all(left.valid, right.valid)
                # a op b  ⇔  0 flip(op) (a - b): the sign of an IEEE difference of finite numbers is exact
                return _Cond(
                    _all(both, _test(_FLIP[op], "#zero", difference)),
                    _any(left.invalid, right.invalid, _test(_FLIP[negated], "#zero", difference)),
                )
            case _Num(expression, valid, invalid), _Const(c):
                if not _is_plain_number(c):
                    return _NEVER_COND
                if not _is_finite(c):
                    raise self.refuse("a comparison with a number beyond the range of doubles")
                difference = {"$sub": {"$l": expression, "$r": float(c)}}
                return _Cond(
                    _all(valid, _test(_FLIP[op], "#zero", difference)),
                    _any(invalid, _test(_FLIP[negated], "#zero", difference)),
                )
        raise AssertionError((left, right))


def _escape(key: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c == "_") else f"~{ord(c):x}~" for c in key)


def _unescape(base: str) -> str:
    return _ESCAPED.sub(lambda match: chr(int(match.group(1), 16)), base)

