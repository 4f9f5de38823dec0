"""Issue 11, item 20: a forged `page_token` holding a date-time without an offset was a 500 with a traceback. Every
token this server did not issue is now a 400 naming `page_token`, on both routes that page the decision log."""

from __future__ import annotations

import base64
import time

import pytest

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
