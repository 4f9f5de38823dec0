"""The admin console: static files from `console/` (see docs/console.md), served by the service itself.

The console is plain ES modules and CSS that talk to the admin API like any other client; this module only
hands out its files, with a Content Security Policy that allows nothing inline and nothing from elsewhere.
"""

from __future__ import annotations

import asyncio
import mimetypes
from functools import cache
from pathlib import Path

from litestar import Response, get
from litestar.params import FromPath
from litestar.response import Redirect

from dutyline.content import content_root

# Scripts and styles from this origin only, no inline code or style attributes, no frames, no plugins.
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}


@cache
def _root() -> Path:
    return (content_root() / "console").resolve()


def _file(relative: str) -> Path | None:
    """The file under console/ that `relative` names; None for anything outside it, hidden, or missing."""
    root = _root()
    candidate = (root / relative.lstrip("/")).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    if any(part.startswith(".") for part in candidate.relative_to(root).parts):
        return None
    return candidate


def _serve(path: Path) -> Response[bytes]:
    media_type = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if media_type in ("application/json", "image/svg+xml"):  # Litestar adds the charset of text/* itself
        media_type += "; charset=utf-8"
    return Response(path.read_bytes(), media_type=media_type, headers=HEADERS)


@get("/", include_in_schema=False, status_code=302)
async def home() -> Redirect:
    """A person who opens the server's address gets the console (callers of the API never ask for `/`)."""
    return Redirect("/console/")


@get("/console", include_in_schema=False)
async def console_page() -> Response[bytes]:
    """The console's single page (its pages are routes after `#`). Its files are named by absolute paths,
    so that `/console` and `/console/` both work."""
    return await _answer("index.html")


@get("/console/{path:path}", include_in_schema=False)
async def console_file(path: FromPath[str]) -> Response[bytes]:
    """A file of the console (`/console/` is the page itself)."""
    return await _answer(path if path.strip("/") else "index.html")


async def _answer(relative: str) -> Response[bytes]:
    found = _file(relative)
    if found is None:
        return Response(b"not found", media_type="text/plain", status_code=404, headers=HEADERS)
    return await asyncio.to_thread(_serve, found)


ROUTES = [home, console_page, console_file]
