"""Reading JSON request bodies into typed structs, with messages that name the field."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar import Request

from dutyline.errors import Invalid, Issue

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
    try:
        return msgspec.json.decode(body, type=type_, strict=True)
    except msgspec.ValidationError as exc:
        raise Invalid(str(exc), [Issue("<request>", 0, _path(str(exc)), str(exc))]) from None
    except msgspec.DecodeError as exc:
        raise Invalid(f"malformed JSON: {exc}", [Issue("<request>", 0, "", f"malformed JSON: {exc}")]) from None
    except UnicodeDecodeError as exc:  # invalid UTF-8 inside a JSON string
        raise Invalid("the body is not UTF-8", [Issue("<request>", 0, "", f"not UTF-8 text: {exc.reason}")]) from None
    except RecursionError:  # nesting deeper than the decoder's limit (about 1000 levels)
        raise Invalid("JSON nested too deeply", [Issue("<request>", 0, "", "nested too deeply")]) from None


def convert(value: Any, type_: type[T], where: str) -> T:
    """Validate an already-decoded value (a batch item) as `type_`; the message says where it was."""
    try:
        return msgspec.convert(value, type=type_, strict=True)
    except msgspec.ValidationError as exc:
        message = str(exc).replace("`$", f"`$.{where}", 1) if "`$" in str(exc) else f"{exc} - at `$.{where}`"
        raise Invalid(message, [Issue("<request>", 0, where, message)]) from None


def _path(message: str) -> str:
    return message.rsplit("at `", 1)[1].rstrip("`") if "at `" in message else ""
