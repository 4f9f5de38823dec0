"""Every answer an API test gets from a live server must match the OpenAPI document: a declared status, a declared
content type and, for JSON, the schema declared for that status. A test whose request gets an answer the document
does not describe fails at that request (the document is what clients are generated from)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api.conformance import problems


@pytest.fixture(autouse=True)
def answers_match_the_document(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    send = httpx.Client.send

    def checked(client: httpx.Client, request: httpx.Request, *args: object, **kwargs: object) -> httpx.Response:
        response = send(client, request, *args, **kwargs)  # type: ignore[arg-type]
        content_type = response.headers.get("content-type", "")
        # A stream of events is read by the test as it comes: its status and content type are checked here.
        body = b"" if content_type.startswith("text/event-stream") else response.read()
        found = problems(request.method, request.url.path, response.status_code, content_type, body)
        assert not found, "the answer does not match the OpenAPI document:\n" + "\n".join(found)
        return response

    monkeypatch.setattr(httpx.Client, "send", checked)
    yield
