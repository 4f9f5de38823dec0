"""The client's tests run it against one real `dutyline serve` on a loopback port for the whole session, on SQLite
(the client is what is tested here; the API tests cover both databases), seeded with two organisations only so
that it starts quickly: `sales_company` and the test counter of tests/data/workflow. It requires a bearer token
(DUTYLINE_REQUIRE_AUTH), as a production deployment does: `token` is an administrator's, made before it starts.

The client is its own distribution (clients/python): the README's test command installs only the service, so its
source folder is put on the path here. Every answer the client receives is checked against the server's OpenAPI
document (as the API tests check theirs), and the operation it went to is recorded in `sent`."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.api.admin_client import PASSWORD
from tests.api.conformance import problems, route_of
from tests.conftest import REPO
from tests.live import LiveServer, free_port

sys.path.insert(0, str(REPO / "clients" / "python" / "src"))


@dataclass(frozen=True)
class Sent:
    """One request the client sent and the status it got (0: no answer)."""

    operation: str  # the document's operation ("POST /v1/check"), or "METHOD path" when it has none
    status: int


@pytest.fixture
def sent() -> list[Sent]:
    return []


def _label(request: httpx.Request) -> str:
    route = route_of(request.method, request.url.path)
    return route.label if route is not None else f"{request.method} {request.url.path}"


@pytest.fixture(autouse=True)
def answers_match_the_document(monkeypatch: pytest.MonkeyPatch, sent: list[Sent]) -> Iterator[None]:
    send, send_async = httpx.Client.send, httpx.AsyncClient.send

    def streamed(response: httpx.Response) -> bool:  # events, read by the client as they come
        return response.headers.get("content-type", "").startswith("text/event-stream")

    def check(request: httpx.Request, response: httpx.Response) -> None:
        sent.append(Sent(_label(request), response.status_code))
        content_type = response.headers.get("content-type", "")
        body = b"" if streamed(response) else response.content
        found = problems(request.method, request.url.path, response.status_code, content_type, body)
        assert not found, "the answer does not match the OpenAPI document:\n" + "\n".join(found)

    def checked(client: httpx.Client, request: httpx.Request, *args: object, **kwargs: object) -> httpx.Response:
        try:
            response = send(client, request, *args, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError:
            sent.append(Sent(_label(request), 0))
            raise
        if not streamed(response):
            response.read()
        check(request, response)
        return response

    async def checked_async(
        client: httpx.AsyncClient, request: httpx.Request, *args: object, **kwargs: object
    ) -> httpx.Response:
        try:
            response = await send_async(client, request, *args, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError:
            sent.append(Sent(_label(request), 0))
            raise
        if not streamed(response):
            await response.aread()
        check(request, response)
        return response

    monkeypatch.setattr(httpx.Client, "send", checked)
    monkeypatch.setattr(httpx.AsyncClient, "send", checked_async)
    yield


def _administrator_token(database_url: str) -> str:
    """An administrator and an admin token reaching every organisation, made as `dutyline admin create` and
    `dutyline admin token` make them (the same service), in this process: two CLI processes take seconds."""
    from dutyline.services.access import AccessService
    from dutyline.store.db import make_engine, session_factory, upgrade

    engine = make_engine(database_url)
    try:
        upgrade(engine)
        access = AccessService(session_factory(engine))
        access.create_user("root", "", PASSWORD, [("system_admin", "*")], by="tests")
        return access.issue_token("root", ("admin",), "client tests", by="tests", organisations=["*"]).token
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Dutyline:
    server: LiveServer
    token: str

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="session")
def dutyline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dutyline]:
    seed = tmp_path_factory.mktemp("seed")
    (seed / "policies" / "orgs").mkdir(parents=True)
    (seed / "rules").mkdir()
    shutil.copy(REPO / "policies" / "orgs" / "sales_company.yaml", seed / "policies" / "orgs")
    shutil.copy(REPO / "rules" / "sales_company.yaml", seed / "rules")
    shutil.copy(REPO / "tests" / "data" / "workflow" / "test_counter.yaml", seed / "policies" / "orgs")
    shutil.copy(REPO / "tests" / "data" / "workflow" / "test_counter_rules.yaml", seed / "rules")
    database_url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'dutyline.db'}"
    token = _administrator_token(database_url)
    server = LiveServer(
        database_url,
        seed_dir=str(seed / "policies"),
        extra_env={"DUTYLINE_CONSISTENCY_WAIT": "0.5", "DUTYLINE_REQUIRE_AUTH": "true"},
    )
    try:
        server.wait_ready()
        yield Dutyline(server, token)
    finally:
        server.stop()


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on: a Dutyline that cannot be reached."""
    return free_port()
