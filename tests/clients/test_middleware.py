"""The enforcement adapters (dutyline_client.asgi, dutyline_client.wsgi), in a real small application of each
framework on a real server (tests/clients/middleware_apps.py), asking the live Dutyline of tests/clients/conftest.py
about the test counter: ann is a teller, whose entry limit is 10 000 (above it the manager, mia, approves) and who
has no duty to authorise. The caller's identity is the `X-User` header a gateway would set."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dutyline_client import NO_RETRIES, Client
from dutyline_client.enforce import header, native
from tests.clients.conftest import Dutyline, Sent
from tests.clients.middleware_apps import FRAMEWORKS, served
from tests.conftest import REPO

CHECK = "POST /v1/check"


class _Kept(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.WARNING)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logged() -> Iterator[list[logging.LogRecord]]:
    """What the client logs (on its own logger: building the OpenAPI document for the answer checks configures
    Litestar's logging, replacing the root logger's handlers, where caplog listens)."""
    records: list[logging.LogRecord] = []
    handler, logger = _Kept(records), logging.getLogger("dutyline_client")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def new_id() -> str:
    return f"m-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module", params=FRAMEWORKS)
def app(request: pytest.FixtureRequest, dutyline: Dutyline) -> Iterator[httpx.Client]:
    """The framework's application, asking the live Dutyline, and an HTTP client of it."""
    make = lambda kind: kind(dutyline.url, token=dutyline.token)
    with (
        served(request.param, make, subject=header("X-User"), organisation="test_counter") as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        yield http


def enter(app: httpx.Client, tid: str, amount: Any, user: str | None = "ann", **headers: str) -> httpx.Response:
    sent = {**headers, **({"X-User": user} if user else {})}
    return app.post(f"/counter/transactions/{tid}", json={"amount": amount}, headers=sent)


def test_an_allowed_request_reaches_the_route_with_the_decision(app: httpx.Client) -> None:
    tid = new_id()
    answer = enter(app, tid, 5000)
    assert answer.status_code == 200, answer.text
    assert answer.json()["entered"] == tid and answer.json()["decision_id"]
    assert answer.json()["amount"] == 5000, "the route reads the body the enforcer read"


def test_a_denied_request_is_a_403_with_the_reason_in_both_languages(app: httpx.Client, sent: list[Sent]) -> None:
    answer = app.post(f"/counter/transactions/{new_id()}/authorize", headers={"X-User": "ann"})
    assert answer.status_code == 403
    refusal = answer.json()
    assert refusal["error"] == "forbidden" and refusal["code"] == "no_grant" and refusal["decision_id"]
    assert "authorize" in refusal["reason"]["en"] and refusal["reason"]["zh"]
    assert refusal["reasons"][-1]["code"] == "no_grant" and "approval" not in refusal
    assert [s.status for s in sent if s.operation == CHECK] == [200]


def test_a_needs_approval_opens_one_and_the_request_passes_once_it_is_approved(
    app: httpx.Client, dutyline: Dutyline
) -> None:
    tid = new_id()
    answer = enter(app, tid, 20000)
    assert answer.status_code == 403
    refusal = answer.json()
    assert refusal["error"] == "needs_approval" and "limit" in refusal["reason"]["en"]
    approval = refusal["approval"]
    assert approval["id"].startswith("apv_") and approval["status"] == "pending"
    assert approval["approvers"][0]["post"] == "manager" and "mia" in approval["approvers"][0]["people"]
    assert approval["href"] == f"{dutyline.url}/v1/approvals/{approval['id']}"
    assert approval["present"] == "Dutyline-Approval"
    assert approval["request"] == {
        "organisation": "test_counter",
        "subject": "ann",
        "resource": "transaction",
        "action": "enter",
        "resource_id": tid,
        "context": {"amount": 20000},
        "at": None,
    }
    presented = {"Dutyline-Approval": approval["id"]}
    pending = enter(app, tid, 20000, **presented)
    assert pending.status_code == 403 and pending.json()["approval"]["id"] == approval["id"], "none opened again"
    assert pending.json()["approval"]["status"] == "pending" and "pending" in pending.json()["reason"]["en"]

    with Client(dutyline.url, token=dutyline.token) as client:
        client.approve(approval["id"], "mia")
        passed = enter(app, tid, 20000, **presented)
        assert passed.status_code == 200, passed.text
        used = enter(app, tid, 20000, **presented)
        assert used.status_code == 403 and used.json()["approval"]["status"] == "approved"
        assert "used up" in used.json()["reason"]["en"]
        opened = client.approvals(organisation="test_counter", requester="ann", limit=200)
    assert [a.id for a in opened if a.resource.id == tid] == [approval["id"]]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_403_of_a_needs_approval_says_how_to_open_one_when_the_enforcer_does_not(
    framework: str, dutyline: Dutyline
) -> None:
    make = lambda kind: kind(dutyline.url, token=dutyline.token)
    with (
        served(framework, make, subject=header("X-User"), organisation="test_counter", open_approvals=False) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        refusal = enter(http, new_id(), 20000).json()
    approval = refusal["approval"]
    assert approval["id"] is None and approval["status"] == "unopened" and approval["href"] is None
    with Client(dutyline.url, token=dutyline.token) as client:
        opened = client.open_approval(**approval["request"])
    assert opened.status == "pending" and opened.chain[0].post == approval["approvers"][0]["post"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_caller_is_the_identity_the_framework_authenticated(framework: str, dutyline: Dutyline) -> None:
    """The scope's `user` over ASGI, Django's `request.user`, Flask's `request.authorization`."""
    where = "authorization.username" if framework == "flask" else "user.username"
    credentials = {"Authorization": "Basic " + base64.b64encode(b"ann:secret").decode()}
    make = lambda kind: kind(dutyline.url, token=dutyline.token)
    with (
        served(framework, make, subject=native(where), organisation="test_counter") as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        tid = new_id()
        known = http.post(
            f"/counter/transactions/{tid}", json={"amount": 1}, headers=credentials | {"X-Token": "tok-ann"}
        )
        unknown = http.post(f"/counter/transactions/{tid}", json={"amount": 1}, headers={"X-Token": "tok-eve"})
    assert known.status_code == 200 and known.json()["entered"] == tid
    assert unknown.status_code == 401 and unknown.json()["code"] == "no_identity"


def test_without_an_identity_the_answer_is_401_and_dutyline_is_not_asked(app: httpx.Client, sent: list[Sent]) -> None:
    for user in (None, ""):
        headers = {} if user is None else {"X-User": user}
        answer = app.post(f"/counter/transactions/{new_id()}", json={"amount": 1}, headers=headers)
        assert answer.status_code == 401
        assert answer.json()["error"] == "unauthenticated" and answer.json()["code"] == "no_identity"
        assert answer.json()["reason"]["zh"]
    assert not [s for s in sent if s.operation == CHECK]


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (b'{"currency": "CNY"}', "body.amount"),
        (b'{"amount": null}', "body.amount"),
        (b"[1, 2]", "body.amount"),
        (b"{not json", "body"),
        (b"", "body"),
    ],
)
def test_a_value_the_route_needs_missing_from_the_request_is_a_400_naming_it(
    app: httpx.Client, sent: list[Sent], content: bytes, where: str, request: pytest.FixtureRequest
) -> None:
    answer = app.post(
        f"/counter/transactions/{new_id()}",
        content=content,
        headers={"X-User": "ann", "content-type": "application/json"},
    )
    if request.node.callspec.params["app"] == "fastapi" and where == "body" and content:
        # FastAPI reads a route's declared body before any dependency: its own 422 names it
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"][0] == "body"
        return
    assert answer.status_code == 400, answer.text
    refusal = answer.json()
    assert refusal["error"] == "invalid" and [i["path"] for i in refusal["issues"]] == [where]
    assert where in refusal["message"]
    assert not [s for s in sent if s.operation == CHECK], "asked before the request was complete"


def test_a_route_without_a_requirement_is_not_asked_about(app: httpx.Client, sent: list[Sent]) -> None:
    assert app.get("/counter/health").json() == {"ok": True}
    assert not [s for s in sent if s.operation == CHECK]


def test_a_moment_dutyline_cannot_read_is_a_400_naming_it(app: httpx.Client) -> None:
    answer = app.post(f"/counter/transactions/{new_id()}?at=yesterday", json={"amount": 5}, headers={"X-User": "ann"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid" and [i["path"] for i in answer.json()["issues"]] == ["at"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_when_dutyline_refuses_the_enforcers_token_the_answer_is_503_fail_closed_and_logged(
    framework: str, dutyline: Dutyline, logged: list[logging.LogRecord]
) -> None:
    make = lambda kind: kind(dutyline.url, token="not-a-token")
    with (
        served(framework, make, subject=header("X-User"), organisation="test_counter") as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        answer = enter(http, new_id(), 5000)
    assert answer.status_code == 503 and answer.json()["code"] == "dutyline_error"
    assert any("401" in r.getMessage() and "fail closed" in r.getMessage() for r in logged)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_when_dutyline_cannot_be_reached_the_answer_is_503_fail_closed_and_logged(
    framework: str, unused_port: int, logged: list[logging.LogRecord]
) -> None:
    make = lambda kind: kind(f"http://127.0.0.1:{unused_port}", retries=NO_RETRIES)
    with (
        served(framework, make, subject=header("X-User"), organisation="test_counter") as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        answer = enter(http, new_id(), 5000)
    assert answer.status_code == 503
    refusal = answer.json()
    assert refusal["error"] == "unavailable" and refusal["code"] == "dutyline_unreachable"
    assert "fail closed" in refusal["reason"]["en"] and refusal["reason"]["zh"] and "entered" not in refusal
    assert any("denied (fail closed)" in r.getMessage() for r in logged)


def test_the_adapters_import_no_framework_until_one_is_used() -> None:
    """The client installs without any web framework: importing it and its adapters loads none."""
    code = (
        "import sys, dutyline_client, dutyline_client.enforce, dutyline_client.asgi, dutyline_client.wsgi\n"
        "print(sorted({'django', 'fastapi', 'flask', 'litestar', 'starlette'} & {m.split('.')[0] for m in sys.modules}))"
    )
    source = str(REPO / "clients" / "python" / "src")
    ran = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": source},
    )
    assert ran.stdout.strip() == "[]"


def test_an_unknown_approval_presented_is_a_403_that_opens_none(app: httpx.Client) -> None:
    answer = enter(app, new_id(), 20000, **{"Dutyline-Approval": "apv_nothing"})
    assert answer.status_code == 403, answer.text
    approval = answer.json()["approval"]
    assert approval["id"] == "apv_nothing" and approval["status"] == "unknown"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_organisation_may_come_from_the_request(framework: str, dutyline: Dutyline) -> None:
    make = lambda kind: kind(dutyline.url, token=dutyline.token)
    with (
        served(framework, make, subject=header("X-User"), organisation=header("X-Org")) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        ours = enter(http, new_id(), 5000, **{"X-Org": "test_counter"})
        unknown = enter(http, new_id(), 5000, **{"X-Org": "no_such_org"})
        unnamed = enter(http, new_id(), 5000)
    assert ours.status_code == 200
    assert unknown.status_code == 403 and unknown.json()["code"] == "unknown_organisation"
    assert unnamed.status_code == 400 and [i["path"] for i in unnamed.json()["issues"]] == ["header.X-Org"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_body_above_max_body_is_a_413_read_no_further_and_dutyline_is_not_asked(
    framework: str, dutyline: Dutyline, sent: list[Sent]
) -> None:
    """The adapter reads the body to find the route's values; beyond the enforcer's `max_body` it stops reading (ASGI)
    or refuses what the framework read (WSGI), so that a check cannot be made to hold a body without end."""
    make = lambda kind: kind(dutyline.url, token=dutyline.token)
    with (
        served(framework, make, subject=header("X-User"), organisation="test_counter", max_body=256) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        tid = new_id()
        small = http.post(f"/counter/transactions/{tid}", json={"amount": 1}, headers={"X-User": "ann"})
        asked = [s for s in sent if s.operation == CHECK]

        def chunks() -> Iterator[bytes]:  # no Content-Length: read until it passes the bound
            yield b'{"amount": 1, "pad": "'
            for _ in range(64):
                yield b"x" * 1024
            yield b'"}'

        big = http.post(f"/counter/transactions/{tid}", json={"amount": 1, "pad": "x" * 300}, headers={"X-User": "ann"})
        streamed = http.post(
            f"/counter/transactions/{tid}",
            content=chunks(),
            headers={"X-User": "ann", "content-type": "application/json"},
        )
    assert small.status_code == 200 and asked
    assert big.status_code == 413, big.text
    assert big.json()["code"] == "body_too_large" and big.json()["issues"][0]["path"] == "body"
    if framework in ("flask", "django"):  # wsgiref reads no chunked body: the route's values are missing
        assert streamed.status_code == 400 and streamed.json()["issues"][0]["path"] == "body"
    else:
        assert streamed.status_code == 413 and streamed.json()["code"] == "body_too_large", streamed.text
    assert [s for s in sent if s.operation == CHECK] == asked, "Dutyline was not asked about a body too large"
