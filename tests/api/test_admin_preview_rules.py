"""The admin preview decides its checks with business rules too: the live rules now, the draft rules (a changed
pack through `?preview=true`, or draft packs given to the preview endpoint) under the proposal, in a temporary
rule host. Nothing is stored."""

from __future__ import annotations

import copy
from typing import Any

import httpx

from tests.api.test_admin import ORG, Admin, admin, etag_of

CLAIM = {
    "subject": {"id": "zhao_lei"},
    "resource": {"type": "expense"},
    "action": "submit",
    "context": {"amount": 3000, "currency": "CNY"},
}
SATURDAY = "2030-06-08T10:00:00"  # in the organisation's time zone
CONTACT = {
    "subject": {"id": "zhao_lei"},
    "resource": {"type": "customer", "id": "c-1"},
    "action": "contact",
    "at": SATURDAY,
}


def claim_pack(admin: Admin) -> tuple[str, dict[str, Any]]:
    """The stored pack holding the per-claim expense limit: its name and content."""
    items = admin.compliance.get(f"/admin/orgs/{ORG}/rules").json()["items"]
    item = next(i for i in items if any(r["id"] == "expense_claim_limit" for r in i["pack"]["rules"]))
    return item["name"], item["pack"]


def lowered(pack: dict[str, Any], limit: float) -> dict[str, Any]:
    draft = copy.deepcopy(pack)
    rule = next(r for r in draft["rules"] if r["id"] == "expense_claim_limit")
    rule["limits"]["sales_representative"] = limit
    return draft


def versions(admin: Admin) -> list[int]:
    return [v["version"] for v in admin.hr.get(f"/admin/orgs/{ORG}/versions", params={"limit": 5}).json()["items"]]


