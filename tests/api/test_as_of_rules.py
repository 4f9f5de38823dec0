"""Point-in-time checks over real HTTP, on SQLite and PostgreSQL: `as_of` decides with the rule packs in force at
that moment, not the current ones, and says which pack versions decided."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.admin_client import Client, create_admin, token_for
from tests.conftest import REPO, LiveServer, _backends, fresh_database

ORG = "sales_company"


@dataclass
class Admins:
    server: LiveServer
    hr: Client  # hr_admin of sales_company
    compliance: Client  # compliance_officer of sales_company


@pytest.fixture(scope="module", params=_backends())
def admins(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Admins]:
    with fresh_database(request.param, tmp_path_factory.mktemp("db")) as url:
        root_token = create_admin(url)
        server = LiveServer(url, seed_dir=str(REPO / "policies"))
        try:
            server.wait_ready()
            root = Client(server, root_token)
            hr = token_for(root, "hr_sales", ["admin"], [{"role": "hr_admin", "organisation": ORG}])
            compliance = token_for(root, "carl", ["admin"], [{"role": "compliance_officer", "organisation": ORG}])
            yield Admins(server, Client(server, hr), Client(server, compliance))
        finally:
            server.stop()


def budget_cap(post: str, limit: int) -> dict[str, Any]:
    """A rule pack with one rule: drafting a budget above `limit` (context.amount) needs approval for `post`."""
    rule = {
        "kind": "limit",
        "id": "budget_cap",
        "name": {"zh": "预算上限", "en": "budget cap"},
        "applies_to": {"resources": ["budget"], "actions": ["draft"]},
        "attribute": "context.amount",
        "limits": {post: limit},
    }
    return {"name": {"zh": "预算规则", "en": "budget rules"}, "rules": [rule]}


def moment() -> str:
    """A moment strictly between the versions stored before and after it."""
    time.sleep(0.3)
    now = dt.datetime.now(dt.UTC)
    time.sleep(0.3)
    return now.isoformat()


def test_as_of_decides_with_the_rule_packs_in_force_then(admins: Admins) -> None:
    suffix = uuid.uuid4().hex[:8]
    post, person, pack = f"planner_{suffix}", f"planner_{suffix}_person", f"budget_{suffix}"
    duty = {"number": "1", "text": "编制预算。", "permissions": [{"resource": "budget", "actions": ["draft"]}]}
    created = admins.hr.post(
        f"/admin/orgs/{ORG}/posts",
        json={
            "id": post,
            "name": {"zh": "预算员", "en": "Budget planner"},
            "department": "business_dept",
            "reports_to": "department_head",
            "duties": [duty],
        },
    )
    assert created.status_code == 201, created.text
    someone = {"id": person, "name": {"zh": "人", "en": "P"}, "assignments": [{"post": post}]}
    hired = admins.hr.post(f"/admin/orgs/{ORG}/people", json=someone)
    assert hired.status_code == 201, hired.text
    before_pack = moment()
    first = admins.compliance.post(f"/admin/orgs/{ORG}/rules", json={"name": pack, "pack": budget_cap(post, 1000)})
    assert first.status_code == 201, first.text
    capped = moment()
    path = f"/admin/orgs/{ORG}/rules/{pack}"
    second = admins.compliance.put(path, etag=admins.compliance.get(path).headers["etag"], json=budget_cap(post, 10000))
    assert second.status_code == 200, second.text
    raised = moment()
    v1, v2 = first.json()["version"], second.json()["version"]

    body = {
        "organisation": ORG,
        "subject": {"id": person},
        "resource": {"type": "budget"},
        "action": "draft",
        "context": {"amount": 5000},
        "at_least_version": v2,
    }
    now = httpx.post(f"{admins.server.url}/v1/check", json=body).json()
    assert now["decision"] == "allow" and "as_of" not in now, "5,000 is within today's cap of 10,000"

    def as_of(at: str) -> dict[str, Any]:
        response = httpx.post(f"{admins.server.url}/v1/check", json={**body, "as_of": at})
        assert response.status_code == 200, response.text
        return response.json()

    then = as_of(capped)
    assert then["decision"] == "needs_approval", "5,000 was above the cap of 1,000 in force then"
    assert [(r["rule"], r["detail"]["limit"]) for r in then["rules"]] == [("budget_cap", 1000)]
    assert then["approvers"] == [{"post": "department_head", "people": ["wang_jianguo"]}]
    assert then["as_of"]["rule_versions"][pack] == v1 and "rules" not in then["as_of"]
    assert then["as_of"]["version"] == then["policy_version"] == hired.json()["version"]

    earlier = as_of(before_pack)
    assert earlier["decision"] == "allow" and earlier["rules"] == [], "before the pack existed its rule did not apply"
    assert pack not in earlier["as_of"]["rule_versions"]
    assert earlier["as_of"]["version"] == hired.json()["version"]

    latest = as_of(raised)
    assert latest["decision"] == "allow" and latest["as_of"]["rule_versions"][pack] == v2

    item = {k: v for k, v in body.items() if k != "at_least_version"}
    moments = (before_pack, capped, raised)
    batch = httpx.post(f"{admins.server.url}/v1/checks", json={"checks": [item | {"as_of": at} for at in moments]})
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert [r["decision"] for r in results] == ["allow", "needs_approval", "allow"]
    assert [r["as_of"]["rule_versions"].get(pack) for r in results] == [None, v1, v2]
