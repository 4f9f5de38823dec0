"""Organisations isolated from each other (issue 11, case 10): a stored document or rule pack that this release
cannot use (a newer release wrote it during a rolling upgrade, or an old bug stored a NaN limit as null) stops
only its own organisation. It stays on its last good version (or, after a restart, is unavailable: every decision
a deny), is reported by /healthz and /readyz (both 200) and counted in /metrics, and every other organisation
goes on refreshing: a revoked assignment elsewhere is denied at once, and a restart starts and serves the rest.

The broken versions are written straight into the database, as another release would write them. Each backend
gets a server of its own: the shared hardening server must not be left with broken organisations."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.api.admin_client import Client, create_admin
from tests.conftest import _backends, fresh_database
from tests.hardening.conftest import load_content
from tests.live import LiveServer

# What each broken organisation gets, as a newer release (or an old bug) would have stored it.
UNKNOWN_KIND = "securities_branch"  # its rule pack holds a rule of a kind this release does not know
UNKNOWN_FIELD = "logistics"  # its document has a field this release does not know
NULL_LIMIT = "restaurant"  # its rule pack has a limit stored as null (a NaN, before writes were read back)
BAD_CONDITION = "hotel"  # its rule pack has a condition that does not compile
BROKEN = {UNKNOWN_KIND: "decode", UNKNOWN_FIELD: "decode", NULL_LIMIT: "decode", BAD_CONDITION: "compile"}
# The others; in sales_company an assignment is revoked while the broken ones are broken.
REVOKED_IN = "sales_company"
HEALTHY = ("sales_company", "ninger_branch", "water_utility")
# One question per organisation whose answer must not change while it is stale: a person, a resource, an action.
QUESTIONS = {
    "hotel": ("gao_ting", "office_unit", "lease"),
    "logistics": ("yang_fan", "prospect", "visit"),
    "restaurant": ("zhao_min", "complaint", "resolve"),
    "securities_branch": ("wu_di", "compliance_check", "sign_off"),
    "sales_company": ("li_na", "customer", "contact"),
    "ninger_branch": ("wang_fang", "voucher", "inspect"),
    "water_utility": ("zhou_jianhua", "pipe_network", "manage"),
}


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(request.param, tmp_path_factory.mktemp("isolation")) as url:
        yield url


def check(server: LiveServer, org: str, person: str, resource: str, action: str) -> dict[str, Any]:
    body = {"organisation": org, "subject": {"id": person}, "resource": {"type": resource}, "action": action}
    response = httpx.post(f"{server.url}/v1/check", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def answers(server: LiveServer) -> dict[str, tuple[str, str]]:
    return {org: _outcome(check(server, org, *question)) for org, question in QUESTIONS.items()}


def _outcome(answer: dict[str, Any]) -> tuple[str, str]:
    return answer["decision"], answer["code"]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def not_current(server: LiveServer, path: str = "/healthz") -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{server.url}{path}", timeout=10)
    assert response.status_code == 200, response.text
    return {entry["organisation"]: entry for entry in response.json()["not_current"]}


def store_as_another_release(database_url: str, *versions: tuple[str, str, str, Any]) -> list[int]:
    """New versions (organisation, kind, pack name, document) written straight into the store in one transaction,
    as a newer release would write them, bypassing this one's checks; their version numbers."""
    from dutyline.store import notify
    from dutyline.store.db import make_engine, session_factory
    from dutyline.store.tables import OrganisationRow, OrgVersionRow

    engine = make_engine(database_url)
    numbers = []
    try:
        with session_factory(engine).begin() as session:
            notify.serialise(session)
            for org_id, kind, name, document in versions:
                text = json.dumps(document, ensure_ascii=False, sort_keys=True)
                row = OrgVersionRow(
                    org_id=org_id,
                    kind=kind,
                    name=name,
                    document=text,
                    digest=hashlib.sha256(text.encode()).hexdigest(),
                    author="release-next",
                    comment="rolling upgrade",
                    created_at=dt.datetime.now(dt.UTC),
                )
                session.add(row)
                session.flush()
                if kind == "org":
                    organisation = session.get(OrganisationRow, org_id)
                    assert organisation is not None
                    organisation.head_version = row.version
                numbers.append(row.version)
            notify.announce(session, max(numbers))
    finally:
        engine.dispose()
    return numbers


def stored_pack(root: Client, org: str) -> dict[str, Any]:
    response = root.get(f"/admin/orgs/{org}/rules/{org}")
    assert response.status_code == 200, response.text
    return response.json()


