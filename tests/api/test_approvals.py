"""Approvals, the usage ledger, presented approvals and obligations over real HTTP, on SQLite and PostgreSQL.

The organisation is tests/data/workflow/test_counter.yaml: teller (ann, bob, tom) → manager (mia; kay and rob
acting inside their window, tom's window over) → deputy (vacant) → director (dan); a reviewer may not be a
teller (kay is both reviewer and acting manager).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from dutyline.services.orgs import import_paths
from dutyline.store.db import make_engine, session_factory, upgrade
from tests.api.admin_client import PASSWORD, Client, create_admin
from tests.conftest import REPO
from tests.live import LiveServer

WORKFLOW = REPO / "tests" / "data" / "workflow"
ORG = "test_counter"


def post(server: LiveServer, path: str, body: object, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body, timeout=10, **kwargs)


def get(server: LiveServer, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", params=params, timeout=10)


def request(subject: str, resource: str, action: str, resource_id: str | None = None, **context: Any) -> dict:
    body: dict = {"organisation": ORG, "subject": {"id": subject}, "resource": {"type": resource}, "action": action}
    if resource_id is not None:
        body["resource"]["id"] = resource_id
    if context:
        body["context"] = context
    return body


def eventually(probe: Callable[[], Any], timeout: float = 10.0) -> Any:
    """The first truthy result of `probe`, polled until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def import_counter_into(database_url: str) -> None:
    """Store the test organisation and its rule pack (what `dutyline import` does, without a process start)."""
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        import_paths(session_factory(engine), [WORKFLOW], author="test")
    finally:
        engine.dispose()


def import_counter(server: LiveServer) -> None:
    """Import the test organisation and its rule pack into a running server's database; wait until it applies them."""
    import_counter_into(server.database_url)

    def loaded() -> bool:
        answer = post(server, "/v1/check", request("ann", "transaction", "enter", "t0", amount=20000)).json()
        return answer["decision"] == "needs_approval"

    assert eventually(loaded), "the test organisation's rules were not applied"


@pytest.fixture(scope="module")
def server(api_server: LiveServer) -> LiveServer:
    import_counter(api_server)
    return api_server


def new_id() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def open_approval(
    server: LiveServer,
    subject: str = "ann",
    amount: float = 20000,
    resource_id: str | None = None,
    uses: int = 1,
    **context: Any,
) -> dict:
    body = request(subject, "transaction", "enter", resource_id or new_id(), amount=amount, **context)
    response = post(server, "/v1/approvals", body | {"comment": "customer is waiting", "uses": uses})
    assert response.status_code == 201, response.text
    return response.json()


# --- opening -----------------------------------------------------------------------------------------------


