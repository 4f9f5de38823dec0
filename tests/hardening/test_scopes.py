"""Issue 11, items 9 and 18, against a real server with DUTYLINE_REQUIRE_AUTH=true: a caller sees and acts on only
the organisations it reaches (a token: those it was issued for; a console session: those its user holds a role in
or is linked to a person of), on every route of the decision API; and nobody links themselves to a person.

The other organisation here is sales_company (it has approvals, cases and a usage ledger); the caller under test
reaches hotel only. Named organisations outside the reach are a 403; records of them found by id a 404, with the
same message as an unknown id; lists need an organisation from such a caller.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.api.admin_client import PASSWORD, Client, create_admin, token_for
from tests.conftest import _backends, fresh_database, run_cli
from tests.hardening import routes
from tests.hardening.conftest import load_content
from tests.live import LiveServer

OTHER = "sales_company"  # not reached by the caller under test
OWN = "hotel"  # reached
EXPENSE = {
    "organisation": OTHER,
    "subject": {"id": "zhao_lei"},
    "resource": {"type": "expense", "id": "exp-1"},
    "action": "submit",
    "context": {"amount": 12000, "currency": "CNY"},
}
CHECK_OTHER = {"organisation": OTHER, "subject": {"id": "li_na"}, "resource": {"type": "customer"}, "action": "contact"}
CHECK_OWN = {
    "organisation": OWN,
    "subject": {"id": "zhou_wenhua"},
    "resource": {"type": "guest_room"},
    "action": "view",
}
CASE_OTHER = {"organisation": OTHER, "type": "expense_claim_pending", "title": "exp-1 waits"}
# li_na is a person of sales_company only: AuthZEN finds her organisation by her when none is named.
EVALUATION = {
    "subject": {"type": "user", "id": "li_na"},
    "action": {"name": "contact"},
    "resource": {"type": "customer", "id": "c1"},
}
NAMED = {**EVALUATION, "context": {"organisation": OTHER}}


@dataclass
class Scoped:
    server: LiveServer
    database_url: str
    root: Client  # a system administrator's admin token: every organisation
    own: Client  # a decide token issued for hotel only
    approval: str  # a pending approval of sales_company
    case: str  # an open case of sales_company


@pytest.fixture(scope="module", params=_backends())
def scoped(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scoped]:
    with fresh_database(request.param, tmp_path_factory.mktemp("scopes")) as url:
        token = create_admin(url)
        load_content(url)
        server = LiveServer(url, extra_env={"DUTYLINE_REQUIRE_AUTH": "true"})
        try:
            server.wait_ready()
            root = Client(server, token)
            own = Client(server, token_for(root, "hotel_pms", ["decide"], [], [OWN]))
            approval = root.post("/v1/approvals", json=EXPENSE)
            assert approval.status_code == 201, approval.text
            case = root.post("/v1/cases", json=CASE_OTHER)
            assert case.status_code == 201, case.text
            for check in (CHECK_OTHER, CHECK_OWN):
                assert root.post("/v1/check", json=check).status_code == 200
            yield Scoped(server, url, root, own, approval.json()["id"], case.json()["id"])
        finally:
            server.stop()


def _state(s: Scoped) -> tuple[str, str, int, float]:
    """What any change to sales_company through the decision API would move."""
    approval = s.root.get(f"/v1/approvals/{s.approval}").json()["status"]
    case = s.root.get(f"/v1/cases/{s.case}").json()["status"]
    cases = len(s.root.get("/v1/cases", params={"organisation": OTHER}).json()["items"])
    usage = s.root.get(f"/v1/orgs/{OTHER}/usage", params={"person": "zhao_lei", "rule": "monthly_expense_limit"})
    return approval, case, cases, usage.json()["total"]


def _bodies(s: Scoped) -> dict[str, object]:
    """A body for each route that takes one, naming sales_company (or a record of it) wherever it can."""
    search = {
        "subject": {"type": "user", "id": "li_na"},
        "action": {"name": "contact"},
        "resource": {"type": "customer"},
        "context": {"organisation": OTHER},
    }
    return {
        "/access/v1/requests": _access_request(s),
        "/v1/check": CHECK_OTHER,
        "/v1/checks": {"checks": [CHECK_OWN, CHECK_OTHER]},
        "/v1/approvals": EXPENSE,
        "/v1/cases": CASE_OTHER,
        "approve": {"person": "wang_jianguo"},
        "reject": {"person": "wang_jianguo"},
        "resolve": {"person": "sun_li"},
        "usage": {"person": "zhao_lei", "rule": "monthly_expense_limit", "amount": 1},
        "evaluation": NAMED,
        "evaluations": {"evaluations": [NAMED]},
        "search/subject": {**search, "subject": {"type": "user"}, "resource": {"type": "customer", "id": "c1"}},
        "search/resource": search,
        "search/action": {**search, "resource": {"type": "customer", "id": "c1"}},
    }


def _access_request(s: Scoped) -> dict[str, object]:
    """An access request for sales_company's requestable denial: its organisation is named only inside the binding
    token, which the system administrator's evaluation was given."""
    asked = {
        "subject": {"type": "user", "id": EXPENSE["subject"]["id"]},  # type: ignore[index]
        "resource": EXPENSE["resource"],
        "action": {"name": EXPENSE["action"]},
        "context": {**EXPENSE["context"], "organisation": OTHER},  # type: ignore[dict-item]
    }
    answer = s.root.post("/access/v1/evaluation", json=asked).json()
    context = answer.get("context") or {}
    hint = context.get("access_request")
    assert answer["decision"] is False and hint, f"not a requestable denial: {answer}"
    denial = {
        "binding_token": hint["binding_token"],
        "expires_at": hint["expires_at"],
        "evaluation_id": context["evaluation_id"],
        "evaluated_at": context["evaluated_at"],
        "reason": context["reason"],
        "template": hint["template"],
    }
    return {**asked, "denial": denial}


