"""Hostile input to the access request profile's endpoints (api/access_requests.py, api/authzen.py) on a real server,
SQLite and PostgreSQL: every malformed submission, task id, cancellation and re-evaluation is a 4xx naming what is
wrong, never a 5xx, and the server keeps answering."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.clients.test_access_requests import ORG, Served, served

SUBJECT = {"type": "user", "id": "ann"}
ACTION = {"name": "enter"}


@pytest.fixture
def http(served: Served) -> Iterator[httpx.Client]:
    headers = {"authorization": f"Bearer {served.token}"}
    with httpx.Client(base_url=served.server.url, headers=headers, timeout=30) as client:
        yield client


def _denied(http: httpx.Client) -> dict[str, Any]:
    resource = {"type": "transaction", "id": f"t-{uuid.uuid4().hex[:10]}"}
    evaluation = {"subject": SUBJECT, "action": ACTION, "resource": resource, "context": {"amount": 20000}}
    answer = http.post(f"/orgs/{ORG}/access/v1/evaluation", json=evaluation)
    assert answer.status_code == 200, answer.text
    hint = answer.json()["context"]["access_request"]
    return {
        **evaluation,
        "denial": {"expires_at": hint["expires_at"], "binding_token": hint["binding_token"]},
    }


DEEP = "<deep>"  # replaced in the JSON text by 3,000 nested objects (too deep for the json module to write)


def _deep(depth: int) -> str:
    return DEEP


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    *head, last = path.split(".")
    target = out
    for part in head:
        target = target[part]
    if value is _MISSING:
        target.pop(last, None)
    else:
        target[last] = value
    return out


_MISSING = object()

SUBMISSIONS: list[tuple[str, Any]] = [
    ("subject", _MISSING),
    ("subject", None),
    ("subject", "ann"),
    ("subject", []),
    ("subject.id", {"x": 1}),
    ("subject.id", 12),
    ("subject", {**SUBJECT, "properties": _deep(3000)}),
    ("resource", ["transaction"]),
    ("resource", None),
    ("action", "enter"),
    ("action.name", 5),
    ("context", []),
    ("context", "amount"),
    ("context.amount", float("nan")),
    ("context.amount", "20000"),
    ("context.amount", 1e308 * 10),
    ("context", {"amount": 20000, "deep": _deep(3000)}),
    ("denial", "x"),
    ("denial", None),
    ("denial.expires_at", 5),
    ("denial.expires_at", _MISSING),
    ("denial.binding_token", 5),
    ("denial.binding_token", ""),
    ("denial.binding_token", "a.b.c"),
    ("denial.binding_token", "é.é.é"),
    ("denial.binding_token", "a\x00.b.c"),
    ("denial.binding_token", "x." * 40000),
    ("denial.binding_token", "eyJhbGciOiJub25lIn0.eyJhdWQiOjF9."),
    ("items", [{}]),
    ("items", "x"),
    ("callback", "http://pep.example.com/"),
    ("callback", {"endpoint": 5}),
    ("callback", {"endpoint": "http://127.1:9/cb"}),
    ("callback", {"endpoint": "https://pep.example.com/cb", "events": "approved"}),
    ("callback", {"endpoint": "https://pep.example.com/cb", "events": [1]}),
    ("callback", {"endpoint": "https://pep.example.com/cb", "state": 5}),
    ("callback", {"endpoint": "https://u:p@pep.example.com/cb"}),
    ("requested_access", "all"),
    ("client", 5),
]


def _json(value: Any) -> bytes:
    import json

    return json.dumps(value, allow_nan=True).replace(f'"{DEEP}"', '{"a":' * 3000 + "1" + "}" * 3000).encode()


@pytest.mark.parametrize(("path", "value"), SUBMISSIONS, ids=[f"{n}-{p}" for n, (p, _) in enumerate(SUBMISSIONS)])
def test_a_malformed_submission_is_a_4xx_problem(http: httpx.Client, path: str, value: Any) -> None:
    body = _set(_denied(http), path, value)
    answer = http.post("/access/v1/requests", content=_json(body), headers={"content-type": "application/json"})
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:500])
    assert answer.json().get("detail") or answer.json().get("message") or answer.json().get("error")
    assert http.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    "body", [b"", b"null", b"[]", b'"x"', b"1", b"{", b"\xff\xfe", b'{"subject": {"id": "ann"}}' * 1]
)
def test_a_submission_that_is_not_an_object_is_a_4xx(http: httpx.Client, body: bytes) -> None:
    answer = http.post("/access/v1/requests", content=body, headers={"content-type": "application/json"})
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])


@pytest.mark.parametrize("key", ["x" * 256, "é"])
def test_a_bad_idempotency_key_is_a_4xx(http: httpx.Client, key: str) -> None:
    body = _denied(http)
    answer = http.post("/access/v1/requests", json=body, headers={"idempotency-key": key.encode("utf-8")})  # type: ignore[dict-item]
    assert 400 <= answer.status_code < 500 or answer.status_code == 202, (answer.status_code, answer.text[:300])
    assert answer.status_code != 500


@pytest.mark.parametrize(
    "task_id", ["x" * 5000, "arq_%00", "arq_%C3%A9", "..%2F..%2Fadmin", "arq_" + "0" * 32, "%20", "ARQ_X"]
)
def test_an_unknown_or_malformed_task_id_is_a_404_problem(http: httpx.Client, task_id: str) -> None:
    for answer in (
        http.get(f"/access/v1/requests/{task_id}"),
        http.post(f"/access/v1/requests/{task_id}/cancel", content=b""),
    ):
        assert answer.status_code in (400, 404), (answer.status_code, answer.text[:300])


@pytest.mark.parametrize("body", [b"[]", b"null", b'{"reason": 5}', b'{"comment": []}', b"{", b'"x"'])
def test_a_malformed_cancellation_is_a_4xx(http: httpx.Client, body: bytes) -> None:
    task = http.post("/access/v1/requests", json=_denied(http))
    assert task.status_code == 202, task.text
    answer = http.post(f"{task.json()['task']['status_endpoint']}/cancel", content=body)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
    assert http.get(task.json()["task"]["status_endpoint"]).json()["task"]["status"] == "pending"


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("approval", "apr_x"),
        ("approval", 5),
        ("approval", []),
        ("approval", None),
        ("approval", {}),
        ("approval", {"id": 5}),
        ("approval", {"id": None}),
        ("approval", {"id": "x" * 100_000}),
        ("approval", {"id": "é\x00"}),
        ("approval", {"id": "apr_x", "approved_until": 5}),
        ("approval_id", 5),
        ("approval_id", None),
        ("approval_id", {}),
        ("approval_id", ["apr_x"]),
        ("approval_id", ""),
    ],
)
def test_a_malformed_approval_presented_on_reevaluation_is_a_deny_or_a_4xx(
    http: httpx.Client, member: str, value: Any
) -> None:
    evaluation = {
        "subject": SUBJECT,
        "action": ACTION,
        "resource": {"type": "transaction", "id": "t-1"},
        "context": {"amount": 20000, member: value},
    }
    answer = http.post(f"/orgs/{ORG}/access/v1/evaluation", json=evaluation)
    assert answer.status_code == 200 or 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
    if answer.status_code == 200:
        assert answer.json()["decision"] is False
