"""Reading JSON request bodies into typed structs, with messages that name the field."""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeVar

import msgspec
from litestar import Request

from dutyline.errors import Invalid, Issue
from dutyline.orgmodel.source import format_path

T = TypeVar("T")


async def read_json(request: Request, type_: type[T]) -> T:
    """The body as `type_`; `Invalid` (400) for a wrong content type, malformed JSON or a wrong field."""
    return decode(await read_body(request), type_)


async def read_body(request: Request) -> bytes:
    """The raw body of a JSON request; `Invalid` (400) for a wrong content type."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise Invalid(
            f"Content-Type must be application/json, not {content_type or 'missing'}",
            [Issue("<request>", 0, "Content-Type", "must be application/json")],
        )
    return await request.body()


def decode(body: bytes, type_: type[T]) -> T:
    """msgspec reads no `NaN` or `Infinity` (malformed JSON) and no number too big for a float (out of range),
    unlike Python's json; the 400 then names the number's field, line and column."""
    try:
        return msgspec.json.decode(body, type=type_, strict=True)
    except msgspec.ValidationError as exc:
        if "Number out of range" in str(exc):
            _refuse_non_finite(body)
        raise Invalid(str(exc), [Issue("<request>", 0, _path(str(exc)), str(exc))]) from None
    except msgspec.DecodeError as exc:
        if "invalid character" in str(exc):
            _refuse_non_finite(body)
        raise Invalid(f"malformed JSON: {exc}", [Issue("<request>", 0, "", f"malformed JSON: {exc}")]) from None
    except UnicodeDecodeError as exc:  # invalid UTF-8 inside a JSON string
        raise Invalid("the body is not UTF-8", [Issue("<request>", 0, "", f"not UTF-8 text: {exc.reason}")]) from None
    except RecursionError:  # nesting deeper than the decoder's limit (about 1000 levels)
        raise Invalid("JSON nested too deeply", [Issue("<request>", 0, "", "nested too deeply")]) from None


def _refuse_non_finite(body: bytes) -> None:
    """`Invalid` naming the first NaN or infinite number of `body`, if it has one."""
    path, line, column = non_finite_place(body)
    if line:
        message = f"line {line} column {column}{f' ({path})' if path else ''}: JSON has no NaN or infinite numbers"
        raise Invalid(f"malformed JSON: {message}", [Issue("<request>", line, path, message)])


_NON_FINITE = object()
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|-?Infinity|NaN|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?')


def non_finite_place(raw: bytes | str) -> tuple[str, int, int]:
    """Where the first NaN or infinite number of a JSON text is: its field (read again, the number kept as a
    marker) and its line and column (the first such token outside a string). Only on the way to a 400."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    path = ""
    try:
        marked = json.loads(
            text,
            parse_constant=lambda _: _NON_FINITE,
            parse_float=lambda t: _NON_FINITE if not math.isfinite(float(t)) else float(t),
        )
        path = _marker_path(marked)
    except (ValueError, RecursionError):
        pass
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token.startswith('"'):
            continue
        if token in ("NaN", "Infinity", "-Infinity") or not math.isfinite(float(token)):
            line = text.count("\n", 0, match.start()) + 1
            return path, line, match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
    return path, 0, 0


def _marker_path(data: Any) -> str:
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if value is _NON_FINITE:
            return format_path(path)
        if isinstance(value, dict):
            stack.extend((child, (*path, key)) for key, child in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((child, (*path, i)) for i, child in reversed(list(enumerate(value))))
    return ""


def convert(value: Any, type_: type[T], where: str) -> T:
    """Validate an already-decoded value (a batch item) as `type_`; the message says where it was."""
    try:
        return msgspec.convert(value, type=type_, strict=True)
    except msgspec.ValidationError as exc:
        message = str(exc).replace("`$", f"`$.{where}", 1) if "`$" in str(exc) else f"{exc} - at `$.{where}`"
        raise Invalid(message, [Issue("<request>", 0, where, message)]) from None


def _path(message: str) -> str:
    return message.rsplit("at `", 1)[1].rstrip("`") if "at `" in message else ""
