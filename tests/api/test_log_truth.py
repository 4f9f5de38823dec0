"""The decision log tells the truth: what a decision's row says when read back is what the caller was told.

Property of issue 12: for random requests (seeded, so reproducible) over every seed organisation (people, resources, actions and the
contexts of the seed's rule cases, at moments inside and outside business hours), the row `GET /v1/decisions`
gives for a decision has the answer's outcome, code, reasons (posts, duties, acting windows, rules, in both
languages), rules, and approval; and an allow through an approval names the approval, its approver and the uses
left, in the answer and in the log alike.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dutyline.engines.compiler import compile_org
from dutyline.engines.rule_tests import parse_rule_table
from dutyline.orgmodel.source import load_yaml
from dutyline.services import sources
from tests.api.admin_client import Client, create_admin
from tests.conftest import REPO, _backends, fresh_database
from tests.hardening.conftest import load_content
from tests.live import LiveServer

MOMENTS = ["2026-07-06T10:00", "2026-07-06T19:00", "2026-07-11T10:00", "2026-08-10T10:00", "2026-12-02T03:00"]


@pytest.fixture(scope="module", params=_backends())
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, str]]:
    with fresh_database(request.param, tmp_path_factory.mktemp("truth")) as url:
        token = create_admin(url)
        load_content(url)
        live = LiveServer(url)
        try:
            live.wait_ready()
            yield live, token
        finally:
            live.stop()


def _world() -> dict[str, dict[str, Any]]:
    """Per seed organisation: its people, its (resource, action) pairs, what each person's posts grant, and the
    contexts its rule cases use."""
    loaded = sources.load([REPO / "policies" / "orgs"])
    world: dict[str, dict[str, Any]] = {}
    for org_id, parsed in loaded.organisations.items():
        org = compile_org(parsed.organisation)
        granted = sorted(
            (person, resource, action)
            for (resource, action), posts in org.grantees.items()
            for post in posts
            for person in org.holders.get(post, ())
        )
        world[org_id] = {
            "people": sorted(org.assignments),
            "pairs": sorted(org.grantees),
            "granted": granted,
            "contexts": [{}],
            "cases": [],
        }
    for path in sorted((REPO / "rules" / "tests").glob("*.yaml")):
        data, source = load_yaml(path.read_text(encoding="utf-8"), str(path))
        table, _ = parse_rule_table(data, source)
        world[table.org]["contexts"] += [c.request.context for c in table.cases if c.request.context]
        world[table.org]["cases"] += [c.request for c in table.cases]
    return world


WORLD = _world()


def requests(count: int, seed: int) -> list[dict[str, Any]]:
    """Random requests, reproducible by `seed`: mostly what someone's posts grant (so that rules run), some not."""
    chance = random.Random(seed)
    out = []
    for _ in range(count):
        org = chance.choice(sorted(WORLD))
        facts = WORLD[org]
        draw = chance.random()
        if draw < 0.3:  # a rule case's request, at another moment and with its context perhaps changed
            case = chance.choice(facts["cases"])
            person, resource, action, context = case.person, case.resource, case.action, dict(case.context)
            if context and chance.random() < 0.3:
                context.pop(chance.choice(sorted(context)))
            out.append(
                {
                    "organisation": org,
                    "subject": {"id": person},
                    "resource": {"type": resource},
                    "action": action,
                    "at": case.at or chance.choice(MOMENTS),
                    "context": context,
                }
            )
            continue
        if draw < 0.8:
            person, resource, action = chance.choice(facts["granted"])
        else:
            person, (resource, action) = chance.choice(facts["people"]), chance.choice(facts["pairs"])
        out.append(
            {
                "organisation": org,
                "subject": {"id": person},
                "resource": {"type": resource},
                "action": action,
                "at": chance.choice(MOMENTS),
                "context": chance.choice(facts["contexts"]),
            }
        )
    return out


def _logged(http: httpx.Client, organisation: str, request_id: str) -> dict[str, Any]:
    for _ in range(100):  # the log is written off the decision path, in batches
        items = http.get("/v1/decisions", params={"organisation": organisation, "request_id": request_id}).json()[
            "items"
        ]
        if items:
            return items[0]
        time.sleep(0.1)
    raise AssertionError(f"decision {request_id} never reached the log")


def _told(answer: dict[str, Any]) -> dict[str, Any]:
    return {
        "decision": answer["decision"],
        "code": answer["code"],
        "reasons": answer["reasons"],
        "rules": list(dict.fromkeys(r["rule"] for r in answer["rules"])),
        "approval": answer.get("approval"),
    }


def _recorded(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "decision": row["decision"],
        "code": row["code"],
        "reasons": row["reasons"],
        "rules": row["rules"],
        "approval": row["approval"],
    }


@pytest.mark.parametrize("seed", [1, 2])
def test_a_logged_decision_read_back_says_what_the_caller_was_told(server, seed: int) -> None:  # type: ignore[no-untyped-def]
    live, token = server
    batch = requests(150, seed)
    told: list[tuple[str, str, dict[str, Any]]] = []
    with httpx.Client(base_url=live.url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
        for body in batch:
            request_id = uuid.uuid4().hex
            answer = http.post("/v1/check", json=body, headers={"X-Request-ID": request_id})
            assert answer.status_code == 200, answer.text
            told.append((body["organisation"], request_id, answer.json()))
        assert {a["decision"] for _, _, a in told} == {"allow", "deny", "needs_approval"}, "every outcome is tried"
        assert any(a["rules"] for _, _, a in told), "and rules fire"
        for organisation, request_id, answer in told:
            row = _logged(http, organisation, request_id)
            assert row["decision_id"] == answer["decision_id"]
            assert _recorded(row) == _told(answer), (organisation, answer["subject"])


def test_an_allow_through_an_approval_names_it_in_the_answer_and_in_the_log(server) -> None:  # type: ignore[no-untyped-def]
    live, token = server
    check = {
        "organisation": "ninger_branch",
        "subject": {"id": "huang_wei"},
        "resource": {"type": "transaction", "id": f"t-{uuid.uuid4().hex[:8]}"},
        "action": "enter",
        "at": "2026-07-06T10:00",
        "context": {"amount": 120_000, "currency": "CNY"},
    }
    root = Client(live, token)  # type: ignore[arg-type]
    try:
        opened = root.post("/v1/approvals", json=check | {"comment": "customer waiting"})
        assert opened.status_code == 201, opened.text
        approval = opened.json()
        decided = root.post(f"/v1/approvals/{approval['id']}/approve", json={"person": "wang_fang", "comment": "ok"})
        assert decided.status_code == 200, decided.text
        request_id = uuid.uuid4().hex
        answer = root.post(
            "/v1/check", json=check | {"approval_id": approval["id"]}, headers={"X-Request-ID": request_id}
        ).json()
        assert answer["decision"] == "allow"
        assert answer["approval"]["id"] == approval["id"] and answer["approval"]["approved_by"] == "wang_fang"
        assert answer["approval"]["uses_left"] == 0
        assert any(r["code"] == "approved" and "wang_fang" in r["en"] for r in answer["reasons"])
        row = _logged(root.http, "ninger_branch", request_id)
        assert row["approval_id"] == approval["id"]
        assert _recorded(row) == _told(answer)
    finally:
        root.close()
