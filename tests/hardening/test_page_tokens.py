"""Issue 11, item 20: a forged `page_token` holding a date-time without an offset was a 500 with a traceback. Every
token this server did not issue is now a 400 naming `page_token`, on both routes that page the decision log.

Issue 12, item 7: page tokens were bare offsets, accepted for another request, another endpoint, or negative. One
scheme now serves `who`, the AuthZEN searches and the decision log (`api/paging.py`): a token is bound to the
endpoint, the request (its filters or body, page fields aside) and the caller, and signed; anything else is a 400
naming the page field (`page_token`, or `page.token` in an AuthZEN body)."""

from __future__ import annotations

import base64
import json
import time

import pytest

from tests.api.admin_client import Client
from tests.hardening.conftest import Stack

ORG = "sales_company"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


FORGED = {
    "a date-time without an offset": _b64(b"2026-01-01T00:00:00|x"),
    "a date only": _b64(b"2026-01-01|x"),
    "not a date-time": _b64(b"yesterday|x"),
    "no separator": _b64(b"2026-01-01T00:00:00+00:00"),
    "an empty id": _b64(b"2026-01-01T00:00:00+00:00|"),
    "an id with control characters": _b64(b"2026-01-01T00:00:00+00:00|\x00\x1b[2J"),
    "an id too long for the column": _b64(b"2026-01-01T00:00:00+00:00|" + b"x" * 500),
    "bytes that are not UTF-8": _b64(b"\xff\xfe\xfd|x"),
    "not base64": "!!!***",
    "non-ASCII": "令牌",
    "long": "A" * 5_000,
}


@pytest.mark.parametrize("path", ["/v1/decisions", f"/admin/orgs/{ORG}/decisions"])
@pytest.mark.parametrize("case", sorted(FORGED))
def test_a_page_token_this_server_did_not_issue_is_a_400_naming_page_token(stack: Stack, path: str, case: str) -> None:
    response = stack.root.get(path, params={"page_token": FORGED[case], "limit": 1})
    assert response.status_code == 400, f"{case}: {response.status_code} {response.text[:300]}"
    assert [issue["path"] for issue in response.json()["issues"]] == ["page_token"]


def test_a_page_token_it_issued_pages_on(stack: Stack) -> None:
    for _ in range(3):
        check = {"organisation": ORG, "subject": {"id": "li_na"}, "resource": {"type": "customer"}, "action": "contact"}
        assert stack.root.post("/v1/check", json=check).status_code == 200
    deadline = time.monotonic() + 10  # the log is written in batches, off the decision path
    while not (first := stack.root.get("/v1/decisions", params={"organisation": ORG, "limit": 1}).json())["next_token"]:
        assert time.monotonic() < deadline, first
        time.sleep(0.1)
    params = {"organisation": ORG, "limit": 1, "page_token": first["next_token"]}
    second = stack.root.get("/v1/decisions", params=params)
    assert second.status_code == 200 and second.json()["items"][0]["decision_id"] != first["items"][0]["decision_id"]


# --- one scheme, bound to its request (issue 12, item 7) ---------------------------------------------------------

WHO = "/v1/orgs/ninger_branch/who"
WHO_PARAMS = {"resource": "regulation", "action": "view", "limit": 2}
SEARCH = "/orgs/ninger_branch/access/v1/search/subject"
SEARCH_BODY = {"subject": {"type": "user"}, "action": {"name": "view"}, "resource": {"type": "regulation", "id": "r"}}


def _who_token(client: Client, **params: object) -> str:
    page = client.get(WHO, params={**WHO_PARAMS, **params})
    assert page.status_code == 200, page.text
    assert page.json()["next_token"], page.json()
    return page.json()["next_token"]


def _search_token(client: Client, body: dict[str, object] | None = None) -> str:
    page = client.post(SEARCH, json={**(body or SEARCH_BODY), "page": {"limit": 2}})
    assert page.status_code == 200, page.text
    assert page.json()["page"]["next_token"], page.json()
    return page.json()["page"]["next_token"]


def _log_token(stack: Stack, **params: object) -> str:
    for _ in range(3):
        check = {"organisation": ORG, "subject": {"id": "li_na"}, "resource": {"type": "customer"}, "action": "contact"}
        assert stack.root.post("/v1/check", json=check).status_code == 200
    deadline = time.monotonic() + 10  # the log is written in batches, off the decision path
    while not (page := stack.root.get("/v1/decisions", params={"organisation": ORG, "limit": 1, **params}).json())[
        "next_token"
    ]:
        assert time.monotonic() < deadline, page
        time.sleep(0.1)
    return page["next_token"]


def _refused(response: object, field: str) -> str:
    assert response.status_code == 400, f"{response.status_code} {response.text[:300]}"  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert [issue["path"] for issue in body["issues"]] == [field], body
    return body["message"]


