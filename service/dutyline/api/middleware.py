"""Echo `X-Request-ID` on every response, and bind it to every log record of the request (plain ASGI: no
per-request objects on the decision path)."""

from __future__ import annotations

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from dutyline.logs import REQUEST_ID


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        if request_id is None:
            await self.app(scope, receive, send)
            return

        request_id = request_id[:200]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id)]
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)


def request_id_of(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            return value[:200].decode("latin-1")
    return None
