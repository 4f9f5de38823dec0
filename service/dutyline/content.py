"""Where the content folders (`policies/`, `rules/`, `console/`) live.

In a checkout (editable install) they sit beside `service/`; a wheel carries copies under
`dutyline/_content/` (see pyproject.toml).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def content_root() -> Path:
    bundled = _PACKAGE / "_content"
    if bundled.is_dir():
        return bundled
    return _PACKAGE.parents[1]


def casbin_model_path() -> Path:
    return content_root() / "policies" / "casbin" / "model.conf"