def _body_for(bodies: dict[str, object], path: str) -> object:
    return bodies.get(path) or next((b for end, b in bodies.items() if path.endswith(end)), {})


def test_every_route_of_the_decision_api_refuses_an_organisation_the_caller_does_not_reach(scoped: Scoped) -> None:
    """Item 18, route by route from the OpenAPI document: each operation with sales_company in every place it can
    be named (path, query, body, the record it is about), by a token for hotel: 403 or 404, nothing changed."""
    values = {
        "org": OTHER,
        "org_id": OTHER,
        "approval_id": scoped.approval,
        "case_id": scoped.case,
        "person": "li_na",
        "post": "sales_representative",
    }
    bodies = _bodies(scoped)
    # a task of sales_company (opened by the system administrator): the hotel token may not read or cancel it
    opened = scoped.root.post("/access/v1/requests", json=bodies["/access/v1/requests"])
    assert opened.status_code == 202, opened.text
    values["task_id"] = opened.json()["task"]["id"]
    before = _state(scoped)
    seen = 0
    for method, template, _ in routes.operations(scoped.server.url):
        if not template.startswith(("/v1/", "/access/", "/orgs/")):
            continue
        path = routes.fill(template, values)
        query = {
            "organisation": OTHER,
            "person": "zhao_lei",
            "rule": "monthly_expense_limit",
            "resource_type": "customer",
            "action": "contact",
        }
        if method == "GET":
            response = scoped.own.get(path, params=query)
        else:
            response = scoped.own.request(method, path, json=_body_for(bodies, path))
        expected = 404 if any(f"{{{record}}}" in template for record in ("approval_id", "case_id", "task_id")) else 403
        assert response.status_code == expected, f"{method} {path}: {response.status_code} {response.text[:300]}"
        seen += 1
    assert seen >= 20, seen
    assert _state(scoped) == before, "nothing of sales_company changed"


def test_a_token_for_an_organisation_does_everything_there(scoped: Scoped) -> None:
    """The same routes for a token issued for sales_company: all answered (the guard read the body of the case
    and left it for the handler)."""
    sales = Client(scoped.server, token_for(scoped.root, f"crm_{uuid.uuid4().hex[:6]}", ["decide"], [], [OTHER]))
    assert sales.post("/v1/check", json=CHECK_OTHER).status_code == 200
    case = sales.post("/v1/cases", json={**CASE_OTHER, "title": "opened within its reach"})
    assert case.status_code == 201 and case.json()["title"] == "opened within its reach", case.text
    assert sales.get(f"/v1/approvals/{scoped.approval}").status_code == 200
    assert sales.get("/v1/approvals", params={"organisation": OTHER}).status_code == 200
    assert sales.get("/v1/decisions", params={"organisation": OTHER}).json()["items"]
    assert sales.get(f"/v1/orgs/{OTHER}/who", params={"resource": "customer", "action": "contact"}).status_code == 200
    assert sales.post("/v1/check", json=CHECK_OWN).status_code == 403
    sales.close()


