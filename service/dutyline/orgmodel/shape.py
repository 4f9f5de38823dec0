"""A document's shape problems (its JSON Schema's errors) as issues a person can act on: the field and its own line,
what is expected in words, what was found, and a code with parameters that the console's catalogues word in zh or en.

jsonschema words an error for a schema's author ("{...the whole rule...} is not valid under any of the given
schemas"); here a union (`anyOf`) is resolved to the branch the value meant (the one its `kind` names, or the only
one of its type) and that branch's own errors are reported, at their own fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import jsonschema

from dutyline.errors import Issue, IssueCode, did_you_mean, nearest
from dutyline.orgmodel.source import Path, SourceMap, field_name, format_path

# English words of the parameters' tokens; console/i18n/<lang>.json has them as `issue.param.<name>.<token>`
# (a test holds the two to the same words).
EXPECTED = {
    "number": "a number",
    "whole_number": "a whole number",
    "text": "text",
    "quoted_text": "text in quotes",
    "boolean": "true or false",
    "list": "a list",
    "mapping": "a mapping of keys to values",
    "nothing": "nothing (null)",
}
GOT_TYPE = {
    "text": "the text",
    "number": "the number",
    "boolean": "the value",
    "list": "a list",
    "mapping": "a mapping",
    "nothing": "nothing (null)",
}
FORMAT = {
    "id": "an id: lower case letters, digits and underscores, starting with a letter",
    "action": "an action name: letters, digits and _ . : - (approve, can_read_user, GET)",
    "datetime": "a date (2026-03-01) or a date and time (2026-03-01T08:30)",
    "attribute_path": "a place to read a value from: context.amount, resource.risk_level, subject.department",
    "currency": "an ISO 4217 currency code in capitals: CNY, USD, HKD",
    "clock": "a time of day: 08:30",
    "duration": "a duration: 30m, 4h, 2d",
}
BOUND = {"at_least": "at least", "at_most": "at most", "above": "above", "below": "below"}
UNIT = {"characters": "character(s)", "items": "item(s)", "entries": "entry(ies)"}

_FORMAT_OF_PATTERN = {
    r"^[a-z][a-z0-9_]*$": "id",
    r"^[A-Za-z][A-Za-z0-9_.:-]*$": "action",
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?([+-]\d{2}:\d{2}|Z)?)?$": "datetime",
    r"^(subject|resource|context)(\.[^.\s]+)+$": "attribute_path",
    r"^[A-Z]{3}$": "currency",
    r"^([01]\d|2[0-3]):[0-5]\d$": "clock",
    r"^\d+(\.\d+)?(m|h|d)$": "duration",
}
_TYPE_TOKEN = {
    "integer": "whole_number",
    "number": "number",
    "string": "text",
    "boolean": "boolean",
    "array": "list",
    "object": "mapping",
    "null": "nothing",
}
_BOUNDS = {
    "minimum": "at_least",
    "maximum": "at_most",
    "exclusiveMinimum": "above",
    "exclusiveMaximum": "below",
}
_LENGTHS = {
    "minLength": ("at_least", "characters"),
    "maxLength": ("at_most", "characters"),
    "minItems": ("at_least", "items"),
    "maxItems": ("at_most", "items"),
    "minProperties": ("at_least", "entries"),
    "maxProperties": ("at_most", "entries"),
}


def words(table: dict[str, str], tokens: str) -> str:
    """The English of a parameter of tokens joined by `|` (`number|nothing`: a number or nothing (null)); a part
    that is no token stands as it is."""
    return " or ".join(table.get(part, part) for part in tokens.split("|"))


def shape_issues(validator: jsonschema.protocols.Validator, data: Any, source: SourceMap) -> list[tuple[Path, Issue]]:
    """Every shape error of `data`, each with the place of the value at fault (for `salvage` to cut it out)."""
    out: list[tuple[Path, Issue]] = []
    for error in validator.iter_errors(data):
        for leaf in _leaves(error):
            out.extend(_issues(leaf, source))
    seen: set[tuple[str, int, str]] = set()
    unique = []
    for cut, issue in out:  # branches of a union may agree on one error
        key = (issue.path, issue.line, issue.message)
        if key not in seen:
            seen.add(key)
            unique.append((cut, issue))
    return unique


def _branches(error: jsonschema.ValidationError) -> dict[int, list[jsonschema.ValidationError]]:
    out: dict[int, list[jsonschema.ValidationError]] = {i: [] for i in range(len(error.validator_value))}
    for sub in error.context or []:
        out[int(sub.relative_schema_path[0])].append(sub)
    return out


def _mismatched(errors: list[jsonschema.ValidationError]) -> bool:
    """Whether a branch failed only because the value is not of its type (or not its constant)."""
    for sub in errors:
        if sub.relative_path:
            return False
        if sub.validator in ("anyOf", "oneOf"):
            if not all(_mismatched(b) for b in _branches(sub).values()):
                return False
        elif sub.validator not in ("type", "enum", "const"):
            return False
    return bool(errors)


def _expected(errors: Iterable[jsonschema.ValidationError]) -> list[str]:
    out: list[str] = []
    for sub in errors:
        if sub.validator in ("anyOf", "oneOf"):
            for branch in _branches(sub).values():
                out += _expected(branch)
        elif sub.validator == "type":
            types = sub.validator_value if isinstance(sub.validator_value, list) else [sub.validator_value]
            out += [_TYPE_TOKEN.get(t, str(t)) for t in types]
        elif sub.validator == "enum":
            out += [f"`{v}`" for v in sub.validator_value]
        elif sub.validator == "const":
            out.append(f"`{sub.validator_value}`")
    return out


def _leaves(error: jsonschema.ValidationError) -> Iterator[jsonschema.ValidationError]:
    if error.validator not in ("anyOf", "oneOf"):
        yield error
        return
    branches = _branches(error)
    instance = error.instance
    live = {i: b for i, b in branches.items() if not _mismatched(b)}
    if isinstance(instance, dict) and "kind" in instance:
        # A tagged union: the branch whose `kind` the value names, however many other errors it has.
        named = {i: b for i, b in live.items() if not any(list(s.relative_path) == ["kind"] for s in b)}
        if named:
            live = named
        else:
            yield _not_allowed_kind(error, branches)
            return
    if not live:
        yield _union_mismatch(error, branches)
        return
    for sub in live[min(live)]:
        sub.path = error.path + sub.path  # relative to the union's value; make it whole for _issues
        yield from _leaves(sub)


def _not_allowed_kind(
    error: jsonschema.ValidationError, branches: dict[int, list[jsonschema.ValidationError]]
) -> jsonschema.ValidationError:
    kinds = [v for b in branches.values() for s in b if list(s.relative_path) == ["kind"] for v in _enum_values(s)]
    made = jsonschema.ValidationError(
        "not allowed", validator="enum", validator_value=list(dict.fromkeys(kinds)), instance=error.instance["kind"]
    )
    made.path = error.path + type(error.path)(["kind"])
    return made


def _enum_values(error: jsonschema.ValidationError) -> list[Any]:
    if error.validator == "enum":
        return list(error.validator_value)
    if error.validator == "const":
        return [error.validator_value]
    return []


def _union_mismatch(
    error: jsonschema.ValidationError, branches: dict[int, list[jsonschema.ValidationError]]
) -> jsonschema.ValidationError:
    expected = list(dict.fromkeys(token for b in branches.values() for token in _expected(b)))
    made = jsonschema.ValidationError(
        "wrong type", validator="union", validator_value=expected, instance=error.instance
    )
    made.path = error.path
    return made


def _got(value: Any) -> tuple[str, str]:
    """What a value is (a token of GOT_TYPE) and how it reads, for scalars."""
    if value is None:
        return "nothing", ""
    if isinstance(value, bool):
        return "boolean", "true" if value else "false"
    if isinstance(value, (int, float)):
        return "number", repr(value)
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "…"
        return "text", repr(shown)
    if isinstance(value, list):
        return "list", ""
    return "mapping", ""


def _issues(error: jsonschema.ValidationError, source: SourceMap) -> Iterator[tuple[Path, Issue]]:
    path: Path = tuple(error.path)
    instance = error.instance
    kind = error.validator
    got_type, got = _got(instance)
    if kind == "required":
        present = instance if isinstance(instance, dict) else {}
        for key in error.validator_value:
            if key not in present:
                where = (*path, key)
                message = f"`{key}` is missing: it is required here"
                yield path, _make(source, where, message, IssueCode.MISSING_FIELD, {"field": key})
        return
    if kind == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        for key in [k for k in instance if k not in known] if isinstance(instance, dict) else []:
            suggestion = nearest(key, known)
            message = f"unknown key `{key}` (the keys here: {', '.join(known)})" + did_you_mean(suggestion)
            params = {"field": str(key), "known": ", ".join(known), "suggestion": suggestion}
            line = source.mapped().get((*path, str(key))) or source.line(path)
            yield (
                (*path, str(key)),
                Issue(source.file, line, format_path(path), message, "error", IssueCode.UNKNOWN_KEY, params),
            )
        return
    if "propertyNames" in error.schema_path and isinstance(instance, str):
        path = (*path, instance)  # a key of a mapping (`inputs`) that is not of its form: at the key's own line
    name = field_name(path)
    if kind in ("type", "union"):
        if kind == "type":
            tokens = _expected([error])
        else:
            tokens = list(error.validator_value)
        if "whole_number" in tokens and "number" in tokens:
            tokens.remove("whole_number")
        if "nothing" in tokens and len(tokens) > 1:
            tokens.remove("nothing")  # an optional field's null is its default, not a value anyone writes
        if path and path[-1] == "number" and isinstance(instance, (int, float)) and tokens == ["text"]:
            tokens = ["quoted_text"]  # a duty number YAML read as a number: 2.1 for "2.1"
        expected = "|".join(tokens)
        message = f"`{name}` must be {words(EXPECTED, expected)}, got {GOT_TYPE[got_type]} {got}".rstrip()
        params = {"field": name, "expected": expected, "got_type": got_type, "got": got}
        yield path, _make(source, path, message, IssueCode.WRONG_TYPE, params)
    elif kind in ("enum", "const"):
        values = [str(v) for v in _enum_values(error)]
        allowed = ", ".join(values)
        suggestion = nearest(instance, values)
        shown = got or GOT_TYPE[got_type]
        message = f"`{name}` must be one of {allowed}, got {shown}" + did_you_mean(suggestion)
        params = {"field": name, "allowed": allowed, "got": shown, "suggestion": suggestion}
        yield path, _make(source, path, message, IssueCode.NOT_ALLOWED, params)
    elif kind == "pattern":
        form = _FORMAT_OF_PATTERN.get(str(error.validator_value), "")
        described = FORMAT.get(form) or error.schema.get("description") or f"text matching {error.validator_value}"
        message = f"`{name}` must be {described}, got {got}"
        params = {"field": name, "format": form or described, "got": got}
        yield path, _make(source, path, message, IssueCode.BAD_FORMAT, params)
    elif kind in _BOUNDS:
        bound, limit = _BOUNDS[kind], _number(error.validator_value)
        message = f"`{name}` must be {BOUND[bound]} {limit}, got {got}"
        params = {"field": name, "bound": bound, "limit": limit, "got": got}
        yield path, _make(source, path, message, IssueCode.OUT_OF_RANGE, params)
    elif kind in _LENGTHS:
        bound, unit = _LENGTHS[kind]
        count = str(len(instance)) if isinstance(instance, (str, list, dict)) else ""
        message = f"`{name}` must have {BOUND[bound]} {error.validator_value} {UNIT[unit]}, got {count}"
        params = {"field": name, "bound": bound, "limit": str(error.validator_value), "unit": unit, "got": count}
        yield path, _make(source, path, message, IssueCode.BAD_LENGTH, params)
    else:
        message = f"`{name}`: {error.message}"
        yield path, _make(source, path, message, IssueCode.SCHEMA, {"field": name, "detail": error.message})


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def _make(source: SourceMap, path: Path, message: str, code: IssueCode, params: dict[str, str]) -> Issue:
    return source.issue(path, message, code=code, params=params)
