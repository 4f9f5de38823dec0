"""The base of the structs services answer with, which the HTTP layer sends as they are.

Every answer forbids unknown fields (in the OpenAPI document: `additionalProperties: false`) and leaves out fields
at their default (`UNSET`), so that what Litestar documents from a handler's return type is exactly what is sent.
"""

from __future__ import annotations

import msgspec


class Shape(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    pass


class Texts(Shape):
    """A text in Chinese and English."""

    zh: str
    en: str