def test_a_lowered_limit_in_a_draft_pack_makes_the_claim_need_approval_under_the_proposal(admin: Admin) -> None:
    name, pack = claim_pack(admin)
    now = httpx.post(f"{admin.server.url}/v1/check", json={"organisation": ORG, **CLAIM}).json()
    assert now["decision"] == "allow", now
    before = versions(admin)
    path = f"/admin/orgs/{ORG}/rules/{name}"
    etag = etag_of(admin.compliance, path)

    # A rule pack write with ?preview=true answers its checks with the draft pack.
    answer = admin.compliance.put(f"{path}?preview=true", etag=etag, json={**lowered(pack, 2000), "checks": [CLAIM]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["valid"] is True
    [check] = body["checks"]
    assert check["current"]["decision"] == "allow" and check["current"]["rules"] == []
    assert check["proposed"]["decision"] == "needs_approval" and check["changed"] is True
    assert [r["rule"] for r in check["proposed"]["rules"]] == ["expense_claim_limit"]
    assert check["proposed"]["rules"][0]["detail"]["limit"] == 2000
    assert check["proposed"]["approvers"] and check["proposed"]["approvers"][0]["post"] == "department_head"

    # The preview endpoint, given the same draft pack beside the current document: the same answer.
    document = admin.compliance.get(f"/admin/orgs/{ORG}").json()["document"]
    same = admin.compliance.post(
        f"/admin/orgs/{ORG}/preview",
        json={"document": document, "rules": {name: lowered(pack, 2000)}, "checks": [CLAIM]},
    )
    assert same.status_code == 200, same.text
    assert same.json()["checks"] == body["checks"]

    # A draft that keeps the limit changes nothing.
    kept = admin.compliance.put(f"{path}?preview=true", etag=etag, json={**pack, "checks": [CLAIM]}).json()
    assert kept["checks"][0]["proposed"]["decision"] == "allow" and kept["checks"][0]["changed"] is False

    assert versions(admin) == before, "a preview stores no version"
    assert etag_of(admin.compliance, path) == etag, "nor changes the pack"
    again = httpx.post(f"{admin.server.url}/v1/check", json={"organisation": ORG, **CLAIM}).json()
    assert again["decision"] == "allow", "the live rules are untouched"


def test_draft_time_window_and_condition_rules_turn_allow_into_deny(admin: Admin) -> None:
    draft = {
        "name": {"zh": "草案", "en": "draft"},
        "rules": [
            {
                "kind": "time_window",
                "id": "weekday_contact",
                "name": {"zh": "工作日联系", "en": "weekday contact"},
                "applies_to": {"resources": ["customer"], "actions": ["contact"]},
                "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}],
            },
            {
                "kind": "condition",
                "id": "no_big_claims",
                "name": {"zh": "大额禁止", "en": "no big claims"},
                "applies_to": {"resources": ["expense"], "actions": ["submit"]},
                "when": "context.amount > 1000",
            },
        ],
    }
    before = versions(admin)
    document = admin.hr.get(f"/admin/orgs/{ORG}").json()["document"]
    small = {**CLAIM, "context": {"amount": 500, "currency": "CNY"}}
    answer = admin.compliance.post(
        f"/admin/orgs/{ORG}/preview",
        json={"document": document, "rules": {"draft_rules": draft}, "checks": [CONTACT, CLAIM, small]},
    )
    assert answer.status_code == 200, answer.text
    contact, claim, small_claim = answer.json()["checks"]
    assert contact["current"]["decision"] == "allow" and contact["proposed"]["decision"] == "deny"
    assert [r["rule"] for r in contact["proposed"]["rules"]] == ["weekday_contact"] and contact["changed"] is True
    assert claim["current"]["decision"] == "allow" and claim["proposed"]["decision"] == "deny"
    assert [r["rule"] for r in claim["proposed"]["rules"]] == ["no_big_claims"]
    assert small_claim["changed"] is False and small_claim["proposed"]["decision"] == "allow"

    # An invalid draft pack is reported, not decided.
    bad = copy.deepcopy(draft)
    bad["rules"][0]["applies_to"]["posts"] = ["nobody"]
    refused = admin.compliance.post(
        f"/admin/orgs/{ORG}/preview", json={"document": document, "rules": {"draft_rules": bad}, "checks": [CONTACT]}
    ).json()
    assert refused["valid"] is False and "nobody" in refused["issues"][0]["message"]
    assert versions(admin) == before, "a preview stores no version"
    assert admin.compliance.get(f"/admin/orgs/{ORG}/rules/draft_rules").status_code == 404


# --- the preview over time (issue 12, item 4) ----------------------------------------------------------------


def test_an_acting_assignment_for_next_week_previews_what_she_gains_then_and_her_limit(admin: Admin) -> None:
    """Li Na (销售代表, 5,000 per claim) stands in as head of department for a week: previewed now, nobody gains
    anything now; the preview says what she gains from the week's start until its end, and her new limit."""
    path = f"/admin/orgs/{ORG}/people/li_na"
    person = admin.hr.get(path)
    acting = {
        "post": "department_head",
        "kind": "acting",
        "valid_from": "2031-03-03",
        "valid_to": "2031-03-09",
        "stands_in_for": "wang_jianguo",
    }
    proposed = {**person.json(), "assignments": [*person.json()["assignments"], acting]}
    proposed.pop("id", None)
    answer = admin.hr.put(f"{path}?preview=true", etag=person.headers["etag"], json=proposed)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["valid"] is True
    assert all(c["person"] != "li_na" for c in body["permissions"]), "nothing changes for her now"
    assert len(body["moments"]) >= 3 and body["moments"][1].startswith("2031-03-0")

    gained = [c for c in body["timeline"] if c["person"] == "li_na" and c["change"] == "gained"]
    assert gained, body["timeline"]
    assert all(
        c["since"].startswith("2031-03-0") and c["until"] is not None and c["until"] > c["since"] for c in gained
    )
    [limit] = [c for c in body["limits"] if c["person"] == "li_na" and c["rule"] == "expense_claim_limit"]
    assert (limit["before"], limit["after"]) == (5000, 50000)
    assert limit["since"] == gained[0]["since"] and limit["until"] == gained[0]["until"]
    assert etag_of(admin.hr, path) == person.headers["etag"], "a preview stores nothing"


def test_a_rule_pack_change_previews_each_field_before_and_after_and_whose_limit_moves(admin: Admin) -> None:
    name, pack = claim_pack(admin)
    path = f"/admin/orgs/{ORG}/rules/{name}"
    answer = admin.compliance.put(
        f"{path}?preview=true", etag=etag_of(admin.compliance, path), json=lowered(pack, 8000)
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    [change] = [c for c in body["rule_changes"] if c["field"] == "limits.sales_representative"]
    assert (change["before"], change["after"]) == (5000, 8000)
    assert change["zh"] == "expense_claim_limit · 销售代表:5,000 → 8,000"
    assert change["en"].endswith("5,000 → 8,000")
    moved = {c["person"] for c in body["limits"] if c["rule"] == "expense_claim_limit"}
    assert "li_na" in moved and all(
        (c["before"], c["after"]) == (5000, 8000) for c in body["limits"] if c["person"] == "li_na"
    )
