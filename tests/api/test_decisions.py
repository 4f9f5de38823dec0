"""Decisions over real HTTP: AuthZEN evaluation and batches, /v1/check, queries, the decision log, operations."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import REPO, run_cli
from tests.live import LiveServer

INSIDE = "2026-07-05T10:00:00+08:00"  # zhao_lei acts as department head 2026-07-01 … 07-14


def evaluation(subject: str, action: str, resource: str, **context: object) -> dict:
    body: dict = {
        "subject": {"type": "user", "id": subject},
        "action": {"name": action},
        "resource": {"type": resource, "id": "r1"},
    }
    if context:
        body["context"] = context
    return body


def post(server: LiveServer, path: str, body: object, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body, timeout=10, **kwargs)  # type: ignore[arg-type]


# --- AuthZEN evaluation -------------------------------------------------------------------------------


def test_an_acting_holder_is_allowed_inside_the_window_and_denied_after(api_server: LiveServer) -> None:
    inside = post(api_server, "/access/v1/evaluation", evaluation("zhao_lei", "approve", "sales_strategy", time=INSIDE))
    after = post(
        api_server,
        "/access/v1/evaluation",
        evaluation("zhao_lei", "approve", "sales_strategy", time="2026-08-01T10:00:00+08:00"),
    )
    assert (inside.status_code, inside.json()) == (200, {"decision": True})
    assert (after.status_code, after.json()) == (200, {"decision": False})


def test_reasons_in_chinese_and_english_when_asked(api_server: LiveServer) -> None:
    response = post(
        api_server, "/access/v1/evaluation?explain=true", evaluation("zhao_lei", "approve", "budget", time=INSIDE)
    )
    body = response.json()
    assert body["decision"] is False
    assert "销售人员不得审批销售预算" in body["context"]["reason_admin"]["zh"]
    assert "forbids" in body["context"]["reason_admin"]["en"]
    detail = body["context"]["dutyline"]
    assert detail["organisation"] == "sales_company" and detail["code"] == "denied_by_duty"
    assert detail["reasons"][0]["duty"]["number"] == "3" and detail["policy_version"] >= 7


def test_the_organisation_can_be_named_in_the_path(api_server: LiveServer) -> None:
    body = evaluation("li_na", "contact", "customer")
    assert post(api_server, "/orgs/sales_company/access/v1/evaluation", body).json() == {"decision": True}
    assert post(api_server, "/orgs/hotel/access/v1/evaluation", body).json() == {"decision": False}


def test_a_subject_may_be_a_post(api_server: LiveServer) -> None:
    body = {
        "subject": {"type": "post", "id": "sales_analyst"},
        "action": {"name": "report"},
        "resource": {"type": "sales_data", "id": "q3"},
    }
    assert post(api_server, "/orgs/sales_company/access/v1/evaluation", body).json() == {"decision": True}


def test_unknown_fields_are_ignored_and_x_request_id_is_echoed(api_server: LiveServer) -> None:
    body = evaluation("li_na", "contact", "customer")
    body["subject"]["_note"] = "ignored"
    body["extra"] = {"anything": 1}
    response = post(api_server, "/access/v1/evaluation", body, headers={"X-Request-ID": "req-42"})
    assert response.json() == {"decision": True}
    assert response.headers["x-request-id"] == "req-42"


@pytest.mark.parametrize(
    ("content", "content_type", "fragment"),
    [
        (
            b'{"subject": {"type": "user"}, "action": {"name": "a"}, "resource": {"type": "t", "id": "1"}}',
            "application/json",
            "`id`",
        ),
        (
            b'{"subject": {"type": "user", "id": 7}, "action": {"name": "a"}, "resource": {"type": "t", "id": "1"}}',
            "application/json",
            "$.subject.id",
        ),
        (
            b'{"subject": {"type": "user", "id": "x"}, "resource": {"type": "t", "id": "1"}}',
            "application/json",
            "`action`",
        ),
        (b"{not json", "application/json", "malformed JSON"),
        (b"subject=x", "application/x-www-form-urlencoded", "Content-Type must be application/json"),
        (b"[1, 2]", "application/json", "Expected `object`"),
    ],
    ids=["missing-id", "wrong-type", "missing-action", "malformed", "form", "array"],
)
def test_bad_requests_get_400_with_a_message_naming_the_problem(
    api_server: LiveServer, content: bytes, content_type: str, fragment: str
) -> None:
    response = httpx.post(
        f"{api_server.url}/access/v1/evaluation", content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code == 400
    assert fragment in response.json()["message"]


def test_a_subject_known_in_several_organisations_needs_one_named(seeded_server: LiveServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    copy = tmp_path / "sales_copy.yaml"
    text = (REPO / "policies" / "orgs" / "sales_company.yaml").read_text(encoding="utf-8")
    copy.write_text(text.replace("id: sales_company", "id: sales_company_copy", 1), encoding="utf-8")
    _wait_for_version(seeded_server, _import(seeded_server, copy))
    ambiguous = post(seeded_server, "/access/v1/evaluation", evaluation("li_na", "contact", "customer"))
    assert ambiguous.status_code == 400 and "context.organisation" in ambiguous.json()["message"]
    named = post(
        seeded_server, "/access/v1/evaluation", evaluation("li_na", "contact", "customer", organisation="sales_company")
    )
    assert named.json() == {"decision": True}


# --- AuthZEN batches ---------------------------------------------------------------------------------


def test_batch_items_replace_defaults_and_stay_in_order(api_server: LiveServer) -> None:
    body = {
        "subject": {"type": "user", "id": "li_na"},
        "action": {"name": "contact"},
        "resource": {"type": "customer", "id": "c1"},
        "evaluations": [
            {},
            {"action": {"name": "approve"}, "resource": {"type": "budget", "id": "b1"}},
            {
                "subject": {"type": "user", "id": "wang_jianguo"},
                "action": {"name": "approve"},
                "resource": {"type": "budget", "id": "b1"},
            },
        ],
    }
    response = post(api_server, "/orgs/sales_company/access/v1/evaluations", body)
    assert response.json() == {"evaluations": [{"decision": True}, {"decision": False}, {"decision": True}]}


def test_batch_semantics_stop_where_asked(api_server: LiveServer) -> None:
    items = [{"action": {"name": "contact"}}, {"action": {"name": "approve"}}, {"action": {"name": "view"}}]
    base = {
        "subject": {"type": "user", "id": "li_na"},
        "resource": {"type": "customer", "id": "c1"},
        "evaluations": items,
    }
    deny_first = post(
        api_server,
        "/orgs/sales_company/access/v1/evaluations",
        {**base, "options": {"evaluations_semantic": "deny_on_first_deny"}},
    )
    permit_first = post(
        api_server,
        "/orgs/sales_company/access/v1/evaluations",
        {**base, "options": {"evaluations_semantic": "permit_on_first_permit"}},
    )
    everything = post(api_server, "/orgs/sales_company/access/v1/evaluations", base)
    assert deny_first.json() == {"evaluations": [{"decision": True}, {"decision": False}]}
    assert permit_first.json() == {"evaluations": [{"decision": True}]}
    assert len(everything.json()["evaluations"]) == 3


def test_an_error_in_one_item_is_that_items_deny(api_server: LiveServer) -> None:
    body = {
        "subject": {"type": "user", "id": "li_na"},
        "resource": {"type": "customer", "id": "c1"},
        "evaluations": [{"action": {"name": "contact"}}, {"action": {"nom": "contact"}}, {}],
    }
    results = post(api_server, "/orgs/sales_company/access/v1/evaluations", body).json()["evaluations"]
    assert results[0] == {"decision": True}
    assert results[1]["decision"] is False and "evaluations[1].action" in results[1]["context"]["error"]["message"]
    assert results[2]["decision"] is False and "action is missing" in results[2]["context"]["error"]["message"]


def test_a_batch_without_evaluations_is_a_single_evaluation(api_server: LiveServer) -> None:
    response = post(api_server, "/orgs/sales_company/access/v1/evaluations", evaluation("li_na", "contact", "customer"))
    assert response.json() == {"decision": True}


def test_batches_over_the_limit_are_refused(api_server: LiveServer) -> None:
    body = {**evaluation("li_na", "contact", "customer"), "evaluations": [{}] * 1001}
    response = post(api_server, "/access/v1/evaluations", body)
    assert response.status_code == 400 and "at most 1000" in response.json()["message"]


# --- AuthZEN search and metadata -----------------------------------------------------------------------


def test_search_subject_resource_and_action(api_server: LiveServer) -> None:
    ask = {"subject": {"type": "user"}, "action": {"name": "approve"}, "resource": {"type": "expense", "id": "e1"}}
    context = {"amount": 3000, "currency": "CNY", "requester": "li_na", "budget_remaining": 100000}
    subjects = post(api_server, "/orgs/sales_company/access/v1/search/subject", {**ask, "context": context}).json()
    assert sorted(r["id"] for r in subjects["results"]) == ["liu_yang", "wang_jianguo"]
    assert subjects["page"]["next_token"] == ""
    # without the amount, the requester and the budget the rules cannot be read, and evaluation denies (fail
    # closed): nobody is listed
    assert post(api_server, "/orgs/sales_company/access/v1/search/subject", ask).json()["results"] == []
    actions = post(
        api_server,
        "/orgs/sales_company/access/v1/search/action",
        {"subject": {"type": "user", "id": "li_na"}, "resource": {"type": "customer", "id": "c1"}},
    ).json()
    assert sorted(r["name"] for r in actions["results"]) == ["contact", "edit", "view"]
    unknown = post(
        api_server,
        "/orgs/sales_company/access/v1/search/resource",
        {"subject": {"type": "user", "id": "nobody"}, "action": {"name": "view"}, "resource": {"type": "ghost"}},
    )
    assert unknown.json()["results"] == []


def test_search_pages_with_tokens(api_server: LiveServer) -> None:
    request = {"subject": {"type": "user"}, "action": {"name": "view"}, "resource": {"type": "regulation", "id": "r"}}
    seen: list[str] = []
    token = None
    for _ in range(20):
        body = {**request, "page": {"limit": 5, **({"token": token} if token else {})}}
        page = post(api_server, "/orgs/ninger_branch/access/v1/search/subject", body).json()
        seen += [r["id"] for r in page["results"]]
        token = page["page"]["next_token"]
        if not token:
            break
    everyone = post(
        api_server, "/orgs/ninger_branch/access/v1/search/subject", {**request, "page": {"limit": 1000}}
    ).json()
    assert seen == [r["id"] for r in everyone["results"]] and len(seen) > 5


def test_well_known_configuration(api_server: LiveServer) -> None:
    root = httpx.get(f"{api_server.url}/.well-known/authzen-configuration").json()
    assert root["policy_decision_point"] == api_server.url
    assert root["access_evaluation_endpoint"] == f"{api_server.url}/access/v1/evaluation"
    tenant = httpx.get(f"{api_server.url}/.well-known/authzen-configuration/hotel").json()
    assert tenant["search_action_endpoint"] == f"{api_server.url}/orgs/hotel/access/v1/search/action"
    assert httpx.get(f"{api_server.url}/.well-known/authzen-configuration/nowhere").status_code == 404


# --- /v1/check ---------------------------------------------------------------------------------------


def check(subject: str, resource: str, action: str, org: str = "sales_company", **extra: object) -> dict:
    return {"organisation": org, "subject": {"id": subject}, "resource": {"type": resource}, "action": action, **extra}


def test_check_explains_the_post_window_and_duty(api_server: LiveServer) -> None:
    body = post(api_server, "/v1/check", check("zhao_lei", "sales_strategy", "approve", at="2026-07-05T10:00")).json()
    assert body["decision"] == "allow"
    [reason] = body["reasons"]
    assert (reason["post"], reason["acting"], reason["valid_from"], reason["valid_to"]) == (
        "department_head",
        True,
        "2026-07-01",
        "2026-07-14",
    )
    assert reason["duty"]["number"] == "1" and reason["duty"]["text"].startswith("销售策略制定")
    assert body["decision_id"] and body["policy_version"] >= 7


def test_check_says_why_nothing_granted(api_server: LiveServer) -> None:
    body = post(api_server, "/v1/check", check("chen_jing", "customer", "edit")).json()
    assert (body["decision"], body["code"]) == ("deny", "no_grant")
    assert "no duty" in body["reasons"][0]["en"]


@pytest.mark.parametrize(
    "org",
    ["ninger_branch", "water_utility", "restaurant", "hotel", "logistics", "securities_branch", "sales_company"],
)
def test_check_works_on_every_seed_organisation(api_server: LiveServer, org: str) -> None:
    assert httpx.get(f"{api_server.url}/v1/orgs/{org}/who", params={"resource": "x", "action": "y"}).status_code == 400
    # every allowed rule case of the organisation (a request with its time and context) is allowed over HTTP too
    from dutyline.services import sources

    table = next(data for data, _ in sources.load([REPO / "rules" / "tests"]).rule_tables if data["org"] == org)
    cases = [c for c in table["cases"] if c["expect"]["decision"] == "allow" and not c.get("facts")]
    assert cases
    for case in cases:
        request = case["request"]
        body = check(
            request["person"],
            request["resource"],
            request["action"],
            org=org,
            at=request.get("at"),
            context=request.get("context"),
        )
        if "resource_id" in request:
            body["resource"]["id"] = request["resource_id"]
        if request.get("resource_properties"):
            body["resource"]["properties"] = request["resource_properties"]
        answer = post(api_server, "/v1/check", body).json()
        assert answer["decision"] == "allow", (case["name"], answer)
    person = cases[0]["request"]["person"]
    permissions = httpx.get(
        f"{api_server.url}/v1/orgs/{org}/people/{person}/permissions", params={"at": cases[0]["request"].get("at")}
    ).json()
    assert any(p["resource"] == cases[0]["request"]["resource"] for p in permissions["permissions"])


def test_checks_in_a_batch_are_answered_one_by_one(api_server: LiveServer) -> None:
    body = {
        "checks": [
            check("li_na", "customer", "contact"),
            {"organisation": "sales_company"},
            check("li_na", "budget", "approve"),
        ]
    }
    results = post(api_server, "/v1/checks", body).json()["results"]
    assert [r["decision"] for r in results] == ["allow", "error", "deny"]
    assert "checks[1]" in results[1]["error"]["message"]


def test_a_version_this_server_has_not_reached_gives_503_after_a_bounded_wait(api_server: LiveServer) -> None:
    started = time.monotonic()
    response = post(api_server, "/v1/check", check("li_na", "customer", "contact", at_least_version=10**9))
    assert response.status_code == 503 and "not applied here yet" in response.json()["message"]
    assert time.monotonic() - started < 5


def test_a_version_no_server_can_reach_is_invalid_at_once(api_server: LiveServer) -> None:
    """Versions are 32-bit: a larger one is a 400, not a wait and a 503 (the fuzz test sent 2.3e19)."""
    for path, body in (("/v1/check", check("li_na", "customer", "contact")), ("/v1/checks", {"checks": []})):
        response = post(api_server, path, {**body, "at_least_version": 2**31})
        assert response.status_code == 400 and "at_least_version" in response.json()["message"], response.text


def test_a_change_is_seen_by_a_check_that_asks_for_its_version(api_server: LiveServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    changed = tmp_path / "sales.yaml"
    text = (REPO / "policies" / "orgs" / "sales_company.yaml").read_text(encoding="utf-8")
    changed.write_text(
        text.replace("      - {post: sales_analyst}", "      - {post: department_head, kind: concurrent}"),
        encoding="utf-8",
    )
    version = _import(api_server, changed)
    body = post(api_server, "/v1/check", check("chen_jing", "budget", "approve", at_least_version=version)).json()
    assert body["decision"] == "allow" and body["policy_version"] >= version


# --- queries -----------------------------------------------------------------------------------------


def test_who_may_do_something_lists_people_and_posts(api_server: LiveServer) -> None:
    body = httpx.get(
        f"{api_server.url}/v1/orgs/sales_company/who",
        params={"resource": "sales_strategy", "action": "approve", "at": "2026-07-05T10:00"},
    ).json()
    people = {p["id"]: p for p in body["people"]}
    assert "zhao_lei" in people and "wang_jianguo" in people
    assert {
        "post": "department_head",
        "kind": "acting",
        "valid_from": "2026-07-01",
        "valid_to": "2026-07-14",
    } in people["zhao_lei"]["posts"]
    assert [p["id"] for p in body["posts"]] == ["department_head"]


def test_what_a_person_may_do_at_a_moment(api_server: LiveServer) -> None:
    url = f"{api_server.url}/v1/orgs/sales_company/people/zhao_lei/permissions"
    inside = {(p["resource"], p["action"]) for p in httpx.get(url, params={"at": "2026-07-05"}).json()["permissions"]}
    after = {(p["resource"], p["action"]) for p in httpx.get(url, params={"at": "2026-08-05"}).json()["permissions"]}
    assert ("sales_strategy", "approve") in inside - after
    assert ("budget", "approve") not in inside, "the representative's deny removes it"
    assert httpx.get(f"{api_server.url}/v1/orgs/sales_company/people/nobody/permissions").status_code == 404
    assert httpx.get(url, params={"at": "yesterday"}).status_code == 400


def test_the_reporting_line_leads_up_with_holders_and_vacancies(api_server: LiveServer) -> None:
    body = httpx.get(f"{api_server.url}/v1/orgs/ninger_branch/posts/teller/reporting-line").json()
    posts = [step["post"] for step in body["line"]]
    assert posts and posts[-1] == "director"
    assert all(step["holders"] or step["vacant"] for step in body["line"])
    assert httpx.get(f"{api_server.url}/v1/orgs/ninger_branch/posts/nope/reporting-line").status_code == 404
    assert httpx.get(f"{api_server.url}/v1/orgs/nowhere/posts/x/reporting-line").status_code == 404


# --- decision log and operations --------------------------------------------------------------------


def test_decisions_are_logged_and_can_be_queried_with_filters_and_pages(api_server: LiveServer) -> None:
    for i in range(5):
        post(api_server, "/v1/check", check("chen_jing", "sales_data", "analyse"), headers={"X-Request-ID": f"log-{i}"})
    post(api_server, "/v1/check", check("chen_jing", "customer", "edit"))
    deadline = time.monotonic() + 10
    items: list = []
    while time.monotonic() < deadline:
        items = httpx.get(
            f"{api_server.url}/v1/decisions", params={"subject": "chen_jing", "action": "analyse", "outcome": "allow"}
        ).json()["items"]
        if len(items) >= 5:
            break
        time.sleep(0.2)
    assert len(items) == 5 and all(i["resource_type"] == "sales_data" for i in items)
    assert items[0]["reasons"] and all(r["post"] and r["duty"]["number"] for r in items[0]["reasons"])
    assert {i["request_id"] for i in items} == {f"log-{i}" for i in range(5)}
    first = httpx.get(f"{api_server.url}/v1/decisions", params={"subject": "chen_jing", "limit": 4}).json()
    second = httpx.get(
        f"{api_server.url}/v1/decisions", params={"subject": "chen_jing", "limit": 4, "page_token": first["next_token"]}
    ).json()
    assert len(first["items"]) == 4 and first["next_token"] and second["next_token"] == ""
    assert not {i["decision_id"] for i in first["items"]} & {i["decision_id"] for i in second["items"]}
    assert httpx.get(f"{api_server.url}/v1/decisions", params={"since": "not a time"}).status_code == 400
    assert httpx.get(f"{api_server.url}/v1/decisions", params={"page_token": "garbage!"}).status_code == 400


def test_metrics_readiness_and_openapi(api_server: LiveServer) -> None:
    post(api_server, "/v1/check", check("li_na", "customer", "contact"))
    metrics = httpx.get(f"{api_server.url}/metrics").text
    assert 'dutyline_decisions_total{result="allow"}' in metrics
    assert "dutyline_decision_seconds_bucket" in metrics and "dutyline_policy_version" in metrics
    assert "dutyline_decision_log_queue_depth" in metrics
    assert httpx.get(f"{api_server.url}/readyz").status_code == 200
    schema = httpx.get(f"{api_server.url}/schema/openapi.json").json()
    assert "/access/v1/evaluation" in schema["paths"] and "/v1/check" in schema["paths"]


def _import(server: LiveServer, path) -> int:  # type: ignore[no-untyped-def]
    result = run_cli("import", str(path), database_url=server.database_url, check=True)
    return int(result.stdout.strip().rsplit("version ", 1)[1].rstrip(")"))


def _wait_for_version(server: LiveServer, version: int) -> None:
    deadline = time.monotonic() + 10
    while httpx.get(f"{server.url}/healthz").json()["policy_version"] < version:
        assert time.monotonic() < deadline, "the server did not pick up the change"
        time.sleep(0.1)


# --- business rules over HTTP ------------------------------------------------------------------------


def test_a_check_above_a_limit_needs_approval_and_names_the_rule_and_approvers(api_server: LiveServer) -> None:
    context = {"amount": 20000, "currency": "CNY", "requester": "li_na"}
    body = post(
        api_server, "/v1/check", check("liu_yang", "expense", "approve", at="2026-07-06T10:00", context=context)
    ).json()
    assert body["decision"] == "needs_approval"
    assert [r["rule"] for r in body["rules"]] == ["expense_approval_limit"]
    assert body["approvers"] and body["approvers"][0]["post"] == "department_head"
    assert "wang_jianguo" in body["approvers"][0]["people"]
    assert any(r["code"] == "rule_needs_approval" and r["zh"] and r["en"] for r in body["reasons"])
    # the same through AuthZEN is not a permit, and the explanation says why
    authzen = post(
        api_server,
        "/orgs/sales_company/access/v1/evaluation?explain=true",
        {
            "subject": {"type": "user", "id": "liu_yang"},
            "action": {"name": "approve"},
            "resource": {"type": "expense", "id": "e1"},
            "context": {**context, "time": "2026-07-06T10:00:00+08:00"},
        },
    ).json()
    assert authzen["decision"] is False and authzen["context"]["dutyline"]["outcome"] == "needs_approval"


def test_a_rule_deny_over_http_names_the_rule(api_server: LiveServer) -> None:
    context = {"amount": 100, "currency": "CNY", "requester": "liu_yang"}
    body = post(
        api_server, "/v1/check", check("liu_yang", "expense", "approve", at="2026-07-06T10:00", context=context)
    ).json()
    assert body["decision"] == "deny"
    assert "expense_self_approval" in [r["rule"] for r in body["rules"]]


def test_who_may_and_what_a_person_may_as_of_a_past_moment(api_server: LiveServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    before = dt.datetime.now(dt.UTC).isoformat()
    time.sleep(1.1)
    changed = tmp_path / "hotel.yaml"
    text = (REPO / "policies" / "orgs" / "hotel.yaml").read_text(encoding="utf-8")
    people_at = text.index("\npeople:")
    people = text[people_at:]
    second = people.rindex("assignments:\n")  # the last person: not the GM, and no deny on disposal
    people = people[:second] + people[second:].replace(
        "assignments:\n", "assignments:\n      - {post: general_manager, kind: concurrent}\n", 1
    )
    changed.write_text(text[:people_at] + people, encoding="utf-8")
    version = _import(api_server, changed)
    _wait_for_version(api_server, version)
    who_now = httpx.get(f"{api_server.url}/v1/orgs/hotel/who", params={"resource": "machinery", "action": "dispose"})
    who_then = httpx.get(
        f"{api_server.url}/v1/orgs/hotel/who", params={"resource": "machinery", "action": "dispose", "as_of": before}
    )
    now_people = {p["id"] for p in who_now.json()["people"]}
    then_people = {p["id"] for p in who_then.json()["people"]}
    assert now_people - then_people, "the person given the general manager's post appears only now"
    assert who_then.json()["policy_version"] < version
    assert (
        httpx.get(
            f"{api_server.url}/v1/orgs/hotel/who",
            params={"resource": "machinery", "action": "dispose", "as_of": "1999-01-01"},
        ).status_code
        == 404
    )
    assert (
        httpx.get(
            f"{api_server.url}/v1/orgs/hotel/who",
            params={"resource": "machinery", "action": "dispose", "as_of": "soon"},
        ).status_code
        == 400
    )
