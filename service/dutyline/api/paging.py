"""Page tokens of whole-organisation listings (`who`, the AuthZEN searches): the one place they are made and read.

A token holds where the next page starts and the instant the listing was computed for. Every page of one
listing is then asked about the same instant (a listing asked "now" would otherwise be a new question at each
page), so pages 2..n are cut from the result computed for page 1 (`services.listings`) instead of recomputing it.
Tokens are opaque to callers: base64url of a small JSON array.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Sequence
from typing import TypeVar

import msgspec

from dutyline.errors import Invalid, Issue

T = TypeVar("T")

# An offset beyond any listing: a larger one is a forged token, not a page.
_MAX_OFFSET = 2**31 - 1


class PageToken(msgspec.Struct, array_like=True, frozen=True):
    offset: int
    at: float  # the instant (epoch seconds) every page of the listing is asked about


def read_token(text: str | None, field: str) -> PageToken | None:
    """The token a client sent back (None: the first page); `Invalid` naming `field` for one this server did
    not issue."""
    if not text:
        return None
    try:
        token = msgspec.json.decode(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), type=PageToken)
    except (ValueError, binascii.Error, msgspec.DecodeError, msgspec.ValidationError):
        token = None
    if token is None or not 0 <= token.offset <= _MAX_OFFSET or not math.isfinite(token.at):
        raise Invalid(f"{field} is not a token this server issued", [Issue("<request>", 0, field, "unknown token")])
    return token


def page_of(items: Sequence[T], token: PageToken | None, limit: int, at: float) -> tuple[Sequence[T], str]:
    """The page of `items` that `token` asks for (the first without one), and the token of the next page ('' on
    the last one)."""
    offset = token.offset if token is not None else 0
    following = offset + limit
    if following >= len(items):
        return items[offset:], ""
    encoded = msgspec.json.encode(PageToken(following, at))
    return items[offset:following], base64.urlsafe_b64encode(encoded).decode().rstrip("=")
