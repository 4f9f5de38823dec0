"""The console's home page and header over real HTTP, on SQLite and PostgreSQL (issue 14): an organisation's
overview (policy state, what waits, vacancies, headcount breaches, acting windows this week in its time zone), the
search box, and one decision or audit entry in full."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.api.admin_client import Client, create_admin, token_for
from tests.conftest import REPO, _backends, fresh_database
from tests.live import LiveServer

ORG = "sales_company"
SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass
class Home:
    server: LiveServer
    root: Client
    hr: Client
    auditor: Client
    hr_hotel: Client


@pytest.fixture(scope="module", params=_backends())
def home(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    with fresh_database(request.param, tmp_path_factory.mktemp("db")) as url:
        root_token = create_admin(url)
        server = LiveServer(url, seed_dir=str(REPO / "policies"))
        try:
            server.wait_ready()
            root = Client(server, root_token)
            yield Home(
                server,
                root,
                Client(server, token_for(root, "hr_sales", ["admin"], [{"role": "hr_admin", "organisation": ORG}])),
                Client(server, token_for(root, "audrey", ["admin"], [{"role": "auditor", "organisation": ORG}])),
                Client(server, token_for(root, "hr_hotel", ["admin"], [{"role": "hr_admin", "organisation": "hotel"}])),
            )
        finally:
            server.stop()


def _person(ident: str, zh: str, en: str, *assignments: dict[str, Any]) -> dict[str, Any]:
    return {"id": ident, "name": {"zh": zh, "en": en}, "assignments": list(assignments)}


def _created(client: Client, collection: str, body: dict[str, Any]) -> None:
    answer = client.post(f"/admin/orgs/{ORG}/{collection}", json={**body, "comment": "overview test"})
    assert answer.status_code == 201, answer.text


def test_the_overview_shows_vacancies_breaches_and_this_weeks_acting_windows_in_the_organisations_zone(
    home: Home,
) -> None:
    before = home.hr.get(f"/admin/orgs/{ORG}/overview")
    assert before.status_code == 200, before.text
    seeded = before.json()
    assert seeded["timezone"] == "Asia/Shanghai" and seeded["at"].endswith("+08:00"), seeded["at"]
    assert seeded["policy"]["revision"] >= 1 and seeded["policy"]["rule_packs"] >= 0
    assert seeded["waiting"] == {"approvals": 0, "cases_open": 0, "cases_escalated": 0}

    today = dt.datetime.now(SHANGHAI).date()
    monday = today - dt.timedelta(days=today.weekday())
    sunday = monday + dt.timedelta(days=6)
    assert seeded["week"] == {"start": monday.isoformat(), "end": sunday.isoformat()}

    # A post nobody holds; a fifth holder of a post with headcount four; an acting window ending this Sunday.
    _created(
        home.hr,
        "posts",
        {"id": "night_auditor", "name": {"zh": "夜审员", "en": "Night auditor"}, "department": "business_dept"},
    )
    for i in range(3):
        _created(home.hr, "people", _person(f"rep_{i}", f"销售{i}", f"Rep {i}", {"post": "sales_representative"}))
    acting = {
        "post": "senior_sales_representative",
        "kind": "acting",
        "valid_from": monday.isoformat(),
        "valid_to": sunday.isoformat(),
        "stands_in_for": "liu_yang",
    }
    _created(
        home.hr,
        "people",
        _person("stand_in", "顶岗人", "Stand In", {"post": "sales_analyst", "kind": "concurrent"}, acting),
    )

    answer = home.hr.get(f"/admin/orgs/{ORG}/overview")
    assert answer.status_code == 200, answer.text
    now = answer.json()
    assert "night_auditor" in now["vacant_posts"]
    [breach] = [b for b in now["headcount_breaches"] if b["post"] == "sales_representative"]
    assert breach["headcount"] == 4 and len(breach["holders"]) == 5, breach
    [window] = [w for w in now["acting_this_week"] if w["person"] == "stand_in"]
    assert (window["post"], window["stands_in_for"], window["starts"], window["ends"]) == (
        "senior_sales_representative",
        "liu_yang",
        True,
        True,
    )
    assert now["sod_conflicts"] == []  # a stored document cannot hold one (it is refused), checked here all the same
    last = now["policy"]["last_change"]
    assert (last["author"], last["comment"]) == ("hr_sales", "overview test")
    assert now["policy"]["revision"] == seeded["policy"]["revision"] + 5
    assert now["changes"] == {"pending": 0, "scheduled": 0, "items": []}


def test_a_scheduled_change_shows_in_the_overview_and_others_organisations_are_refused(home: Home) -> None:
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    body = {"id": "scheduled_post", "name": {"zh": "待设岗", "en": "Later post"}, "department": "business_dept"}
    answer = home.hr.post(f"/admin/orgs/{ORG}/posts", json={**body, "effective_at": later, "comment": "next month"})
    assert answer.status_code == 202, answer.text
    changes = home.root.get(f"/admin/orgs/{ORG}/overview").json()["changes"]
    assert changes["scheduled"] >= 1
    assert any(c["target"] == "posts/scheduled_post" and c["comment"] == "next month" for c in changes["items"])
    assert home.hr_hotel.get(f"/admin/orgs/{ORG}/overview").status_code == 403
    assert home.root.get("/admin/orgs/no_such_org/overview").status_code == 404


def test_search_finds_people_posts_duties_resources_and_rules_by_chinese_or_english_name_or_id(home: Home) -> None:
    def found(client: Client, q: str, **params: Any) -> list[tuple[str, str]]:
        answer = client.get(f"/admin/orgs/{ORG}/search", params={"q": q, **params})
        assert answer.status_code == 200, answer.text
        return [(hit["kind"], hit["id"]) for hit in answer.json()["items"]]

    assert ("person", "li_na") in found(home.hr, "李娜")
    assert found(home.hr, "li na")[0] == ("person", "li_na")  # an id with spaces for underscores, ranked first
    assert ("post", "sales_representative") in found(home.hr, "Sales Representative")
    assert any(kind == "duty" for kind, _ in found(home.hr, "销售"))
    seed = home.root.get(f"/admin/orgs/{ORG}").json()["document"]
    resource = seed["catalogue"]["resources"][0]
    assert ("resource", resource["id"]) in found(home.hr, resource["name"]["zh"])

    packs = home.root.get(f"/admin/orgs/{ORG}/rules").json()["items"]
    if packs:  # the seed's packs (rules/sales_company.yaml) are imported by the seed
        rule = packs[0]["pack"]["rules"][0]
        assert ("rule", rule["id"]) in found(home.hr, rule["name"]["en"])

    bounded = home.hr.get(f"/admin/orgs/{ORG}/search", params={"q": "a", "limit": 2}).json()
    assert len(bounded["items"]) == 2 and bounded["more"] is True
    for bad in ("", "   ", "x" * 101):
        refused = home.hr.get(f"/admin/orgs/{ORG}/search", params={"q": bad})
        assert refused.status_code == 400, refused.text
        [issue] = refused.json()["issues"]
        assert (issue["path"], issue["code"]) == ("q", "bad_length"), issue
    assert home.hr.get(f"/admin/orgs/{ORG}/search", params={"q": "a", "limit": 51}).status_code == 400
    assert home.hr_hotel.get(f"/admin/orgs/{ORG}/search", params={"q": "li"}).status_code == 403


def test_one_decision_is_read_in_full_by_an_auditor_and_one_audit_entry_by_those_who_read_its_organisation(
    home: Home,
) -> None:
    asked = {
        "organisation": ORG,
        "subject": {"id": "zhao_lei"},
        "resource": {"type": "sales_strategy"},
        "action": "approve",
        "at": "2026-07-05T10:00",
    }
    decided = home.root.post("/v1/check", json=asked)
    assert decided.status_code == 200, decided.text
    decision_id = decided.json()["decision_id"]
    path = f"/admin/orgs/{ORG}/decisions/{decision_id}"
    for _ in range(200):  # the log is written off the decision path, in batches
        answer = home.auditor.get(path)
        if answer.status_code != 404:
            break
        time.sleep(0.05)
    assert answer.status_code == 200, answer.text
    entry = answer.json()
    assert (entry["decision_id"], entry["subject"], entry["decision"]) == (decision_id, "zhao_lei", "allow")
    assert entry["reasons"] and entry["policy_version"] >= 1
    assert home.hr.get(path).status_code == 403, "an HR admin reads no decision log"
    assert home.auditor.get(f"/admin/orgs/hotel/decisions/{decision_id}").status_code == 403
    assert home.root.get(f"/admin/orgs/hotel/decisions/{decision_id}").status_code == 404, "not hotel's decision"

    trail = home.root.get("/admin/audit", params={"org": ORG, "limit": 1}).json()["items"]
    seq = trail[0]["seq"]
    one = home.auditor.get(f"/admin/audit/{seq}")
    assert one.status_code == 200, one.text
    assert one.json() == trail[0]
    assert home.hr_hotel.get(f"/admin/audit/{seq}").status_code == 403
    assert home.root.get("/admin/audit/999999999").status_code == 404
    unowned = [
        e for e in home.root.get("/admin/audit", params={"limit": 1000}).json()["items"] if not e["organisation"]
    ]
    assert home.auditor.get(f"/admin/audit/{unowned[0]['seq']}").status_code == 403, "sign-ins are the admins'"