def test_records_of_another_organisation_are_not_found_exactly_as_unknown_ones(scoped: Scoped) -> None:
    for kind, ident in (("approvals", scoped.approval), ("cases", scoped.case)):
        other = scoped.own.get(f"/v1/{kind}/{ident}")
        unknown = scoped.own.get(f"/v1/{kind}/no-such-{kind}")
        singular = kind.rstrip("s")
        assert (other.status_code, other.json()["message"]) == (404, f"{singular} {ident!r} not found")
        assert unknown.status_code == 404 and unknown.json()["message"] == f"{singular} 'no-such-{kind}' not found"


def test_a_scoped_caller_names_the_organisation_of_a_list_and_sees_only_it(scoped: Scoped) -> None:
    for path in ("/v1/decisions", "/v1/approvals", "/v1/cases", "/v1/notifications"):
        unnamed = scoped.own.get(path)
        assert unnamed.status_code == 400, (path, unnamed.text)
        assert [i["path"] for i in unnamed.json()["issues"]] == ["organisation"]
        assert "reaches only hotel" in unnamed.json()["message"]
        both = scoped.own.get(path, params=[("organisation", OWN), ("organisation", OTHER)])
        assert both.status_code == 403, f"{path}: each value given is checked"
        own = scoped.own.get(path, params={"organisation": OWN})
        assert own.status_code == 200, (path, own.text)
        assert {item["organisation"] for item in own.json()["items"]} <= {OWN}
    logged = scoped.own.get("/v1/decisions", params={"organisation": OWN}).json()["items"]
    assert logged and {d["organisation"] for d in logged} == {OWN}
    everyone = {d["organisation"] for d in scoped.root.get("/v1/decisions").json()["items"]}
    assert {OWN, OTHER} <= everyone, "a token for every organisation lists them all, as before"


def test_decisions_for_another_organisation_are_refused_however_it_is_named(scoped: Scoped) -> None:
    """Item 18: "a token scoped to org A deciding for org B is a 403 too", and an organisation AuthZEN would infer
    from the subject is looked for only among those reached."""
    own = scoped.own
    refused = own.post("/v1/check", json=CHECK_OTHER)
    assert refused.status_code == 403
    assert refused.json()["message"] == (
        f"organisation: {OTHER!r} is outside what token {_token_id(scoped)} may reach (hotel)"
    )
    assert own.post("/v1/check", json={**CHECK_OTHER, "as_of": "2026-01-01T00:00:00Z"}).status_code == 403
    assert own.post("/v1/checks", json={"checks": [CHECK_OWN, CHECK_OTHER]}).status_code == 403, "the whole batch"
    assert own.post("/v1/check", json={**CHECK_OTHER, "organisation": "no_such_org"}).status_code == 403
    assert own.post("/access/v1/evaluation", json=NAMED).status_code == 403
    for where in ("resource", "subject"):
        hinted = {**EVALUATION, where: {**EVALUATION[where], "properties": {"organisation": OTHER}}}
        assert own.post("/access/v1/evaluation", json=hinted).status_code == 403, where
    assert own.post(f"/orgs/{OTHER}/access/v1/evaluation", json=EVALUATION).status_code == 403
    # Named nowhere: li_na is found in no organisation the token reaches, so she is nobody it can ask about.
    assert own.post("/access/v1/evaluation", json=EVALUATION).json() == {"decision": False}
    assert scoped.root.post("/access/v1/evaluation", json=EVALUATION).json() == {"decision": True}
    # The one organisation with this resource type is not reached: no one to list.
    subject_search = {
        "subject": {"type": "user"},
        "action": {"name": "submit"},
        "resource": {"type": "expense", "id": "e"},
        "context": {"amount": 100, "currency": "CNY"},
    }  # what the expense limits read
    assert own.post("/access/v1/search/subject", json=subject_search).json()["results"] == []
    assert scoped.root.post("/access/v1/search/subject", json=subject_search).json()["results"]
    assert own.post("/v1/check", json=CHECK_OWN).status_code == 200, "its own organisation it decides in"


def _token_id(scoped: Scoped) -> str:
    token = scoped.own.http.headers["authorization"].split()[1]
    return token.split("_")[1]


