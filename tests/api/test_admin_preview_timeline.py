"""The impact preview over time (issue 12, item 4), at 宁海支行 (ninger_branch): an acting assignment for next
week, a reassignment scheduled for a later date and a window already running are previewed at every moment they
matter (now, each window start and end, the effective date), with the gains, losses and limits of each window; a
rule pack change lists each field before → after. Nothing is stored."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import httpx

from tests.api.test_admin import Admin, admin, etag_of  # admin: the module's seeded server fixture

ORG = "ninger_branch"
PATH = f"/admin/orgs/{ORG}/people/huang_wei"  # 黄伟, 综合经办柜员 (teller): 50,000 per transaction
TODAY = dt.date.today()
NEXT_WEEK = (TODAY + dt.timedelta(days=7), TODAY + dt.timedelta(days=13))


def enter(amount: float, at: str | None = None) -> dict[str, Any]:
    check: dict[str, Any] = {
        "subject": {"id": "huang_wei"},
        "resource": {"type": "transaction"},
        "action": "enter",
        "context": {"amount": amount, "currency": "CNY"},
    }
    return check | {"at": at} if at else check


def with_assignment(admin: Admin, assignment: dict[str, Any]) -> tuple[dict[str, Any], str]:
    person = admin.root.get(PATH)
    assert person.status_code == 200, person.text
    proposed = {**person.json(), "assignments": [*person.json()["assignments"], assignment]}
    proposed.pop("id", None)
    return proposed, person.headers["etag"]


def mine(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in changes if c["person"] == "huang_wei"]


def test_acting_as_lead_teller_next_week_previews_nothing_now_and_her_gains_and_200000_limit_for_that_week(
    admin: Admin,
) -> None:
    start, end = NEXT_WEEK
    acting = {
        "post": "senior_teller",
        "kind": "acting",
        "valid_from": start.isoformat(),
        "valid_to": end.isoformat(),
        "stands_in_for": "yang_li",
    }
    proposed, etag = with_assignment(admin, acting)
    during = f"{start + dt.timedelta(days=2)}T10:00:00"  # only the limit rule is looked at below
    proposed["checks"] = [enter(150000, during), enter(150000)]
    answer = admin.root.put(f"{PATH}?preview=true", etag=etag, json=proposed)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["valid"] is True, body["issues"]

    # Now: nothing changes for him (the old answer, "nobody gains or loses a permission", is right for now only).
    assert mine(body["permissions"]) == []
    # The moments: now, then the window's start and its end.
    assert len(body["moments"]) >= 3
    days = (start.isoformat(), (start - dt.timedelta(days=1)).isoformat())  # the organisation's midnight, in UTC
    assert any(m.startswith(days) for m in body["moments"][1:]), body["moments"]

    gained = [c for c in mine(body["timeline"]) if c["change"] == "gained"]
    assert gained, body["timeline"]
    for change in gained:
        assert change["until"] is not None and change["since"] < change["until"]
        assert dt.date.fromisoformat(change["since"][:10]) >= start - dt.timedelta(days=1)
        assert dt.date.fromisoformat(change["until"][:10]) <= end + dt.timedelta(days=2)
    assert not [c for c in mine(body["timeline"]) if c["change"] == "lost"], "standing in takes nothing away"

    # "Next week he may enter 150,000": his transaction limit 50,000 → 200,000 for exactly that window.
    [limit] = [c for c in mine(body["limits"]) if c["rule"] == "transaction_limit"]
    assert (limit["before"], limit["after"]) == (50000, 200000)
    assert (limit["since"], limit["until"]) == (gained[0]["since"], gained[0]["until"])

    # The checks agree: 150,000 during the week is within his limit under the proposal, not now.
    in_window, today = body["checks"]
    assert "transaction_limit" in [r["rule"] for r in in_window["current"]["rules"]], in_window
    assert "transaction_limit" not in [r["rule"] for r in in_window["proposed"]["rules"]], in_window
    assert in_window["changed"] is True
    assert [r["rule"] for r in today["current"]["rules"]] == [r["rule"] for r in today["proposed"]["rules"]]
    assert etag_of(admin.root, PATH) == etag, "a preview stores nothing"


def test_a_window_already_running_previews_the_gain_now_and_its_loss_at_the_window_end(admin: Admin) -> None:
    end = TODAY + dt.timedelta(days=3)
    acting = {
        "post": "senior_teller",
        "kind": "acting",
        "valid_from": (TODAY - dt.timedelta(days=1)).isoformat(),
        "valid_to": end.isoformat(),
        "stands_in_for": "yang_li",
    }
    proposed, etag = with_assignment(admin, acting)
    body = admin.root.put(f"{PATH}?preview=true", etag=etag, json=proposed).json()
    assert body["valid"] is True, body["issues"]
    [now] = mine(body["permissions"])
    assert now["gained"] and not now["lost"], "he holds the post already: the gains start now"
    gained = [c for c in mine(body["timeline"]) if c["change"] == "gained"]
    assert gained and all(c["since"] == body["moments"][0] and c["until"] is not None for c in gained)
    assert all(dt.date.fromisoformat(c["until"][:10]) <= end + dt.timedelta(days=2) for c in gained)
    [limit] = [c for c in mine(body["limits"]) if c["rule"] == "transaction_limit"]
    assert (limit["before"], limit["after"], limit["since"]) == (50000, 200000, body["moments"][0])


def test_a_reassignment_scheduled_for_next_month_is_previewed_from_its_date_for_good(admin: Admin) -> None:
    person = admin.root.get(PATH)
    proposed = {**person.json(), "assignments": [{"post": "senior_teller"}]}
    proposed.pop("id", None)
    effective = dt.datetime.combine(TODAY + dt.timedelta(days=30), dt.time(9), dt.UTC)
    proposed["effective_at"] = effective.isoformat()
    answer = admin.root.put(f"{PATH}?preview=true", etag=person.headers["etag"], json=proposed)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["valid"] is True, body["issues"]
    assert dt.datetime.fromisoformat(body["moments"][0]) == effective
    timeline = mine(body["timeline"])
    assert timeline, "the move's gains (and losses) are in the timeline, from the date on"
    assert all(dt.datetime.fromisoformat(c["since"]) == effective and c["until"] is None for c in timeline), timeline
    [limit] = [c for c in mine(body["limits"]) if c["rule"] == "transaction_limit"]
    assert (limit["before"], limit["after"], limit["until"]) == (50000, 200000, None)
    assert dt.datetime.fromisoformat(limit["since"]) == effective
    assert etag_of(admin.root, PATH) == person.headers["etag"], "a preview schedules nothing"


def test_an_effective_date_that_is_no_date_is_refused_naming_the_field(admin: Admin) -> None:
    person = admin.root.get(PATH)
    proposed = {**person.json(), "effective_at": "next tuesday"}
    proposed.pop("id", None)
    answer = admin.root.put(f"{PATH}?preview=true", etag=person.headers["etag"], json=proposed)
    assert answer.status_code == 400 and "effective_at" in answer.text, answer.text


def test_raising_the_integrated_tellers_limit_previews_the_field_before_and_after_and_each_teller_moved(
    admin: Admin,
) -> None:
    items = admin.root.get(f"/admin/orgs/{ORG}/rules").json()["items"]
    item = next(i for i in items if any(r["id"] == "transaction_limit" for r in i["pack"]["rules"]))
    pack = copy.deepcopy(item["pack"])
    next(r for r in pack["rules"] if r["id"] == "transaction_limit")["limits"]["teller"] = 80000
    path = f"/admin/orgs/{ORG}/rules/{item['name']}"
    answer = admin.root.put(
        f"{path}?preview=true", etag=etag_of(admin.root, path), json={**pack, "checks": [enter(60000)]}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["valid"] is True, body["issues"]
    [change] = body["rule_changes"]
    assert (change["rule"], change["field"], change["before"], change["after"]) == (
        "transaction_limit",
        "limits.teller",
        50000,
        80000,
    )
    assert change["zh"] == "transaction_limit · 综合经办柜员:50,000 → 80,000"
    assert change["en"] == "transaction_limit · Integrated Teller: 50,000 → 80,000"
    moved = {c["person"]: c for c in body["limits"] if c["rule"] == "transaction_limit"}
    assert {"huang_wei", "zhou_jing"} <= set(moved)
    assert (moved["huang_wei"]["before"], moved["huang_wei"]["after"], moved["huang_wei"]["until"]) == (
        50000,
        80000,
        None,
    )
    assert "yang_li" not in moved, "a lead teller's limit is not the field changed"
    [check] = body["checks"]
    assert "transaction_limit" in [r["rule"] for r in check["current"]["rules"]]
    assert "transaction_limit" not in [r["rule"] for r in check["proposed"]["rules"]]
    live = httpx.post(f"{admin.server.url}/v1/check", json={"organisation": ORG, **enter(60000)}).json()
    assert "transaction_limit" in [r["rule"] for r in live["rules"]], "a preview changes no live rule"