def test_a_request_above_the_limit_opens_an_approval_at_the_nearest_post_that_covers_it(server: LiveServer) -> None:
    approval = open_approval(server)
    assert (
        approval["status"] == "pending" and approval["requester"] == "ann" and approval["requester_posts"] == ["teller"]
    )
    assert approval["rules"] == ["entry_limit"] and approval["level"] == 0 and approval["post"] == "manager"
    assert approval["chain"] == [
        {"post": "manager", "people": ["mia", "kay", "rob"]},  # acting holders inside their window; tom's is over
        {"post": "director", "people": ["dan"]},  # deputy has no limit that covers it (and nobody in it)
    ]
    assert approval["request"]["context"] == {"amount": 20000} and approval["comment"] == "customer is waiting"
    assert [e["kind"] for e in approval["events"]] == ["requested"]
    created, due = (time.mktime(time.strptime(approval[k][:19], "%Y-%m-%dT%H:%M:%S")) for k in ("created_at", "due_at"))
    assert due - created == 24 * 3600, "DUTYLINE_APPROVAL_SLA defaults to 24h"
    assert get(server, f"/v1/approvals/{approval['id']}").json() == approval
    notified = get(server, "/v1/notifications", organisation=ORG, post="manager").json()["items"]
    requested = [n for n in notified if n["subject_id"] == approval["id"]]
    assert [n["kind"] for n in requested] == ["approval_requested"] and requested[0]["people"] == ["mia", "kay", "rob"]


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        (request("ann", "transaction", "enter", "t1", amount=5000), "allow"),  # within the teller's limit
        (request("ann", "transaction", "authorize", "t1"), "deny"),  # a teller has no duty to authorise
    ],
)
def test_only_a_needs_approval_decision_opens_an_approval(server: LiveServer, body: dict, outcome: str) -> None:
    response = post(server, "/v1/approvals", body)
    assert response.status_code == 409
    assert response.json()["decision"]["decision"] == outcome
    assert "nothing to approve" in response.json()["message"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"organisation": ORG, "subject": {"id": "ann"}, "resource": {"type": "transaction"}}, "`action`"),
        (
            {
                "organisation": ORG,
                "subject": {"id": "ann"},
                "resource": {"type": "transaction"},
                "action": "enter",
                "comment": 5,
            },
            "$.comment",
        ),
        (request("ann", "transaction", "enter", "t1", amount=20000) | {"at": "yesterday"}, "at:"),
        (
            {
                "organisation": ORG,
                "subject": {"id": "manager", "type": "post"},
                "resource": {"type": "transaction"},
                "action": "enter",
            },
            "subject.type",
        ),
    ],
)
def test_bad_input_to_open_is_a_400_naming_the_field(server: LiveServer, body: dict, fragment: str) -> None:
    response = post(server, "/v1/approvals", body)
    assert response.status_code == 400 and fragment in response.json()["message"]


def test_a_body_that_is_not_json_is_a_400(server: LiveServer) -> None:
    response = httpx.post(
        f"{server.url}/v1/approvals", content=b"person=ann", headers={"content-type": "text/plain"}, timeout=10
    )
    assert response.status_code == 400 and "application/json" in response.json()["message"]


# --- the inbox ---------------------------------------------------------------------------------------------


def test_the_inbox_lists_approvals_waiting_at_a_post_the_person_holds_now(server: LiveServer) -> None:
    approval = open_approval(server)

    def inbox(person: str) -> list[str]:
        response = get(server, "/v1/approvals", organisation=ORG, approver=person)
        assert response.status_code == 200, response.text
        return [a["id"] for a in response.json()["items"]]

    assert approval["id"] in inbox("mia")
    assert approval["id"] in inbox("mia@counter.example"), "any identity of the person"
    assert approval["id"] in inbox("rob"), "an acting holder inside the window"
    assert approval["id"] not in inbox("tom"), "an acting holder whose window is over"
    assert approval["id"] not in inbox("dan"), "the director is the next level, not this one"
    assert approval["id"] not in inbox("ann"), "the requester's own request"
    mine = get(server, "/v1/approvals", organisation=ORG, requester="ann", status="pending").json()["items"]
    assert approval["id"] in [a["id"] for a in mine]


def test_inbox_filters_are_checked(server: LiveServer) -> None:
    bad = get(server, "/v1/approvals", organisation=ORG, status="maybe")
    assert bad.status_code == 400 and "status" in bad.json()["message"]
    unknown = get(server, "/v1/approvals", organisation=ORG, approver="nobody")
    assert unknown.status_code == 404 and "nobody" in unknown.json()["message"]
    assert get(server, "/v1/approvals", organisation="nowhere", approver="mia").status_code == 404
    assert get(server, "/v1/approvals", limit=0).status_code == 400


