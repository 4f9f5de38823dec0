"""Page tokens: the one scheme of every paged answer (`who`, the AuthZEN searches, the decision log), made and read here.

A token is `<payload>.<mac>`, both base64url. The payload is a small JSON array: the endpoint that issued it, a
digest of the request it continues (the endpoint's normalised parameters or body, less the page fields: the
token and the limit), and where the next page starts (`position`). The MAC (HMAC-SHA256, truncated to 128 bits)
covers the payload and the caller (the bearer token or console user the request came with; "anyone" for an
anonymous one), so a token is refused, as a 400 naming the page field, when it is presented

- with another request (other filters, another body: the AuthZEN 1.0 final text says a PDP SHOULD refuse a
  request changed mid-walk), at another endpoint, or by another caller;
- altered or made up (a negative or huge offset, a cursor of one's own): nothing but this scheme's key makes a
  MAC that verifies.

**The key** is `DUTYLINE_SECRET_KEY`'s, derived for this purpose, or else a secret generated once and kept in the
database (`server_secrets`, name `page_token`), read at start (`Runtime.start`). Not a per-process key: replicas
share one database and a client's walk may go through any of them, so every replica must accept every other's
tokens; a key in the database or the settings is what they share. Binding by digest alone would refuse another
request too, but would let anyone who knows the scheme (it is open source) write a token with any position.

Positions: a listing's `[offset, at]` (the instant every page of one listing is asked about: pages 2..n are cut
from the listing computed for page 1, `services.listings`), the decision log's keyset cursor
`[decided_at, id]` (the last row of the page: the next page is the rows strictly older).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import math
from collections.abc import Sequence
from typing import Any, TypeVar

import msgspec

from dutyline.errors import Invalid, Issue
from dutyline.services.reach import CURRENT as REACH

T = TypeVar("T")

# An offset beyond any listing: a larger one is a forged token, not a page.
_MAX_OFFSET = 2**31 - 1
_MAX_TOKEN = 1_000  # characters: a token this server issues is under 200
_MAC_BYTES = 16
_DIGEST_CHARS = 32  # hex characters of the request digest kept in the payload


class ListingPosition(msgspec.Struct, array_like=True, frozen=True):
    offset: int
    at: float  # the instant (epoch seconds) every page of the listing is asked about


class LogPosition(msgspec.Struct, array_like=True, frozen=True):
    decided_at: str  # ISO date-time with an offset, of the last row of the page
    id: str


class _Payload(msgspec.Struct, array_like=True, frozen=True):
    endpoint: str
    request: str  # the request digest (hex)
    position: msgspec.Raw


_Position = TypeVar("_Position", ListingPosition, LogPosition)


def request_digest(endpoint: str, request: Any) -> str:
    """The digest a token is bound to: the endpoint and the request's normalised parameters (keys sorted, so a
    body's key order does not matter). The caller leaves the page fields out of `request`."""
    encoded = msgspec.json.encode([endpoint, msgspec.to_builtins(request)], order="sorted")
    return hashlib.sha256(encoded).hexdigest()[:_DIGEST_CHARS]


def _caller() -> bytes:
    return REACH.get().holder.encode("utf-8", "surrogatepass")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: bytes, caller: bytes) -> bytes:
    return hmac.new(key, payload + b"\0" + caller, hashlib.sha256).digest()[:_MAC_BYTES]


class PageTokens:
    """Issues and reads the page tokens of one endpoint's walk (one instance per request)."""

    def __init__(self, key: bytes, endpoint: str, request: Any, field: str, caller: bytes | None = None) -> None:
        self._key = key
        self._endpoint = endpoint
        self._request = request_digest(endpoint, request)
        self._field = field
        self._caller = _caller() if caller is None else caller

    def issue(self, position: ListingPosition | LogPosition) -> str:
        payload = msgspec.json.encode(
            _Payload(self._endpoint, self._request, msgspec.Raw(msgspec.json.encode(position)))
        )
        return f"{_b64(payload)}.{_b64(_mac(self._key, payload, self._caller))}"

    def read(self, text: str | None, kind: type[_Position]) -> _Position | None:
        """The position a token sent back asks for (None: no token, the first page); `Invalid` naming the page field
        for a token this server did not issue to this caller, or issued for another request or endpoint."""
        if not text:
            return None
        payload = self._verified(text)
        try:
            found = msgspec.json.decode(payload, type=_Payload)
        except (msgspec.DecodeError, msgspec.ValidationError):  # a MAC that verifies: only a key leak gets here
            raise self._refused("is not a token this server issued") from None
        if found.endpoint != self._endpoint:
            raise self._refused(f"was issued by another endpoint ({found.endpoint}), not {self._endpoint}")
        if not hmac.compare_digest(found.request, self._request):
            raise self._refused(
                "was issued for another request: a page token only continues the request it came from (same "
                "parameters or body, page fields aside); ask again without it to start from the first page"
            )
        try:
            position = msgspec.json.decode(found.position, type=kind)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise self._refused("is not a token this server issued") from None
        if isinstance(position, ListingPosition):
            if not 0 <= position.offset <= _MAX_OFFSET or not math.isfinite(position.at):
                raise self._refused("is not a token this server issued")
        elif log_cursor(position) is None:
            raise self._refused("is not a token this server issued")
        return position

    def _verified(self, text: str) -> bytes:
        refused = self._refused("is not a token this server issued (to this caller)")
        if len(text) > _MAX_TOKEN or not text.isascii() or text.count(".") != 1:
            raise refused
        encoded, mac = text.split(".")
        try:
            payload, given = _unb64(encoded), _unb64(mac)
        except (ValueError, binascii.Error):
            raise refused from None
        if not hmac.compare_digest(given, _mac(self._key, payload, self._caller)):
            raise refused
        return payload

    def _refused(self, why: str) -> Invalid:
        return Invalid(f"{self._field} {why}", [Issue("<request>", 0, self._field, why)])

    # --- listings -------------------------------------------------------------------------------------------

    def page_of(
        self, items: Sequence[T], position: ListingPosition | None, limit: int, at: float
    ) -> tuple[Sequence[T], str]:
        """The page of `items` that `position` asks for (the first without one), and the token of the next page (''
        on the last one)."""
        offset = position.offset if position is not None else 0
        following = offset + limit
        if following >= len(items):
            return items[offset:], ""
        return items[offset:following], self.issue(ListingPosition(following, at))


def log_cursor(position: LogPosition) -> tuple[dt.datetime, str] | None:
    """A decision-log position as the store's keyset cursor (None: not one this server would write)."""
    try:
        moment = dt.datetime.fromisoformat(position.decided_at)
    except ValueError:
        return None
    if moment.tzinfo is None or not position.id or len(position.id) > 64 or not position.id.isprintable():
        return None
    return moment.astimezone(dt.UTC), position.id


def log_position(cursor: tuple[dt.datetime, str]) -> LogPosition:
    at, ident = cursor
    at = at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)
    return LogPosition(at.isoformat(), ident)
