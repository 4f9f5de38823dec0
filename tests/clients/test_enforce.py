"""Where a route's values come from (dutyline_client.enforce), on requests as the adapters hand them over; a refusal
made before Dutyline is asked needs no server (the client here points at a port nothing listens on)."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from dutyline_client import NO_RETRIES, Client
from dutyline_client.enforce import BadInput, Enforcer, Incoming, Refusal, body, header, native, path, query, requires


def incoming(content: bytes = b"", native_request: Any = None, **query_params: str) -> Incoming:
    return Incoming(
        path_params={"tid": "t-1"},
        query=query_params,
        headers={"x-user": "ann", "x-branch": "b-7"},
        body=content,
        native=native_request,
    )


def test_each_source_reads_its_part_of_the_request() -> None:
    request = incoming(
        b'{"payment": {"amount": "12.50"}, "flag": false}', SimpleNamespace(user={"name": "ann"}), at="2026-01-05"
    )
    assert path("tid").read(request) == "t-1"
    assert query("at").read(request) == "2026-01-05"
    assert header("X-Branch").read(request) == "b-7", "header names in any case"
    assert body("payment.amount", Decimal).read(request) == Decimal("12.50")
    assert body("flag").read(request) is False, "a false value is a value"
    assert native("user.name").read(request) == "ann", "attributes and keys alike"
    assert query("limit", int, default=10).read(request) == 10


@pytest.mark.parametrize(
    ("source", "content", "where", "code"),
    [
        (body("amount"), b'{"amount": null}', "body.amount", "missing"),
        (body("payment.amount"), b'{"payment": 5}', "body.payment.amount", "missing"),
        (body("amount", int), b'{"amount": "lots"}', "body.amount", "invalid"),
        (body("amount"), b"[1]", "body.amount", "missing"),
        (body("amount"), b"{", "body", "invalid"),
        (query("at"), b"", "query.at", "missing"),
        (path("id"), b"", "path.id", "missing"),
        (native("user.name"), b"", "native.user.name", "missing"),
    ],
)
def test_a_value_missing_or_malformed_names_where_it_was_looked_for(
    source: Any, content: bytes, where: str, code: str
) -> None:
    with pytest.raises(BadInput) as raised:
        source.read(incoming(content))
    assert [(i.path, i.code) for i in raised.value.issues] == [(where, code)]
    assert where in str(raised.value)


def test_every_missing_value_is_named_in_one_answer_before_dutyline_is_asked() -> None:
    route = requires(
        "transaction",
        "enter",
        resource_id=body("id"),
        context={"amount": body("amount"), "at": query("at")},
        organisation=header("X-Org"),
    )
    with Client("http://127.0.0.1:9", retries=NO_RETRIES) as client:
        answer = Enforcer(client, subject=header("X-User")).enforce(route, incoming(b"{}"))
    assert isinstance(answer, Refusal) and answer.status == 400 and answer.error == "invalid"
    assert [i.path for i in answer.issues] == ["body.amount", "body.id", "header.X-Org", "query.at"]
    assert answer.reason.zh and answer.reason.en


def test_an_identity_that_cannot_be_read_is_no_identity() -> None:
    def broken(request: Incoming) -> str:
        raise RuntimeError("the session store is down")

    with Client("http://127.0.0.1:9", retries=NO_RETRIES) as client:
        answer = Enforcer(client, subject=broken, organisation="o").enforce(requires("r", "a"), incoming())
    assert isinstance(answer, Refusal) and answer.status == 401 and answer.code == "no_identity"


def test_requires_marks_a_function_and_refuses_what_it_cannot_mark() -> None:
    def route() -> None: ...

    marked = requires("r", "a")(route)
    assert marked is route and route.__dutyline__ == requires("r", "a")  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="beneath the route decorator"):
        requires("r", "a")(object())


def test_protect_refuses_a_fastapi_app_rather_than_miss_the_routes_of_its_included_routers() -> None:
    from fastapi import FastAPI

    from dutyline_client import AsyncClient
    from dutyline_client.asgi import protect
    from dutyline_client.enforce import AsyncEnforcer

    enforcer = AsyncEnforcer(AsyncClient("http://127.0.0.1:9"), subject=header("X-User"))
    with pytest.raises(TypeError, match="Depends"):
        protect(FastAPI(), enforcer)


@pytest.mark.parametrize("fail_open", [False, True])
def test_when_dutyline_cannot_be_reached_the_clients_choice_decides(fail_open: bool, unused_port: int) -> None:
    with Client(f"http://127.0.0.1:{unused_port}", retries=NO_RETRIES, fail_open=fail_open) as client:
        answer = Enforcer(client, subject=header("X-User"), organisation="o").enforce(requires("r", "a"), incoming())
    if fail_open:
        assert not isinstance(answer, Refusal) and answer.allowed and answer.answered_locally
    else:
        assert isinstance(answer, Refusal) and answer.status == 503 and answer.code == "dutyline_unreachable"
