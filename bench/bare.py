"""A bare Litestar app answering a constant: the framework's ceiling, outside Dutyline's app.

`POST /` decodes the JSON body (as Dutyline's own `/bench/echo` does) and answers `{"decision":true}`; no
middleware, no logging, no database. Run as `uvicorn bench.bare:app --workers 1`, it is what one uvicorn worker
of Litestar can answer on this machine; `/bench/echo` inside Dutyline's app is the same endpoint with Dutyline's
middleware around it.
"""

from __future__ import annotations

import msgspec
from litestar import Litestar, Request, Response, post

_ANSWER = b'{"decision":true}'


@post("/", status_code=200)
async def constant(request: Request) -> Response[bytes]:
    msgspec.json.decode(await request.body())
    return Response(_ANSWER, media_type="application/json")


app = Litestar([constant], openapi_config=None)
