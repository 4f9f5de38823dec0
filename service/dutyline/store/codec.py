"""The one way stored documents (organisations, rule packs) become JSON and back.

A refresh decodes what is stored with `decode`; every writer stores through `encode_checked`, which decodes
what it is about to store with that same `decode` and compares, so that nothing is committed that a refresh
would read differently or not at all. (A NaN limit used to be stored as `null`: accepted, unreadable, and every
later refresh failed.)
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import msgspec

from dutyline.errors import Invalid, Issue, Unreadable

T = TypeVar("T")
_encoder = msgspec.json.Encoder(order="deterministic")
_decoders: dict[type, msgspec.json.Decoder[Any]] = {}


def encode(value: Any) -> bytes:
    """Canonical JSON (keys sorted): the stored text, and what digests are taken of."""
    return _encoder.encode(value)


def decode(text: str | bytes, type_: type[T], what: str) -> T:
    """`text` as `type_`, exactly as a refresh reads it; `Unreadable` naming `what` and the place if it cannot be."""
    decoder = _decoders.get(type_)
    if decoder is None:
        decoder = _decoders[type_] = msgspec.json.Decoder(type_)
    try:
        return decoder.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Unreadable(f"{what} cannot be read by this release: {exc}") from None


def encode_checked(value: T, type_: type[T], what: str) -> bytes:
    """`encode(value)`, after checking that `decode` gives `value` back; `Invalid` naming the first place where
    it would not (a non-finite number, a value JSON cannot hold, a field this release would drop)."""
    try:
        encoded = encode(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise Invalid(f"{what} cannot be stored: {exc}", [Issue("<request>", 0, "", str(exc))]) from None
    try:
        decoded = decode(encoded, type_, what)
    except Unreadable as exc:  # the place, from the plain data (msgspec names a mapping's key `[...]`)
        path = first_difference(msgspec.to_builtins(value), msgspec.json.decode(encoded)) or _path_of(str(exc))
        raise Invalid(
            f"{what} would be stored as something it cannot be read back from: {exc}",
            [Issue("<request>", 0, path, f"would not read back: {exc}")],
        ) from None
    difference = (
        None if decoded == value else first_difference(msgspec.to_builtins(value), msgspec.to_builtins(decoded))
    )
    if difference is not None:  # (equal as plain data, e.g. a tuple given where a list is read back: the same JSON)
        raise Invalid(
            f"{what} would not read back as it was given (at {difference or 'the top'}): not stored",
            [Issue("<request>", 0, difference, "this value would not read back as given (a NaN or infinite number?)")],
        )
    return encoded


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """The path (`rules[0].limits.teller`) of the first place where two plain values differ; None if equal.
    NaN differs from everything, itself included."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b:
                return _join(path, key)
            found = first_difference(a[key], b[key], _join(path, key))
            if found is not None:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for index, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{path}[{index}]")
            if found is not None:
                return found
        return None if len(a) == len(b) else f"{path}[{min(len(a), len(b))}]"
    if isinstance(a, float) and math.isnan(a):
        return path
    return None if type(a) is type(b) and a == b else path


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _path_of(message: str) -> str:
    """The field of a msgspec message (`... - at `$.rules[0].limits.x``) without its `$.`."""
    if "at `$" not in message:
        return ""
    return message.rsplit("at `$", 1)[1].split("`", 1)[0].lstrip(".")