# --- deciding ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("person", "context", "reason"),
    [
        ("ann", {}, "requested this approval"),
        ("bob", {}, "does not hold manager now"),
        ("tom", {}, "does not hold manager now"),  # acting window over
        ("dan", {}, "does not hold manager now"),  # a higher post, but the approval waits at the manager's level
        ("mia", {"maker": "mia"}, "maker of this request"),
        ("mia", {"requester": "mia@counter.example"}, "requester of this request"),
        ("kay", {}, "separation of duties reviewer_not_teller"),  # reviewer, and the request came through teller
        ("stranger", {}, "not a person of 'test_counter'"),
    ],
)
def test_who_may_not_decide_gets_a_403_saying_why(server: LiveServer, person: str, context: dict, reason: str) -> None:
    approval = open_approval(server, **context)
    for verb in ("approve", "reject"):
        response = post(server, f"/v1/approvals/{approval['id']}/{verb}", {"person": person})
        assert response.status_code == 403, response.text
        assert reason in response.json()["message"]
    assert get(server, f"/v1/approvals/{approval['id']}").json()["status"] == "pending"


def test_an_acting_holder_inside_the_window_approves_and_it_is_recorded(server: LiveServer) -> None:
    approval = open_approval(server)
    response = post(
        server, f"/v1/approvals/{approval['id']}/approve", {"person": "rob", "comment": "checked the customer"}
    )
    assert response.status_code == 200, response.text
    decided = response.json()
    assert (decided["status"], decided["decided_by"], decided["decision_comment"]) == (
        "approved",
        "rob",
        "checked the customer",
    )
    assert [e["kind"] for e in decided["events"]] == ["requested", "approved"]
    assert decided["events"][1]["actor"] == "rob" and decided["due_at"] is None
    again = post(server, f"/v1/approvals/{approval['id']}/reject", {"person": "mia"})
    assert again.status_code == 409 and "already approved" in again.json()["message"]
    told = get(server, "/v1/notifications", organisation=ORG, post="teller").json()["items"]
    assert [n["people"] for n in told if n["subject_id"] == approval["id"]] == [["ann"]]


def test_deciding_needs_a_person_and_a_known_approval(server: LiveServer) -> None:
    approval = open_approval(server)
    missing = post(server, f"/v1/approvals/{approval['id']}/approve", {"comment": "ok"})
    assert missing.status_code == 400 and "`person`" in missing.json()["message"]
    assert post(server, "/v1/approvals/apv_nope/approve", {"person": "mia"}).status_code == 404
    assert get(server, "/v1/approvals/apv_nope").status_code == 404


# --- who is acting: a console user acts as their linked person; a token's client attests the person -----------


@pytest.fixture(scope="module")
def root(server: LiveServer) -> Iterator[Client]:
    """The first system administrator (made with the CLI while the server runs), as a bearer-token client."""
    token = create_admin(server.database_url)
    client = Client(server, token)
    assert eventually(lambda: client.get("/admin/users").status_code == 200), "the server did not see the new admin"
    yield client
    client.close()


def console_user(server: LiveServer, root: Client, roles: list[str], people: dict[str, str] | None = None) -> Client:
    """A new user with `roles` (`ROLE@ORG`), linked by root to `people` ({organisation: person}), logged in to the
    console: a session cookie and its CSRF token."""
    username = f"u{uuid.uuid4().hex[:8]}"
    grants = [dict(zip(("role", "organisation"), role.split("@"), strict=True)) for role in roles]
    created = root.post("/admin/users", json={"username": username, "password": PASSWORD, "roles": grants})
    assert created.status_code == 201, created.text
    if people is not None:
        linked = root.patch(f"/admin/users/{username}", json={"people": people})
        assert linked.status_code == 200 and linked.json()["people"] == people, linked.text
    console = Client(server)
    assert console.login(username).status_code == 200
    return console


def test_a_console_user_linked_to_an_approver_approves_as_that_person(server: LiveServer, root: Client) -> None:
    mia = console_user(server, root, [f"compliance_officer@{ORG}"], {ORG: "mia"})
    approval = open_approval(server)
    response = mia.post(f"/v1/approvals/{approval['id']}/approve", json={"comment": "seen the customer"})
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["decided_by"]) == ("approved", "mia")
    assert response.json()["events"][-1]["actor"] == "mia"
    another = open_approval(server)
    named = mia.post(
        f"/v1/approvals/{another['id']}/reject", json={"person": "mia@counter.example"}
    )  # her own identity
    assert named.status_code == 200 and named.json()["decided_by"] == "mia", named.text
    mia.close()


