"""With DUTYLINE_REQUIRE_AUTH=true, the decision API needs a bearer token with the decide (or admin) scope, or
a console session (its cookie, and for a change its CSRF token); metadata, health and metrics stay open. (Off by
default: the other API tests and the AuthZEN interop run unauthenticated.)"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.api.admin_client import PASSWORD, Client, create_admin, token_for
from tests.conftest import REPO, LiveServer, _backends, fresh_database

CHECK = {
    "organisation": "sales_company",
    "subject": {"id": "li_na"},
    "resource": {"type": "customer"},
    "action": "contact",
}
EVALUATION = {
    "subject": {"type": "user", "id": "li_na"},
    "action": {"name": "contact"},
    "resource": {"type": "customer", "id": "c1"},
}


@pytest.fixture(scope="module", params=_backends())
def guarded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    """One guarded server per database backend for this module (each test logs in afresh)."""
    with fresh_database(request.param, tmp_path_factory.mktemp("db")) as database_url:
        yield from _guarded(database_url)


def _guarded(database_url: str) -> Iterator[tuple[LiveServer, dict[str, str]]]:
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
        root.close()
        yield server, tokens
    finally:
        server.stop()


def console_session(server: LiveServer, username: str = "root") -> Client:
    """A client logged in as the console logs in: a session cookie, and the CSRF token it sends with changes."""
    client = Client(server)
    assert client.login(username).status_code == 200
    return client


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


EXPENSE = {
    "organisation": "sales_company",
    "subject": {"id": "zhao_lei"},
    "resource": {"type": "expense", "id": "exp-9"},
    "action": "submit",
    "context": {"amount": 12000, "currency": "CNY"},
}
CASE = {"organisation": "sales_company", "type": "expense_claim_pending"}


def test_a_console_session_may_use_the_decision_api_approvals_and_cases_when_required(
    guarded: tuple[LiveServer, dict[str, str]],
) -> None:
    server, _ = guarded
    console = console_session(server)
    assert console.post("/v1/check", json=CHECK).json()["decision"] == "allow"
    assert console.post("/access/v1/evaluation", json=EVALUATION).json() == {"decision": True}
    assert console.get("/v1/orgs/sales_company/people/li_na/permissions").status_code == 200

    # A console user requests and decides as the person they are linked to (here: root is zhao_lei, linked by
    # another administrator: nobody links themselves).
    linker = Client(server, token_for(console, "linker", ["admin"], [{"role": "system_admin", "organisation": "*"}]))
    assert linker.patch("/admin/users/root", json={"people": {"sales_company": "zhao_lei"}}).status_code == 200
    linker.close()
    opened = console.post("/v1/approvals", json={**EXPENSE, "comment": "client dinner"})
    assert opened.status_code == 201, opened.text
    assert opened.json()["post"] == "department_head"
    wang = {"organisation": "sales_company", "approver": "wang_jianguo", "status": "pending"}
    inbox = console.get("/v1/approvals", params=wang)
    assert inbox.status_code == 200 and opened.json()["id"] in [a["id"] for a in inbox.json()["items"]]
    assert console.get(f"/v1/approvals/{opened.json()['id']}").json()["events"]

    case = console.post("/v1/cases", json={**CASE, "title": "exp-9 waits"})
    assert case.status_code == 201, case.text
    cases = console.get("/v1/cases", params={"organisation": "sales_company"}).json()["items"]
    assert case.json()["id"] in [c["id"] for c in cases]
    assert console.get("/v1/decisions", params={"organisation": "sales_company"}).status_code == 200
    console.close()


def test_a_console_user_approves_as_their_linked_person_and_a_token_as_the_person_its_client_attests(
    guarded: tuple[LiveServer, dict[str, str]],
) -> None:
    server, tokens = guarded
    root = Client(server, tokens["admin"])
    created = root.post(
        "/admin/users",
        json={
            "username": "wang",
            "password": PASSWORD,
            "roles": [{"role": "compliance_officer", "organisation": "sales_company"}],
        },
    )
    assert created.status_code == 201, created.text
    assert root.patch("/admin/users/wang", json={"people": {"sales_company": "wang_jianguo"}}).status_code == 200
    machine = Client(server, tokens["decide"])

    def opened(expense: str) -> str:
        response = machine.post("/v1/approvals", json={**EXPENSE, "resource": {"type": "expense", "id": expense}})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    wang = console_session(server, "wang")
    first = opened("exp-10")
    as_other = wang.post(f"/v1/approvals/{first}/approve", json={"person": "zhao_lei"})
    assert (
        as_other.status_code == 403
        and as_other.json()["message"] == "a console user acts as their own person (wang_jianguo)"
    )
    approved = wang.post(f"/v1/approvals/{first}/approve", json={"comment": "within budget"})
    assert approved.status_code == 200 and approved.json()["decided_by"] == "wang_jianguo", approved.text
    attested = machine.post(f"/v1/approvals/{opened('exp-11')}/approve", json={"person": "wang_jianguo"})
    assert attested.status_code == 200 and attested.json()["decided_by"] == "wang_jianguo", attested.text
    for client in (root, machine, wang):
        client.close()


def test_a_change_with_a_session_cookie_but_without_its_csrf_token_is_refused(
    guarded: tuple[LiveServer, dict[str, str]],
) -> None:
    server, _ = guarded
    console = console_session(server)
    case = {**CASE, "title": "forged"}
    missing = console.post("/v1/cases", json=case, csrf=False)
    wrong = console.post("/v1/cases", json=case, csrf=False, headers={"X-CSRF-Token": "guess"})
    for refused in (missing, wrong):
        assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["message"]
    assert console.post("/v1/check", json=CHECK, csrf=False).status_code == 403, "every POST, even a check"
    titles = [c["title"] for c in console.get("/v1/cases", params={"organisation": "sales_company"}).json()["items"]]
    assert "forged" not in titles, "nothing was opened"
    assert console.get("/v1/cases", params={"organisation": "sales_company"}).status_code == 200, "reads need no token"
    console.close()


def test_a_logged_out_or_unknown_session_is_refused_at_once(guarded: tuple[LiveServer, dict[str, str]]) -> None:
    server, _ = guarded
    console = console_session(server)
    cookie = console.http.cookies["dutyline_session"]
    assert console.post("/v1/check", json=CHECK).status_code == 200  # the session is now in the server's cache
    assert console.post("/admin/logout").status_code == 200
    replay = Client(server)
    replay.http.cookies.set("dutyline_session", cookie)
    replay.csrf = console.csrf
    ended = replay.post("/v1/check", json=CHECK)
    assert ended.status_code == 401 and "log in again" in ended.json()["message"], "logout is not cached away"
    assert ended.headers["www-authenticate"].startswith("Bearer")
    stranger = Client(server)
    stranger.http.cookies.set("dutyline_session", "not-a-session")
    assert stranger.get("/v1/cases").status_code == 401
    for client in (console, replay, stranger):
        client.close()


def test_an_expired_session_is_refused_even_though_answers_are_cached(database_url: str) -> None:
    create_admin(database_url)
    env = {"DUTYLINE_REQUIRE_AUTH": "true", "DUTYLINE_SESSION_TTL": "3s"}
    server = LiveServer(database_url, seed_dir=str(REPO / "policies"), extra_env=env)
    try:
        server.wait_ready()
        console = console_session(server)
        ends = dt.datetime.fromisoformat(console.get("/admin/session").json()["expires_at"])
        assert console.post("/v1/check", json=CHECK).status_code == 200
        # Past the session's end, yet within the 5 s that an answer is cached.
        time.sleep(max(0.0, (ends - dt.datetime.now(dt.UTC)).total_seconds()) + 0.5)
        late = Client(server)  # a client that still sends the cookie (httpx would drop it once its Max-Age is over)
        late.http.cookies.set("dutyline_session", console.http.cookies["dutyline_session"])
        late.csrf = console.csrf
        expired = late.post("/v1/check", json=CHECK)
        assert expired.status_code == 401 and "expired" in expired.json()["message"]
        for client in (console, late):
            client.close()
    finally:
        server.stop()


def test_a_page_token_is_refused_to_another_caller(guarded: tuple[LiveServer, dict[str, str]]) -> None:
    """Issue 12, item 7: a page token is bound to the caller it was issued to (here: two bearer tokens)."""
    server, tokens = guarded
    who = f"{server.url}/v1/orgs/ninger_branch/who"
    params = {"resource": "regulation", "action": "view", "limit": 2}

    def ask(token: str, page_token: str | None = None) -> httpx.Response:
        extra = {"page_token": page_token} if page_token else {}
        return httpx.get(who, params={**params, **extra}, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    first = ask(tokens["admin"]).json()["next_token"]
    assert first and ask(tokens["admin"], first).status_code == 200
    refused = ask(tokens["decide"], first)
    assert refused.status_code == 400 and [i["path"] for i in refused.json()["issues"]] == ["page_token"], refused.text
    own = ask(tokens["decide"]).json()["next_token"]
    assert ask(tokens["decide"], own).status_code == 200
