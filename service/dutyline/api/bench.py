"""The benchmarks' ceiling: a trivial endpoint in the same app, mounted only with DUTYLINE_BENCH_ECHO=1.

It reads and decodes the JSON body and answers a constant, as a decision endpoint would with no decision
in between; the same server, middleware and logging make its req/s the most a decision endpoint can reach.
"""

from __future__ import annotations

import msgspec
from litestar import Request, Response, post

_ANSWER = b'{"decision":true}'


@post("/bench/echo", status_code=200, include_in_schema=False)
async def echo(request: Request) -> Response[bytes]:
    msgspec.json.decode(await request.body())
    return Response(_ANSWER, media_type="application/json")


ROUTES = [echo]
