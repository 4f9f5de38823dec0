"""Turning the dates and times of assignments into instants, in the organisation's time zone."""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


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
    text = text.strip()
    if len(text) == 10:
        day = dt.date.fromisoformat(text)
        if end:
            day += dt.timedelta(days=1)
        moment = dt.datetime.combine(day, dt.time(), tz)
    else:
        moment = dt.datetime.fromisoformat(text.replace(" ", "T").replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
    return moment.timestamp()


def parse_at(text: str | None, tz: dt.tzinfo | None = None) -> float | None:
    """A request's `at` (ISO date-time; naive means `tz`, default UTC) as epoch seconds, or None for now."""
    if text is None or text == "":
        return None
    return instant(text, tz or dt.UTC)
