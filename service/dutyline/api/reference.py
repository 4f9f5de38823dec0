"""The interactive API reference at `/schema` (Scalar), served whole by the service: the page loads its script and
style from this origin (`/api-reference/…`, shipped in `dutyline/api/reference_assets/`), so that it works without
internet, and it carries no inline script (its configuration is an attribute, not a script as Litestar writes it).
"""

from __future__ import annotations

import asyncio
import html
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.params import FromPath

ASSETS = Path(__file__).resolve().parent / "reference_assets"
PREFIX = "/api-reference"
FILES = {"scalar.js": "text/javascript", "scalar.css": "text/css"}
# Scalar's own fonts come from its site: the system's fonts instead, so that nothing is loaded from elsewhere.
OPTIONS = {"withDefaultFonts": False}
FAVICON = '<link rel="icon" href="/console/icon.svg" type="image/svg+xml">'  # the console's, not Litestar's


class OfflineScalar(ScalarRenderPlugin):
    """Scalar's page with the script and style from `/api-reference/`."""

    def __init__(self) -> None:
        super().__init__(js_url=f"{PREFIX}/scalar.js", css_url=f"{PREFIX}/scalar.css", options=OPTIONS, favicon=FAVICON)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = html.escape(str(openapi_schema["info"]["title"]))
        url = html.escape(self.get_openapi_json_route(request), quote=True)
        configuration = html.escape(msgspec.json.encode(self.options).decode(), quote=True)
        return f"""<!DOCTYPE html>
<html>
<head>
  <title>{title}</title>
  <meta charset="utf-8"/>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  {self.favicon}
  <link rel="stylesheet" type="text/css" href="{self.css_url}">
</head>
<body>
  <noscript>The API reference needs JavaScript; the document itself is at {url}.</noscript>
  <script id="api-reference" data-url="{url}" data-configuration="{configuration}"></script>
  <script src="{self.js_url}"></script>
</body>
</html>
""".encode()


@cache
def _read(name: str) -> bytes:
    return (ASSETS / name).read_bytes()


@get(f"{PREFIX}/{{name:str}}", include_in_schema=False)
async def asset(name: FromPath[str]) -> Response[bytes]:
    if name not in FILES:
        raise NotFoundException(f"no such file {name!r}")
    body = await asyncio.to_thread(_read, name)
    return Response(body, media_type=FILES[name], headers={"Cache-Control": "public, max-age=86400"})


ROUTES = [asset]