def test_a_console_session_reaches_the_organisations_of_its_users_roles_and_links(scoped: Scoped) -> None:
    name = f"hr_{uuid.uuid4().hex[:6]}"
    made = scoped.root.post(
        "/admin/users",
        json={"username": name, "password": PASSWORD, "roles": [{"role": "hr_admin", "organisation": OWN}]},
    )
    assert made.status_code == 201, made.text
    console = Client(scoped.server)
    assert console.login(name).status_code == 200
    assert console.get("/v1/decisions", params={"organisation": OWN}).status_code == 200
    assert console.get("/v1/decisions", params={"organisation": OTHER}).status_code == 403
    assert console.post("/v1/check", json=CHECK_OTHER).status_code == 403
    assert console.post("/v1/cases", json=CASE_OTHER).status_code == 403
    assert console.get(f"/v1/approvals/{scoped.approval}").status_code == 404
    # Linked (by root) to a person of sales_company, the user reaches it too, from the next login.
    assert scoped.root.patch(f"/admin/users/{name}", json={"people": {OTHER: "wang_jianguo"}}).status_code == 200
    assert console.login(name).status_code == 200
    assert console.get(f"/v1/approvals/{scoped.approval}").status_code == 200
    assert console.get("/v1/decisions", params={"organisation": OTHER}).status_code == 200
    console.close()


def test_tokens_name_the_organisations_they_reach_and_only_a_system_administrator_gives_all(scoped: Scoped) -> None:
    root = scoped.root
    missing = root.post("/admin/tokens", json={"scopes": ["decide"]})
    assert missing.status_code == 400 and [i["path"] for i in missing.json()["issues"]] == ["organisations"]
    unknown = root.post("/admin/tokens", json={"scopes": ["decide"], "organisations": ["no_such_org"]})
    assert unknown.status_code == 400 and "'no_such_org' is not an organisation" in unknown.json()["message"]
    assert root.post("/admin/tokens", json={"scopes": ["decide"], "organisations": ["*", OWN]}).status_code == 400
    read_only = root.post("/admin/tokens", json={"scopes": ["read"]})
    assert read_only.status_code == 201 and read_only.json()["organisations"] == [], "a read token decides nothing"
    name = f"hr_{uuid.uuid4().hex[:6]}"
    assert (
        root.post(
            "/admin/users",
            json={"username": name, "password": PASSWORD, "roles": [{"role": "hr_admin", "organisation": OWN}]},
        ).status_code
        == 201
    )
    console = Client(scoped.server)
    assert console.login(name).status_code == 200
    everything = console.post("/admin/tokens", json={"scopes": ["decide"], "organisations": ["*"]})
    assert everything.status_code == 403 and "only a system administrator" in everything.json()["message"]
    elsewhere = console.post("/admin/tokens", json={"scopes": ["decide"], "organisations": [OTHER]})
    assert elsewhere.status_code == 403 and f"may not issue a token for {OTHER}" in elsewhere.json()["message"]
    mine = console.post("/admin/tokens", json={"scopes": ["decide"], "organisations": [OWN]})
    assert mine.status_code == 201 and mine.json()["organisations"] == [OWN]
    machine = Client(scoped.server, mine.json()["token"])
    assert machine.post("/v1/check", json=CHECK_OWN).status_code == 200
    assert machine.post("/v1/check", json=CHECK_OTHER).status_code == 403
    entry = root.get("/admin/audit", params={"actor": name, "limit": 1}).json()["items"][0]
    assert (entry["action"], entry["detail"]["organisations"]) == ("token_issued", [OWN])
    for client in (console, machine):
        client.close()


def test_the_command_line_issues_a_decide_token_only_with_its_organisations(scoped: Scoped) -> None:
    unnamed = run_cli("admin", "token", "root", "--scope", "decide", database_url=scoped.database_url)
    assert unnamed.returncode == 1 and "--org ORG" in unnamed.stderr and "--all-orgs" in unnamed.stderr
    issued = run_cli("admin", "token", "root", "--scope", "decide", "--org", OWN, database_url=scoped.database_url)
    assert issued.returncode == 0 and f"organisations {OWN}" in issued.stderr, issued.stderr
    client = Client(scoped.server, issued.stdout.strip())
    assert client.post("/v1/check", json=CHECK_OWN).status_code == 200
    assert client.post("/v1/check", json=CHECK_OTHER).status_code == 403
    client.close()


# --- item 9: nobody links themselves to a person ---------------------------------------------------------------


def _admin_session(scoped: Scoped, roles: list[dict[str, str]]) -> tuple[str, Client]:
    name = f"a_{uuid.uuid4().hex[:6]}"
    made = scoped.root.post("/admin/users", json={"username": name, "password": PASSWORD, "roles": roles})
    assert made.status_code == 201, made.text
    console = Client(scoped.server)
    assert console.login(name).status_code == 200
    return name, console