def test_a_who_token_pages_on_and_only_for_its_own_request(stack: Stack) -> None:
    token = _who_token(stack.root)
    again = stack.root.get(WHO, params={**WHO_PARAMS, "page_token": token})
    assert again.status_code == 200, again.text
    # a changed limit is still the same walk; a changed question is not
    assert stack.root.get(WHO, params={**WHO_PARAMS, "limit": 5, "page_token": token}).status_code == 200
    message = _refused(
        stack.root.get(WHO, params={**WHO_PARAMS, "resource_id": "r9", "page_token": token}), "page_token"
    )
    assert "another request" in message
    _refused(stack.root.get(WHO, params={**WHO_PARAMS, "at": "2026-01-05", "page_token": token}), "page_token")


def test_a_search_token_is_refused_for_another_body_but_not_another_limit(stack: Stack) -> None:
    token = _search_token(stack.root)
    walked = stack.root.post(SEARCH, json={**SEARCH_BODY, "page": {"token": token, "limit": 7}})
    assert walked.status_code == 200, walked.text
    # the body's key order is not the request: the same request written otherwise continues the walk
    reordered = {
        "resource": SEARCH_BODY["resource"],
        "subject": SEARCH_BODY["subject"],
        "action": SEARCH_BODY["action"],
    }
    assert stack.root.post(SEARCH, json={**reordered, "page": {"token": token}}).status_code == 200
    for changed in (
        {**SEARCH_BODY, "context": {"time": "2026-12-01T10:00:00+08:00"}},
        {**SEARCH_BODY, "resource": {"type": "regulation", "id": "other"}},
        {**SEARCH_BODY, "action": {"name": "edit"}},
    ):
        message = _refused(stack.root.post(SEARCH, json={**changed, "page": {"token": token}}), "page.token")
        assert "another request" in message, message
    # the same body under another organisation's base is another request too
    other = stack.root.post("/access/v1/search/subject", json={**SEARCH_BODY, "page": {"token": token}})
    _refused(other, "page.token")


def test_a_token_is_refused_at_another_endpoint(stack: Stack) -> None:
    search, who, log = _search_token(stack.root), _who_token(stack.root), _log_token(stack)
    resource = {
        "subject": {"type": "user", "id": "li_na"},
        "action": {"name": "view"},
        "resource": {"type": "regulation"},
    }
    message = _refused(
        stack.root.post("/orgs/ninger_branch/access/v1/search/resource", json={**resource, "page": {"token": search}}),
        "page.token",
    )
    assert "another endpoint" in message, message
    _refused(stack.root.get(WHO, params={**WHO_PARAMS, "page_token": search}), "page_token")
    _refused(stack.root.get(WHO, params={**WHO_PARAMS, "page_token": log}), "page_token")
    _refused(stack.root.get("/v1/decisions", params={"organisation": ORG, "limit": 1, "page_token": who}), "page_token")
    _refused(stack.root.get(f"/admin/orgs/{ORG}/decisions", params={"limit": 1, "page_token": log}), "page_token")
    _refused(stack.root.post(SEARCH, json={**SEARCH_BODY, "page": {"token": who}}), "page.token")


def test_a_decision_log_token_is_bound_to_its_filters(stack: Stack) -> None:
    token = _log_token(stack)
    assert (
        stack.root.get("/v1/decisions", params={"organisation": ORG, "limit": 5, "page_token": token}).status_code
        == 200
    )
    for changed in ({"organisation": "hotel"}, {"organisation": ORG, "outcome": "deny"}, {}):
        _refused(stack.root.get("/v1/decisions", params={**changed, "limit": 1, "page_token": token}), "page_token")


def _forgeries(real: str) -> dict[str, str]:
    """Tokens made without the key: the old bare offsets, a negative one, a real token's payload altered."""
    payload, mac = real.split(".")
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    decoded = json.loads(raw)
    at = decoded[2][1]
    altered = {}
    for offset in (-1, -(2**40), 0, 2**40, 1):
        forged = [decoded[0], decoded[1], [offset, at]]
        altered[f"offset {offset} under the real MAC"] = f"{_b64(json.dumps(forged).encode())}.{mac}"
    return {
        **altered,
        "a bare offset (the old scheme)": _b64(json.dumps([2, at]).encode()),
        "a negative bare offset": _b64(json.dumps([-2, at]).encode()),
        "the payload without its MAC": payload,
        "another MAC": f"{payload}.{_b64(b'x' * 16)}",
        "an empty MAC": f"{payload}.",
        "two dots": f"{payload}.{mac}.{mac}",
        "the MAC alone": mac,
        "not base64": "!!!.***",
    }


def test_forged_and_negative_tokens_are_refused_everywhere(stack: Stack) -> None:
    who, search = _who_token(stack.root), _search_token(stack.root)
    for forged in _forgeries(who).values():
        _refused(stack.root.get(WHO, params={**WHO_PARAMS, "page_token": forged}), "page_token")
    for forged in _forgeries(search).values():
        _refused(stack.root.post(SEARCH, json={**SEARCH_BODY, "page": {"token": forged}}), "page.token")
    log = _log_token(stack)
    payload, mac = log.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    # a cursor of one's own (every row, from the far future back) under the real MAC
    decoded[2] = ["2999-01-01T00:00:00+00:00", "zzzz"]
    forged = f"{_b64(json.dumps(decoded).encode())}.{mac}"
    _refused(
        stack.root.get("/v1/decisions", params={"organisation": ORG, "limit": 1, "page_token": forged}), "page_token"
    )