def break_them(database_url: str, root: Client) -> dict[str, int]:
    """Store, for each of BROKEN, a version this release cannot use (all at once); returns the versions stored."""
    unknown_kind = stored_pack(root, UNKNOWN_KIND)
    unknown_kind["rules"].append({**unknown_kind["rules"][0], "id": "fx_limit", "kind": "currency_limit"})
    document = root.get(f"/admin/orgs/{UNKNOWN_FIELD}").json()["document"]
    null_limit = stored_pack(root, NULL_LIMIT)
    limit = next(r for r in null_limit["rules"] if r["kind"] == "limit")
    limit["limits"] = dict.fromkeys(limit["limits"])
    bad_condition = stored_pack(root, BAD_CONDITION)
    next(r for r in bad_condition["rules"] if "when" in r)["when"] = "context.amount > 1 and"
    numbers = store_as_another_release(
        database_url,
        (UNKNOWN_KIND, "rules", UNKNOWN_KIND, unknown_kind),
        (UNKNOWN_FIELD, "org", "", {**document, "sites": [{"id": "depot_north"}]}),
        (NULL_LIMIT, "rules", NULL_LIMIT, null_limit),
        (BAD_CONDITION, "rules", BAD_CONDITION, bad_condition),
    )
    return dict(zip((UNKNOWN_KIND, UNKNOWN_FIELD, NULL_LIMIT, BAD_CONDITION), numbers))


def revoke(root: Client, org: str, person: str) -> None:
    """Take the person's assignments away (an HR change through the admin API)."""
    path = f"/admin/orgs/{org}/people/{person}"
    current = root.get(path)
    changed = root.patch(path, json={"assignments": []}, headers={"If-Match": current.headers["etag"]})
    assert changed.status_code == 200, changed.text