def test_a_system_administrator_cannot_link_themselves_to_an_approver_and_approve_as_them(scoped: Scoped) -> None:
    """Item 9: the system administrator links themselves to wang_jianguo (head of department) and approves a
    claim as him. Refused, with the reason; another administrator may link them, and that is audited."""
    name, admin = _admin_session(scoped, [{"role": "system_admin", "organisation": "*"}])
    linked = admin.patch(f"/admin/users/{name}", json={"people": {OTHER: "wang_jianguo"}})
    assert linked.status_code == 403 and "may not link themselves to a person" in linked.json()["message"]
    assert scoped.root.get(f"/admin/users/{name}").json()["people"] == {}, "nothing was linked"
    approve = admin.post(f"/v1/approvals/{scoped.approval}/approve", json={"comment": "fine"})
    assert approve.status_code == 403 and "linked to no person" in approve.json()["message"]
    assert scoped.root.get(f"/v1/approvals/{scoped.approval}").json()["status"] == "pending"
    with_other_fields = admin.patch(
        f"/admin/users/{name}", json={"display_name": "x", "people": {OTHER: "wang_jianguo"}}
    )
    assert with_other_fields.status_code == 403, "not in a change of other fields either"
    # Another system administrator (root) links them: allowed, audited under the organisation.
    assert scoped.root.patch(f"/admin/users/{name}", json={"people": {OTHER: "wang_jianguo"}}).status_code == 200
    entry = scoped.root.get("/admin/audit", params={"org": OTHER, "actor": "root", "limit": 1}).json()["items"][0]
    assert (entry["action"], entry["target"], entry["detail"]) == (
        "user_linked",
        f"user:{name}",
        {"person": "wang_jianguo", "previous": None},
    )
    admin.close()


def test_an_hr_administrator_links_users_to_people_of_their_organisation_only_and_never_themselves(
    scoped: Scoped,
) -> None:
    hr_name, hr = _admin_session(scoped, [{"role": "hr_admin", "organisation": OWN}])
    clerk_name, clerk = _admin_session(scoped, [])
    ok = hr.patch(f"/admin/users/{clerk_name}", json={"people": {OWN: "zhou_wenhua"}})
    assert ok.status_code == 200 and ok.json()["people"] == {OWN: "zhou_wenhua"}, ok.text
    elsewhere = hr.patch(f"/admin/users/{clerk_name}", json={"people": {OWN: "zhou_wenhua", OTHER: "li_na"}})
    assert elsewhere.status_code == 403, "linking in an organisation they do not administer"
    assert (
        hr.patch(f"/admin/users/{clerk_name}", json={"people": {OWN: "zhou_wenhua"}, "active": False}).status_code
        == 403
    )
    themselves = hr.patch(f"/admin/users/{hr_name}", json={"people": {OWN: "zhou_wenhua"}})
    assert themselves.status_code == 403 and "may not link themselves" in themselves.json()["message"]
    assert scoped.root.get(f"/admin/users/{clerk_name}").json()["people"] == {OWN: "zhou_wenhua"}
    assert scoped.root.get(f"/admin/users/{hr_name}").json()["people"] == {}
    for client in (hr, clerk):
        client.close()


def test_an_unscoped_legacy_token_reaches_its_users_organisations(scoped: Scoped) -> None:
    """A token issued before tokens had organisations (the column is empty) reaches what its user's console
    session would: here a user who is HR administrator of hotel."""
    from sqlalchemy import create_engine, update

    from dutyline.store.tables import ApiTokenRow
    from tests.conftest import _psycopg

    name = f"old_{uuid.uuid4().hex[:6]}"
    token = token_for(scoped.root, name, ["decide"], [{"role": "hr_admin", "organisation": OWN}], [OWN])
    engine = create_engine(_psycopg(scoped.database_url))
    try:
        with engine.begin() as connection:
            connection.execute(
                update(ApiTokenRow).where(ApiTokenRow.id == token.split("_")[1]).values(organisations=None)
            )
    finally:
        engine.dispose()
    legacy = Client(scoped.server, token)
    assert legacy.post("/v1/check", json=CHECK_OWN).status_code == 200
    assert legacy.post("/v1/check", json=CHECK_OTHER).status_code == 403
    listed = [t for t in scoped.root.get("/admin/tokens").json()["items"] if t["id"] == token.split("_")[1]]
    assert listed[0]["organisations"] is None
    legacy.close()