def test_a_console_user_may_not_approve_or_request_as_another_person(server: LiveServer, root: Client) -> None:
    mia = console_user(server, root, [f"compliance_officer@{ORG}"], {ORG: "mia"})
    approval = open_approval(server)
    for verb in ("approve", "reject"):
        response = mia.post(
            f"/v1/approvals/{approval['id']}/{verb}", json={"person": "rob"}
        )  # rob may approve; mia is not rob
        assert response.status_code == 403, response.text
        assert response.json()["message"] == "a console user acts as their own person (mia)"
    after = get(server, f"/v1/approvals/{approval['id']}").json()
    assert after["status"] == "pending" and [e["kind"] for e in after["events"]] == ["requested"], "nothing changed"
    opened = mia.post("/v1/approvals", json=request("ann", "transaction", "enter", new_id(), amount=20000))
    assert opened.status_code == 403 and "(mia)" in opened.json()["message"], "nor request in someone else's name"
    mia.close()


@pytest.mark.parametrize(
    ("roles", "people", "fragment"),
    [
        ([f"auditor@{ORG}"], {ORG: "mia"}, "is an auditor in 'test_counter'"),
        (["auditor@*"], {ORG: "mia"}, "is an auditor in 'test_counter'"),
        (["system_admin@*"], None, "is linked to no person in 'test_counter'"),
        ([f"compliance_officer@{ORG}"], {"sales_company": "wang_jianguo"}, "is linked to no person in 'test_counter'"),
    ],
)
def test_an_auditor_or_an_unlinked_console_user_may_not_decide(
    server: LiveServer, root: Client, roles: list[str], people: dict[str, str] | None, fragment: str
) -> None:
    console = console_user(server, root, roles, people)
    approval = open_approval(server)
    for body in ({}, {"person": "mia"}):
        response = console.post(f"/v1/approvals/{approval['id']}/approve", json=body)
        assert response.status_code == 403 and fragment in response.json()["message"], response.text
    assert get(server, f"/v1/approvals/{approval['id']}").json()["status"] == "pending"
    console.close()


def test_a_bearer_token_approves_as_the_person_its_client_attests(server: LiveServer, root: Client) -> None:
    """Machine clients authenticate their own end users: the token's user is linked to nobody, and `person` decides."""
    approval = open_approval(server)
    response = root.post(f"/v1/approvals/{approval['id']}/approve", json={"person": "rob"})
    assert response.status_code == 200 and response.json()["decided_by"] == "rob", response.text
    missing = root.post(f"/v1/approvals/{open_approval(server)['id']}/approve", json={})
    assert missing.status_code == 400 and "`person`" in missing.json()["message"]


def test_a_cookie_that_is_no_session_is_refused_even_with_auth_not_required(server: LiveServer) -> None:
    stale = Client(server)
    stale.http.cookies.set("dutyline_session", "not-a-session")
    response = stale.post(f"/v1/approvals/{open_approval(server)['id']}/approve", json={"person": "mia"})
    assert response.status_code == 401 and "log in again" in response.json()["message"]
    stale.close()


@pytest.mark.parametrize(
    ("people", "field", "fragment"),
    [
        ({"nowhere": "mia"}, "people.nowhere", "'nowhere' is not an organisation"),
        ({ORG: "nobody"}, f"people.{ORG}", "'nobody' is not a person of 'test_counter'"),
    ],
)
def test_linking_a_user_to_an_unknown_organisation_or_person_is_a_400_naming_the_field(
    server: LiveServer, root: Client, people: dict[str, str], field: str, fragment: str
) -> None:
    console = console_user(server, root, [f"compliance_officer@{ORG}"])
    username = console.get("/admin/session").json()["username"]
    response = root.patch(f"/admin/users/{username}", json={"people": people})
    assert response.status_code == 400 and fragment in response.json()["message"], response.text
    assert [i["path"] for i in response.json()["issues"]] == [field]
    assert root.get(f"/admin/users/{username}").json()["people"] == {}, "nothing was linked"
    console.close()