def metric(server: LiveServer, name: str, **labels: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{name}\{{{re.escape(wanted)}\}} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_a_version_this_release_cannot_use_stops_only_its_own_organisation(database_url: str) -> None:
    token = create_admin(database_url)
    load_content(database_url)
    server = LiveServer(database_url)
    try:
        server.wait_ready()
        root = Client(server, token)
        before = answers(server)
        assert all(before[org][0] == "allow" for org in QUESTIONS), before
        serving = httpx.get(f"{server.url}/readyz", timeout=10).json()["policy_version"]

        # 1. Four organisations get versions this release cannot use; they stay on their last good version.
        log_start = len(server.log_text())
        versions = break_them(database_url, root)
        wait_for(lambda: set(not_current(server)) == set(BROKEN), "the broken organisations to be reported")
        health = not_current(server)
        for org, stage in BROKEN.items():
            assert health[org] | {"reason": ""} == {
                "organisation": org,
                "state": "stale",
                "serving_version": serving,
                "failed_version": versions[org],
                "stage": stage,
                "reason": "",
            }, health[org]
        assert "currency_limit" in health[UNKNOWN_KIND]["reason"] and "sites" in health[UNKNOWN_FIELD]["reason"]
        assert "null" in health[NULL_LIMIT]["reason"] and "end of condition" in health[BAD_CONDITION]["reason"]
        assert httpx.get(f"{server.url}/healthz").json()["status"] == "degraded"
        ready = httpx.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json()["status"] == "degraded", (
            "one organisation takes no replica out"
        )
        assert set(not_current(server, "/readyz")) == set(BROKEN)
        for org in BROKEN:
            assert metric(server, "dutyline_policy_errors_total", organisation=org) == 1.0
        assert metric(server, "dutyline_policy_organisations_not_current", state="stale") == 4.0

        # 2. Every organisation goes on: the stale ones decide as before, at the version they were current at,
        # and the others take changes: an assignment revoked in sales_company is denied at once.
        for org in BROKEN:
            answer = check(server, org, *QUESTIONS[org])
            assert _outcome(answer) == before[org] and answer["policy_version"] == serving
        person, resource, action = QUESTIONS[REVOKED_IN]
        revoke(root, REVOKED_IN, person)
        revoked = check(server, REVOKED_IN, person, resource, action)
        assert revoked["decision"] == "deny" and revoked["policy_version"] > max(versions.values())
        for org in HEALTHY[1:]:
            assert check(server, org, *QUESTIONS[org])["decision"] == "allow"

        # 3. Each problem is logged once, however many refreshes come after.
        wait_for(
            lambda: httpx.get(f"{server.url}/readyz").json()["policy_version"] > max(versions.values()), "a refresh"
        )
        time.sleep(1)  # a few more refreshes (every 0.2 s): none may log the problems again
        log = server.log_text(log_start)
        for org in BROKEN:
            assert len(re.findall(rf"organisation {org} stays at policy version {serving}", log)) == 1, log[-3000:]
        assert "Traceback" not in log and "refresh failed" not in log, log[-3000:]

        # 4. A restart starts and serves the others; the broken ones, with no good version since, are
        # unavailable: every decision for them is a deny that says so, never an allow.
        server.stop()
        server = LiveServer(database_url)
        server.wait_ready()
        root = Client(server, token)
        assert {o: e["state"] for o, e in not_current(server).items()} == dict.fromkeys(BROKEN, "unavailable")
        ready = httpx.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert ready.json()["organisations"] == len(HEALTHY)
        for org in BROKEN:
            answer = check(server, org, *QUESTIONS[org])
            assert _outcome(answer) == ("deny", "organisation_unavailable"), answer
            assert answer["reasons"][0]["code"] == "organisation_unavailable"
            evaluation = httpx.post(
                f"{server.url}/orgs/{org}/access/v1/evaluation",
                timeout=10,
                json={
                    "subject": {"type": "user", "id": QUESTIONS[org][0]},
                    "resource": {"type": QUESTIONS[org][1], "id": "x"},
                    "action": {"name": QUESTIONS[org][2]},
                },
            )
            assert evaluation.status_code == 200 and evaluation.json()["decision"] is False
        assert check(server, REVOKED_IN, person, resource, action)["decision"] == "deny"
        for org in HEALTHY[1:]:
            assert check(server, org, *QUESTIONS[org])["decision"] == "allow"
        assert metric(server, "dutyline_policy_organisations_not_current", state="unavailable") == 4.0

        # 5. Writing a good version through the admin API makes an organisation current again.
        path = f"/admin/orgs/{UNKNOWN_KIND}/rules/{UNKNOWN_KIND}"
        pack = root.get(path).json()
        pack["rules"] = [r for r in pack["rules"] if r["kind"] != "currency_limit"]
        repaired = root.put(path, json=pack, headers={"If-Match": root.get(path).headers["etag"]})
        assert repaired.status_code == 200, repaired.text
        wait_for(lambda: UNKNOWN_KIND not in not_current(server), "the repaired organisation to be current")
        assert check(server, UNKNOWN_KIND, *QUESTIONS[UNKNOWN_KIND])["decision"] == "allow"
        assert set(not_current(server)) == set(BROKEN) - {UNKNOWN_KIND}
    finally:
        server.stop()


def test_an_organisation_whose_rule_pack_cannot_be_read_refuses_org_chart_changes_it_would_not_serve(
    database_url: str,
) -> None:
    """An HR change to an organisation whose rule pack cannot be read would be stored but never served (the
    organisation stays on its last good version until the pack is fixed): it is refused, naming the pack. Its
    history is still readable, and another organisation is edited as usual."""
    token = create_admin(database_url)
    load_content(database_url)
    server = LiveServer(database_url)
    try:
        server.wait_ready()
        root = Client(server, token)
        pack = stored_pack(root, UNKNOWN_KIND)
        pack["rules"].append({**pack["rules"][0], "id": "fx_limit", "kind": "currency_limit"})
        [version] = store_as_another_release(database_url, (UNKNOWN_KIND, "rules", UNKNOWN_KIND, pack))
        wait_for(lambda: UNKNOWN_KIND in not_current(server), "the broken pack to be reported")
        person = f"/admin/orgs/{UNKNOWN_KIND}/people/{QUESTIONS[UNKNOWN_KIND][0]}"
        refused = root.patch(person, json={"name": {"zh": "吴迪", "en": "Wu D."}}, headers={"If-Match": "*"})
        assert refused.status_code == 409, refused.text
        assert f"rules/{UNKNOWN_KIND}" in refused.json()["message"] and "currency_limit" in refused.json()["message"]
        assert root.get(person).json()["name"]["en"] != "Wu D.", "nothing was stored"
        shown = root.get(f"/admin/orgs/{UNKNOWN_KIND}/versions/{version}/diff")
        assert shown.status_code == 200 and "currency_limit" in shown.json()["diff"]
        other = f"/admin/orgs/{REVOKED_IN}/people/{QUESTIONS[REVOKED_IN][0]}"
        changed = root.patch(other, json={"name": {"zh": "李娜", "en": "Li N."}}, headers={"If-Match": "*"})
        assert changed.status_code == 200, changed.text
    finally:
        server.stop()
