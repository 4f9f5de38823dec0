"""Turning the dates and times of assignments into instants, in the organisation's time zone."""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dutyline.errors import Invalid, Issue, IssueCode


def zone(name: str) -> ZoneInfo:
    """The time zone called `name`; raises ValueError for a name that is not an IANA zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


@functools.lru_cache(maxsize=4096)  # pure; batches and busy callers ask about the same moment again and again
def instant(text: str, tz: dt.tzinfo, *, end: bool = False) -> float:
    """Seconds since the epoch for a date or date-time string.

    A date alone means the start of that day, or with `end=True` the start of the next day, so that
    `valid_to: 2026-07-14` includes the 14th. Raises ValueError for an impossible date.
    """
    return _datetime(text, tz, end).timestamp()


def _datetime(text: str, tz: dt.tzinfo, end: bool = False) -> dt.datetime:
    text = text.strip()
    if len(text) == 10:
        day = dt.date.fromisoformat(text)
        if end:
            day += dt.timedelta(days=1)
        return dt.datetime.combine(day, dt.time(), tz)
    moment = dt.datetime.fromisoformat(text.replace(" ", "T").replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


# A moment a caller names (a check's `at`, a query's `as_of`, a filter's `since`): the one parser of them all.
# A naive one is read in the organisation's time zone (by name; UTC when there is none, or for what is not about
# one organisation); anything that is not a date or date-time is a 400 naming the field. No ISO date-time is
# longer than MAX_MOMENT_CHARS: a longer text is refused before it reaches `instant`'s cache, which would otherwise
# keep thousands of a caller's megabyte-long "moments" alive.
MAX_MOMENT_CHARS = 64


def moment(
    text: object, timezone: str | dt.tzinfo | None = None, field: str = "at", expected: str = "a date or date-time"
) -> float:
    """`text` as seconds since the epoch (see above)."""
    if isinstance(text, str) and len(text) <= MAX_MOMENT_CHARS:
        try:
            return instant(text, _zone_of(timezone))
        except ValueError:
            pass
    raise _not_a_moment(text, field, expected)


def when(
    text: object, timezone: str | dt.tzinfo | None = None, field: str = "at", expected: str = "a date or date-time"
) -> dt.datetime:
    """`text` as an aware date-time (see above)."""
    if isinstance(text, str) and len(text) <= MAX_MOMENT_CHARS:
        try:
            return _datetime(text, _zone_of(timezone))
        except ValueError:
            pass
    raise _not_a_moment(text, field, expected)


def _zone_of(timezone: str | dt.tzinfo | None) -> dt.tzinfo:
    if timezone is None:
        return dt.UTC
    return zone(timezone) if isinstance(timezone, str) else timezone


def _not_a_moment(text: object, field: str, expected: str) -> Invalid:
    shown = repr(text) if len(repr(text)) <= 80 else f"{repr(text)[:77]}..."  # a huge value is not echoed whole
    return Invalid(
        f"{field}: {shown} is not {expected}",
        [Issue("<request>", 0, field, f"not {expected}", code=IssueCode.SCHEMA)],
    )
