"""Cases and the notification outbox over real HTTP, on SQLite and PostgreSQL (escalation itself:
tests/services/test_escalation.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.api.admin_client import Client
from tests.api.test_approvals import ORG, console_user, get, import_counter, post, root
from tests.live import LiveServer


@pytest.fixture(scope="module")
def server(api_server: LiveServer) -> LiveServer:
    import_counter(api_server)
    return api_server


def open_case(server: LiveServer, case_type: str = "slow", **extra: object) -> dict:
    response = post(server, "/v1/cases", {"organisation": ORG, "type": case_type, "title": "card swallowed", **extra})
    assert response.status_code == 201, response.text
    return response.json()


def test_a_case_is_assigned_to_its_types_owner_and_due_after_the_first_step(server: LiveServer) -> None:
    case = open_case(server, subject="customer-42", data={"branch": "north", "amount": 300})
    assert (case["organisation"], case["type"], case["post"], case["status"], case["step"]) == (
        ORG,
        "slow",
        "teller",
        "open",
        0,
    )
    assert case["subject"] == "customer-42" and case["data"] == {"branch": "north", "amount": 300}
    created, due = (dt.datetime.fromisoformat(case[k]) for k in ("created_at", "due_at"))
    assert due - created == dt.timedelta(days=1)
    assert [(e["kind"], e["to_post"]) for e in case["events"]] == [("opened", "teller")]
    assert get(server, f"/v1/cases/{case['id']}").json() == case
    told = [
        n
        for n in get(server, "/v1/notifications", organisation=ORG, post="teller").json()["items"]
        if n["subject_id"] == case["id"]
    ]
    assert [n["kind"] for n in told] == ["case_opened"] and told[0]["people"] == ["ann", "bob", "tom"]
    assert "card swallowed" in told[0]["message"]["zh"] and "Teller" in told[0]["message"]["en"]


def test_cases_are_listed_by_organisation_status_and_post(server: LiveServer) -> None:
    mine = open_case(server)
    listed = get(server, "/v1/cases", organisation=ORG, status="open", post="teller").json()["items"]
    assert mine["id"] in [c["id"] for c in listed]
    assert all(c["post"] == "teller" and c["status"] == "open" for c in listed)
    assert mine["id"] not in [
        c["id"] for c in get(server, "/v1/cases", organisation=ORG, post="director").json()["items"]
    ]
    assert get(server, "/v1/cases", organisation="hotel").json()["items"] == []


def test_the_owner_resolves_a_case_once(server: LiveServer) -> None:
    case = open_case(server)
    resolved = post(server, f"/v1/cases/{case['id']}/resolve", {"person": "ann", "comment": "card returned"})
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert (body["status"], body["resolved_by"], body["resolution"], body["due_at"]) == (
        "resolved",
        "ann",
        "card returned",
        None,
    )
    assert [e["kind"] for e in body["events"]] == ["opened", "resolved"]
    again = post(server, f"/v1/cases/{case['id']}/resolve", {"person": "bob"})
    assert again.status_code == 409 and "already resolved" in again.json()["message"]


def test_a_console_user_resolves_as_their_linked_person_and_as_nobody_else(server: LiveServer, root: Client) -> None:
    ann = console_user(server, root, [f"hr_admin@{ORG}"], {ORG: "ann"})
    case = open_case(server)
    other = ann.post(f"/v1/cases/{case['id']}/resolve", json={"person": "bob", "comment": "card returned"})
    assert other.status_code == 403 and other.json()["message"] == "a console user acts as their own person (ann)"
    assert get(server, f"/v1/cases/{case['id']}").json()["status"] == "open", "nothing changed"
    resolved = ann.post(f"/v1/cases/{case['id']}/resolve", json={"comment": "card returned"})
    assert resolved.status_code == 200 and resolved.json()["resolved_by"] == "ann", resolved.text
    auditor = console_user(server, root, [f"auditor@{ORG}"], {ORG: "bob"})
    refused = auditor.post(f"/v1/cases/{open_case(server)['id']}/resolve", json={})
    assert refused.status_code == 403 and "auditor" in refused.json()["message"]
    for client in (ann, auditor):
        client.close()


@pytest.mark.parametrize(
    ("person", "fragment"),
    [("mia", "holds none of the posts"), ("kay", "holds none of the posts"), ("stranger", "not a person")],
)
def test_only_a_holder_of_a_post_the_case_was_assigned_to_may_resolve_it(
    server: LiveServer, person: str, fragment: str
) -> None:
    case = open_case(server)
    response = post(server, f"/v1/cases/{case['id']}/resolve", {"person": person})
    assert response.status_code == 403 and fragment in response.json()["message"]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (
            {"organisation": ORG, "type": "parking", "title": "x"},
            400,
            "type: 'parking' is not a case type of 'test_counter' (known: complaint, slow, to_the_top)",
        ),
        ({"organisation": ORG, "type": "slow"}, 400, "`title`"),
        ({"organisation": ORG, "type": "slow", "title": ""}, 400, "$.title"),
        ({"organisation": ORG, "type": "slow", "title": "x", "data": [1]}, 400, "$.data"),
        ({"organisation": "nowhere", "type": "slow", "title": "x"}, 404, "nowhere"),
    ],
)
def test_bad_cases_are_refused_naming_what_is_wrong(server: LiveServer, body: dict, status: int, fragment: str) -> None:
    response = post(server, "/v1/cases", body)
    assert response.status_code == status and fragment in response.json()["message"], response.text


def test_unknown_cases_and_bad_filters(server: LiveServer) -> None:
    assert get(server, "/v1/cases/case_nope").status_code == 404
    assert post(server, "/v1/cases/case_nope/resolve", {"person": "ann"}).status_code == 404
    missing = post(server, f"/v1/cases/{open_case(server)['id']}/resolve", {})
    assert missing.status_code == 400 and "`person`" in missing.json()["message"]
    bad = get(server, "/v1/cases", status="lost")
    assert bad.status_code == 400 and "status" in bad.json()["message"]


def test_notifications_are_listed_oldest_first_and_paged_by_id(server: LiveServer) -> None:
    first, second = open_case(server), open_case(server)
    items = get(server, "/v1/notifications", organisation=ORG, post="teller", limit=1000).json()["items"]
    ids = [n["id"] for n in items]
    assert ids == sorted(ids)
    mine = [n for n in items if n["subject_id"] in (first["id"], second["id"])]
    assert [n["subject_id"] for n in mine] == [first["id"], second["id"]]
    after = get(server, "/v1/notifications", organisation=ORG, after_id=mine[0]["id"]).json()["items"]
    assert [n["subject_id"] for n in after] == [second["id"]]
    since = get(server, "/v1/notifications", organisation=ORG, since=mine[1]["created_at"]).json()["items"]
    assert second["id"] in [n["subject_id"] for n in since]
