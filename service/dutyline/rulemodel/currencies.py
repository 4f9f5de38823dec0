"""Currencies as rule packs and requests name them: ISO 4217 codes (the list is pycountry's)."""

from __future__ import annotations

from functools import cache
from typing import Any

import pycountry


@cache
def _iso4217() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.currencies)


def currency_code(value: Any) -> str | None:
    """An ISO 4217 currency code as written by a caller (`"cny"`, `" CNY "`), normalised (`"CNY"`); None when
    the value is not text or names no ISO 4217 currency."""
    if not isinstance(value, str):
        return None
    code = value.strip().upper()
    return code if code in _iso4217() else None


def is_currency(code: str) -> bool:
    """Whether `code` is an ISO 4217 currency code as written in a rule pack (upper case, exact)."""
    return code in _iso4217()
