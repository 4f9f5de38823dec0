"""With DUTYLINE_REQUIRE_AUTH=true, the decision API needs a bearer token with the decide (or admin) scope;
metadata, health and metrics stay open. (Off by default: the other API tests and the AuthZEN interop run
unauthenticated.)"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api.admin_client import Client, create_admin, token_for
from tests.conftest import REPO, LiveServer

CHECK = {"organisation": "sales_company", "subject": {"id": "li_na"}, "resource": {"type": "customer"}, "action": "contact"}
EVALUATION = {"subject": {"type": "user", "id": "li_na"}, "action": {"name": "contact"}, "resource": {"type": "customer", "id": "c1"}}


@pytest.fixture
def guarded(database_url: str) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    admin_token = create_admin(database_url)
    server = LiveServer(database_url, seed_dir=str(REPO / "policies"), extra_env={"DUTYLINE_REQUIRE_AUTH": "true"})
    try:
        server.wait_ready()
        root = Client(server, admin_token)
        tokens = {
            "admin": admin_token,
            "decide": token_for(root, "root", ["decide"]),
            "read": token_for(root, "root", ["read"]),
        }
        yield server, tokens
    finally:
        server.stop()


def test_decisions_need_a_decide_or_admin_token_when_required(guarded: tuple[LiveServer, dict[str, str]]) -> None:
    server, tokens = guarded

    def check(token: str | None, path: str = "/v1/check", body: dict = CHECK) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.post(f"{server.url}{path}", json=body, headers=headers, timeout=10)

    missing = check(None)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert check("dl_unknown_token").status_code == 401
    assert check(tokens["read"]).status_code == 403, "a read token is for the admin API only"
    assert check(tokens["decide"]).json()["decision"] == "allow"
    assert check(tokens["admin"]).json()["decision"] == "allow"
    assert check(None, "/access/v1/evaluation", EVALUATION).status_code == 401
    assert check(tokens["decide"], "/access/v1/evaluation", EVALUATION).json() == {"decision": True}
    people = httpx.get(f"{server.url}/v1/orgs/sales_company/people/li_na/permissions", timeout=10)
    assert people.status_code == 401
    for open_path in ("/healthz", "/.well-known/authzen-configuration"):
        assert httpx.get(f"{server.url}{open_path}", timeout=10).status_code == 200, open_path