def test_links_are_set_by_another_administrator_and_audited_under_the_organisation(
    server: LiveServer, root: Client
) -> None:
    console = console_user(server, root, [f"compliance_officer@{ORG}"])
    username = console.get("/admin/session").json()["username"]
    own = console.patch(f"/admin/users/{username}", json={"people": {ORG: "dan"}})
    assert own.status_code == 403, "a user does not choose whom they act as"
    linked = root.patch(f"/admin/users/{username}", json={"people": {ORG: "mia@counter.example"}})
    assert linked.status_code == 200 and linked.json()["people"] == {ORG: "mia"}, "stored as the person's id"
    entry = root.get("/admin/audit", params={"actor": "root", "limit": 1}).json()["items"][0]
    assert (entry["action"], entry["organisation"], entry["target"], entry["detail"]) == (
        "user_linked",
        ORG,
        f"user:{username}",
        {"person": "mia", "previous": None},
    )
    assert root.patch(f"/admin/users/{username}", json={"people": {}}).json()["people"] == {}
    console.close()


# --- presenting an approval with the check -----------------------------------------------------------------


def check(server: LiveServer, body: dict) -> dict:
    response = post(server, "/v1/check", body)
    assert response.status_code == 200, response.text
    return response.json()


def test_an_approved_request_presented_with_its_approval_is_allowed_up_to_the_approved_amount(
    server: LiveServer,
) -> None:
    resource = new_id()
    approval = open_approval(server, amount=20000, resource_id=resource, uses=2)
    assert (approval["uses"], approval["uses_left"], approval["expires_at"]) == (2, 2, None), "no expiry yet"
    before = check(
        server, request("ann", "transaction", "enter", resource, amount=20000) | {"approval_id": approval["id"]}
    )
    assert before["decision"] == "needs_approval", "a pending approval covers nothing"
    assert f"approval {approval['id']} is pending" in before["reasons"][-1]["en"]
    assert post(server, f"/v1/approvals/{approval['id']}/approve", {"person": "mia"}).status_code == 200

    def presented(subject: str = "ann", resource_id: str = resource, amount: float = 20000) -> dict:
        body = request(subject, "transaction", "enter", resource_id, amount=amount) | {"approval_id": approval["id"]}
        return check(server, body)

    assert presented(amount=25000)["decision"] == "needs_approval", "more than was approved"
    assert presented(resource_id=new_id())["decision"] == "needs_approval", "another transaction"
    assert presented(subject="bob")["decision"] == "needs_approval", "someone else's approval"
    assert check(server, request("ann", "transaction", "enter", resource, amount=20000))["decision"] == "needs_approval"
    unknown = request("ann", "transaction", "enter", resource, amount=20000) | {"approval_id": "apv_unknown"}
    assert check(server, unknown)["decision"] == "needs_approval"
    assert get(server, f"/v1/approvals/{approval['id']}").json()["uses_left"] == 2, "refused presentations take no use"

    first = presented()
    assert first["decision"] == "allow" and first["approval"]["id"] == approval["id"]
    used = first["approval"]
    assert (used["approved_by"], used["uses"], used["uses_left"]) == ("mia", 2, 1)
    assert any(r["code"] == "approved" and approval["id"] in r["en"] for r in first["reasons"])
    assert presented(amount=15000)["approval"]["uses_left"] == 0, "a smaller amount is within the approval"
    used_up = presented()
    assert used_up["decision"] == "needs_approval" and "used up" in used_up["reasons"][-1]["en"]
    events = get(server, f"/v1/approvals/{approval['id']}").json()["events"]
    assert [e["kind"] for e in events] == ["requested", "approved", "used", "used"]
    assert events[2]["comment"] == f"decision {first['decision_id']}"


