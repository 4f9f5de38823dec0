"""Values as durable_rules must see them: numbers, canonical keys, typed event fields, ruleset JSON.

The engine's JSON reader rejects exponents (`1e-06`: error 204), does integer arithmetic on integers (`7 / 2 == 3`;
an integer division by zero kills the process with SIGFPE), compares texts longer than 65,535 bytes modulo 65,536
and coerces mixed types (`5 == "5"`). So every number is written as a positional decimal with a point
(`0.000001`, `5.0`), and an attribute a compiled condition reads is sent as typed fields, never as itself:

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
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import sys
from collections.abc import Mapping
from decimal import Decimal
from json.encoder import encode_basestring_ascii as quote  # the C string encoder of json.dumps, without its overhead
from typing import Any

from dutyline.expressions import is_finite_number, is_number, truthy

MAX_KEY = 256  # canonical keys longer than this are digested (the engine truncates values at 65,536 bytes)
MAX_HEX = 32768  # text ordering looks at the first 16 KiB of UTF-8; constants are far shorter (≤ 2000 characters)
MAX_RAW_TEXT = 60000  # a hand-written condition's text field: refuse rather than let the engine truncate it
_MAX_DEPTH = 32  # the evaluator compares nested lists and objects this deep, then by identity
_ESCAPED = re.compile(r"~([0-9a-f]+)~")


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
CONSTANT_VALUES = {"#zero": "0.0", "#max": _MAX, "#min": "-" + _MAX}


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


_NEVER = itertools.count()  # keys of values equal to nothing, not even themselves (NaN)


def canonical_key(value: Any) -> str:
    """Equal keys iff `expressions.equal` calls the values equal."""
    key = _raw_key(value, 0)
    if key is None:
        return f"!{next(_NEVER)}"
    if len(key) > MAX_KEY:
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


def hex_text(text: str) -> str:
    return text.encode("utf-8", "surrogatepass").hex()[:MAX_HEX]


def typed_fields(prefix: str, tags: str, value: Any) -> str:
    """The event fields `"<key>#<tag>": ...` of one attribute value, for the tags the condition reads."""
    parts = []
    number = is_number(value) and value == value  # NaN is no orderable number for durable_rules
    for tag in tags:
        if tag == "k":
            parts.append(f'{prefix}k":{quote(canonical_key(value))}')
        elif tag == "c":
            parts.append(f'{prefix}c":"{"n" if number else "s" if isinstance(value, str) else "x"}"')
        elif tag == "n":
            if number:
                parts.append(f'{prefix}n":{_number(value)}')
        elif tag == "s":
            if isinstance(value, str):
                parts.append(f'{prefix}s":"{hex_text(value)}"')
        elif tag == "f":
            parts.append(f'{prefix}f":{"true" if number and is_finite_number(value) else "false"}')
        else:  # "t"
            parts.append(f'{prefix}t":{"true" if truthy(value) else "false"}')
    return ",".join(parts)


def raw_value(name: str, value: Any) -> str:
    if type(value) is float and math.isfinite(
        value
    ):  # the usual case (amounts, limits), inlined: `_number`, `is_finite_number`
        text = repr(value)
        return text if "e" not in text else _decimal(value)
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if is_number(value):
        if value != value:
            raise ValueError(f"event field {name!r} is NaN, which durable_rules cannot read")
        return _number(value)
    if isinstance(value, str):
        text = quote(value)
        if len(text) > MAX_RAW_TEXT:
            raise ValueError(f"event field {name!r} is too long for durable_rules ({len(text)} characters)")
        return text
    raise TypeError(f"event field {name!r} must be null, a bool, a number or text, not {type(value).__name__}")


def dumps(value: Any) -> str:
    """JSON as the engine must read it: every number a positional double."""
    if value is None or value is True or value is False:
        return "null" if value is None else "true" if value else "false"
    if is_number(value):
        return _number(value)
    if isinstance(value, str):
        text = quote(value)
        if len(text) > MAX_RAW_TEXT:
            raise ValueError(f"a text of {len(text)} characters is too long for durable_rules")
        return text
    if isinstance(value, list):
        return "[" + ",".join(dumps(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{quote(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"{type(value).__name__} in a condition")


def escape(key: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c == "_") else f"~{ord(c):x}~" for c in key)


def unescape(base: str) -> str:
    return _ESCAPED.sub(lambda match: chr(int(match.group(1), 16)), base)