def test_a_rejected_approval_allows_nothing(server: LiveServer) -> None:
    resource = new_id()
    approval = open_approval(server, resource_id=resource)
    rejected = post(server, f"/v1/approvals/{approval['id']}/reject", {"person": "kay@nowhere"})
    assert rejected.status_code == 403
    assert (
        post(server, f"/v1/approvals/{approval['id']}/reject", {"person": "mia", "comment": "no"}).json()["status"]
        == "rejected"
    )
    body = request("ann", "transaction", "enter", resource, amount=20000) | {"approval_id": approval["id"]}
    assert check(server, body)["decision"] == "needs_approval"


def test_whoever_approved_a_transaction_may_not_also_authorise_it(server: LiveServer) -> None:
    resource = new_id()
    approval = open_approval(server, resource_id=resource)
    assert check(server, request("mia", "transaction", "authorize", resource))["decision"] == "allow"
    assert post(server, f"/v1/approvals/{approval['id']}/approve", {"person": "mia"}).status_code == 200
    answer = check(server, request("mia", "transaction", "authorize", resource))
    assert answer["decision"] == "deny" and answer["rules"][0]["rule"] == "authorise_four_eyes"
    assert answer["rules"][0]["detail"] == {"history": ["mia"]}
    assert check(server, request("dan", "transaction", "authorize", resource))["decision"] == "allow"


# --- the usage ledger --------------------------------------------------------------------------------------


def test_usage_counts_towards_a_daily_limit_and_an_approval_lifts_it(server: LiveServer) -> None:
    withdraw = request("bob", "cash_box", "withdraw", "box-bob", amount=30000)
    assert check(server, withdraw)["decision"] == "allow"
    recorded = post(server, f"/v1/orgs/{ORG}/usage", {"person": "bob", "rule": "daily_cash", "amount": 30000})
    assert recorded.status_code == 201, recorded.text
    body = recorded.json()
    assert (body["person"], body["rule"], body["amount"], body["total"]) == ("bob", "daily_cash", 30000, 30000)
    assert len(body["period"]) == 10, "a day: YYYY-MM-DD in the organisation's zone"
    total = get(server, f"/v1/orgs/{ORG}/usage", person="bob", rule="daily_cash").json()
    assert total["total"] == 30000 and total["period"] == body["period"]
    answer = check(server, withdraw)
    assert answer["decision"] == "needs_approval"
    assert answer["rules"][0]["detail"]["amount"] == 60000 and answer["approvers"][0]["post"] == "manager"

    opened = post(server, "/v1/approvals", withdraw).json()
    assert opened["rules"] == ["daily_cash"]
    assert post(server, f"/v1/approvals/{opened['id']}/approve", {"person": "mia"}).status_code == 200
    assert check(server, withdraw | {"approval_id": opened["id"]})["decision"] == "allow"
    other_day = post(
        server, f"/v1/orgs/{ORG}/usage", {"person": "bob", "rule": "daily_cash", "amount": 10, "at": "2020-03-01T10:00"}
    )
    assert other_day.json()["period"] == "2020-03-01" and other_day.json()["total"] == 10


@pytest.mark.parametrize(
    ("org", "body", "status", "fragment"),
    [
        (ORG, {"person": "bob", "rule": "daily_cash"}, 400, "`amount`"),
        (ORG, {"person": "bob", "rule": "daily_cash", "amount": "lots"}, 400, "amount: must be a JSON number"),
        (ORG, {"person": "bob", "rule": "daily_cash", "amount": 5, "at": "soon"}, 400, "at:"),
        (ORG, {"person": "bob", "rule": "entry_limit", "amount": 5}, 400, "rule:"),
        (ORG, {"person": "bob", "rule": "no_such_rule", "amount": 5}, 404, "no_such_rule"),
        (ORG, {"person": "nobody", "rule": "daily_cash", "amount": 5}, 404, "nobody"),
        ("nowhere", {"person": "bob", "rule": "daily_cash", "amount": 5}, 404, "nowhere"),
    ],
)
def test_bad_usage_is_refused_naming_what_is_wrong(
    server: LiveServer, org: str, body: dict, status: int, fragment: str
) -> None:
    response = post(server, f"/v1/orgs/{org}/usage", body)
    assert response.status_code == status and fragment in response.json()["message"], response.text


# --- obligations -------------------------------------------------------------------------------------------


def test_an_allowed_decision_that_notifies_puts_the_notification_in_the_outbox(server: LiveServer) -> None:
    answer = check(server, request("ann", "cash_box", "count", "box-ann", discrepancy=-100))
    assert answer["decision"] == "allow" and answer["obligations"] == [{"notify": "manager", "instead_of": None}]

    def written() -> list[dict]:
        items = get(server, "/v1/notifications", organisation=ORG, post="manager", limit=1000).json()["items"]
        return [n for n in items if n["subject_id"] == answer["decision_id"]]

    [notification] = eventually(written)
    assert notification["kind"] == "obligation" and notification["people"] == ["mia", "kay", "rob"]
    assert "长短款" in notification["message"]["zh"] and "ann" in notification["message"]["en"]
    assert get(server, "/v1/notifications", since="not a time").status_code == 400


# --- simulated decisions (issue 12, item 11) -----------------------------------------------------------------


def test_a_simulated_decision_is_logged_marked_and_left_out_of_the_log_unless_asked_for(server: LiveServer) -> None:
    simulated = check(server, request("ann", "cash_box", "count", "box-sim", discrepancy=-100) | {"simulated": True})
    real = check(server, request("ann", "cash_box", "count", "box-real", discrepancy=-100))
    # The same answer a real check gets, obligations included: only its effects are withheld.
    assert simulated["decision"] == real["decision"] == "allow"
    assert simulated["obligations"] == real["obligations"] == [{"notify": "manager", "instead_of": None}]

    def listed(**params: Any) -> dict[str, dict]:
        items = get(server, "/v1/decisions", organisation=ORG, limit=1000, **params).json()["items"]
        return {d["decision_id"]: d for d in items}

    eventually(lambda: real["decision_id"] in listed() and simulated["decision_id"] in listed(simulated="include"))
    assert simulated["decision_id"] not in listed(), "a simulated decision is left out by default"
    assert listed(simulated="include")[simulated["decision_id"]]["simulated"] is True
    assert listed(simulated="include")[real["decision_id"]]["simulated"] is False
    only = listed(simulated="only")
    assert simulated["decision_id"] in only and real["decision_id"] not in only
    assert get(server, "/v1/decisions", simulated="sometimes").status_code == 400

    # It notified nobody: the real decision's notification is written, the simulated one's never is.
    def notified() -> set[str]:
        items = get(server, "/v1/notifications", organisation=ORG, post="manager", limit=1000).json()["items"]
        return {n["subject_id"] for n in items}

    eventually(lambda: real["decision_id"] in notified())
    assert simulated["decision_id"] not in notified()


def test_a_simulated_check_cannot_present_an_approval(server: LiveServer) -> None:
    body = request("ann", "transaction", "enter", "sim-1", amount=20000) | {"approval_id": "apv_x", "simulated": True}
    response = post(server, "/v1/check", body)
    assert response.status_code == 400 and "approval_id" in response.json()["message"], response.text


def test_the_console_decision_log_marks_simulated_decisions_and_leaves_them_out_by_default(
    server: LiveServer, root: Client
) -> None:
    simulated = check(server, request("ann", "cash_box", "count", "box-sim2", discrepancy=0) | {"simulated": True})

    def listed(**params: Any) -> dict[str, dict]:
        response = root.get(f"/admin/orgs/{ORG}/decisions", params={"limit": 1000, **params})
        assert response.status_code == 200, response.text
        return {d["decision_id"]: d for d in response.json()["items"]}

    eventually(lambda: simulated["decision_id"] in listed(simulated="include"))
    assert simulated["decision_id"] not in listed()
    assert listed(simulated="only")[simulated["decision_id"]]["simulated"] is True
