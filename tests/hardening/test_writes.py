"""Writes, against the shared hardening server: every write is decoded as a refresh will decode it (issue 11,
case 10: NaN and Infinity refused with the field and line on every route), YAML aliases are bounded by the
scalars they expand to (case 12), and four-eyes holds on every path that changes a rule pack or, where the
organisation asks for it, an org chart (case 8): immediate, scheduled, restored, imported through the API, and
`dutyline import`.

Four-eyes is turned on for water_utility only while a test needs it; the changes made there touch names only,
so no decision of the other tests changes."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ruamel.yaml import YAML

from tests.api.admin_client import Client, token_for
from tests.conftest import REPO
from tests.hardening.conftest import Stack

ORG = "sales_company"
PACK = f"/admin/orgs/{ORG}/rules/{ORG}"
LIMIT = "rules[0].limits.senior_sales_representative"  # expense_claim_limit, the first rule of the seed pack
EDITED = "water_utility"  # where four-eyes is tried (names only are changed)
EDITED_PACK = f"/admin/orgs/{EDITED}/rules/{EDITED}"
EDITED_POST = f"/admin/orgs/{EDITED}/posts/billing_supervisor"
CHECK = {"organisation": ORG, "subject": {"id": "li_na"}, "resource": {"type": "expense"}, "action": "submit"}


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:6]}"


def version(stack: Stack) -> int:
    return int(stack.root.get(f"/admin/orgs/{ORG}").headers["x-policy-version"])


def seed_pack(stack: Stack) -> dict[str, Any]:
    pack = stack.root.get(PACK).json()
    assert pack["rules"][0]["id"] == "expense_claim_limit"
    return pack


def json_with(pack: dict[str, Any], literal: str) -> str:
    """The pack as JSON text whose senior representative's limit is `literal` (NaN, Infinity, 1e999 …)."""
    marked = json.loads(json.dumps(pack))
    marked["rules"][0]["limits"]["senior_sales_representative"] = 123456789.25
    return json.dumps(marked, indent=2, ensure_ascii=False).replace("123456789.25", literal)


def yaml_with(pack: dict[str, Any], literal: str) -> str:
    text = io.StringIO()
    YAML().dump(json.loads(json_with(pack, "123456789.25")), text)
    return text.getvalue().replace("123456789.25", literal)


def assert_names_the_number(response: httpx.Response, path: str = LIMIT) -> None:
    """A 400 whose issue names the field of the non-finite number and its line."""
    assert response.status_code == 400, (
        f"{response.request.method} {response.request.url}: {response.status_code} {response.text[:400]}"
    )
    issue = response.json()["issues"][0]
    assert issue["path"] == path and issue["line"] > 1, issue
    assert "finite" in issue["message"], issue


JSON = {"Content-Type": "application/json"}
YAML_TYPE = {"Content-Type": "application/yaml"}


# --- NaN and Infinity: refused on every route that writes --------------------------------------------------


def with_literal(value: Any, literal: str) -> str:
    """`value` as indented JSON text, the marker number 123456789.25 in it written as `literal`."""
    return json.dumps(value, indent=2, ensure_ascii=False).replace("123456789.25", literal)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_rule_pack_with_a_json_nan_or_infinity_is_refused_on_every_route_naming_field_and_line(
    stack: Stack, literal: str
) -> None:
    pack = json.loads(json_with(seed_pack(stack), "123456789.25"))
    before = version(stack)
    changes_before = len(stack.root.get("/admin/changes", params={"org": ORG}).json()["items"])
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    routes: list[tuple[str, str, dict[str, str], Any, str]] = [
        ("PUT", PACK, {"If-Match": "*"}, pack, LIMIT),
        ("PATCH", PACK, {"If-Match": "*"}, {"rules": pack["rules"]}, LIMIT),  # a merge patch
        ("POST", f"/admin/orgs/{ORG}/rules", {}, {"name": unique("nan"), "pack": pack}, f"pack.{LIMIT}"),
        ("PUT", f"{PACK}?preview=true", {"If-Match": "*"}, pack, LIMIT),
        ("PUT", PACK, {"If-Match": "*", "X-Effective-At": later}, pack, LIMIT),  # a scheduled change
        (
            "POST",
            f"/admin/orgs/{ORG}/preview",
            {},
            {"document": None, "rules": {"draft": pack}},
            f"rules.draft.{LIMIT}",
        ),
    ]
    for method, path, headers, body, field in routes:
        response = stack.root.request(
            method, path, content=with_literal(body, literal).encode(), headers={**JSON, **headers}
        )
        assert_names_the_number(response, field)
    assert version(stack) == before, "nothing was stored"
    assert len(stack.root.get("/admin/changes", params={"org": ORG}).json()["items"]) == changes_before, "nor scheduled"


@pytest.mark.parametrize("literal", [".nan", ".NaN", ".inf", "-.inf"])
def test_a_rule_pack_with_a_yaml_nan_or_infinity_is_refused_naming_field_and_line(stack: Stack, literal: str) -> None:
    pack = seed_pack(stack)
    before = version(stack)
    text = yaml_with(pack, literal)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if literal in row)
    for method, path in (("PUT", PACK), ("PUT", f"{PACK}?preview=true")):
        response = stack.root.request(method, path, content=text.encode(), headers={**YAML_TYPE, "If-Match": "*"})
        assert_names_the_number(response)
        assert response.json()["issues"][0]["line"] == line
    assert version(stack) == before


def test_org_entities_refuse_nan_and_infinity_in_json_and_yaml(stack: Stack) -> None:
    person = f"/admin/orgs/{ORG}/people/li_na"
    before = version(stack)
    patched = stack.root.patch(
        person, content=b'{"attributes":\n {"risk_score": NaN}}', headers={**JSON, "If-Match": "*"}
    )
    assert_names_the_number(patched, "attributes.risk_score")
    yaml = b"attributes:\n  risk_score: .inf\n"
    assert_names_the_number(
        stack.root.patch(person, content=yaml, headers={**YAML_TYPE, "If-Match": "*"}), "attributes.risk_score"
    )
    created = stack.root.post(
        f"/admin/orgs/{ORG}/posts",
        headers=YAML_TYPE,
        content=b"id: nan_post\nname: {zh: x, en: x}\ndepartment: business_dept\nheadcount: .nan\n",
    )
    assert_names_the_number(created, "headcount")
    assert version(stack) == before


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/v1/check",
            (
                '{"organisation": "sales_company", "subject": {"id": "li_na"}, "resource": {"type": "expense"},\n'
                ' "action": "submit", "context": {"amount": LITERAL}}'
            ),
        ),
        (
            "/v1/checks",
            (
                '{"checks": [{"organisation": "sales_company", "subject": {"id": "li_na"},\n'
                ' "resource": {"type": "expense"}, "action": "submit", "context": {"amount": LITERAL}}]}'
            ),
        ),
        (
            "/access/v1/evaluation",
            (
                '{"subject": {"type": "user", "id": "li_na"}, "resource": {"type": "expense", "id": "e1"},\n'
                ' "action": {"name": "submit"}, "context": {"amount": LITERAL}}'
            ),
        ),
        (f"/v1/orgs/{ORG}/usage", '{"person": "li_na", "rule": "monthly_expense_limit",\n "amount": LITERAL}'),
    ],
)
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_the_decision_api_refuses_nan_and_infinity_naming_the_line(
    stack: Stack, path: str, body: str, literal: str
) -> None:
    response = stack.root.post(path, content=body.replace("LITERAL", literal).encode(), headers=JSON)
    assert response.status_code == 400, response.text
    issue = response.json()["issues"][0]
    if path.endswith("/usage") and literal == "1e999":  # usage amounts are read as exact decimals: too big, not inf
        assert issue["path"] == "amount" and "below" in issue["message"], issue
        return
    assert issue["line"] == 2 and "NaN or infinite" in issue["message"], issue


def test_a_restore_of_a_version_an_old_release_stored_with_a_null_limit_is_refused(stack: Stack) -> None:
    """Before writes were read back, a NaN limit was stored as null. Restoring such a version is decoded and
    validated as any write is: 400 naming the field, nothing stored."""
    from tests.hardening.test_isolation import store_as_another_release

    name = unique("legacy")
    pack = seed_pack(stack)
    pack["rules"][0]["limits"]["senior_sales_representative"] = None
    [legacy] = store_as_another_release(stack.database_url, (ORG, "rules", name, pack))
    path = f"/admin/orgs/{ORG}/rules/{name}"
    gone = stack.root.delete(path, headers={"If-Match": "*"})  # the organisation is current again
    assert gone.status_code == 200, gone.text
    wait_for(
        lambda: not httpx.get(f"{stack.server.url}/healthz").json()["not_current"], "the organisation to be current"
    )
    before = version(stack)
    restored = stack.root.post(f"/admin/orgs/{ORG}/versions/{legacy}/restore")
    assert restored.status_code == 400, restored.text
    assert restored.json()["issues"][0]["path"].startswith("rules[0]"), restored.json()
    assert version(stack) == before and stack.root.get(path).status_code == 404


def test_the_cli_import_refuses_nan_with_file_and_line(stack: Stack, tmp_path: Path) -> None:
    text = yaml_with(seed_pack(stack), ".nan")
    path = tmp_path / "sales_company.yaml"
    path.write_text(text, encoding="utf-8")
    line = next(i for i, row in enumerate(text.splitlines(), 1) if ".nan" in row)
    before = version(stack)
    done = cli(stack, "import", str(path))
    assert done.returncode == 1 and f"{path}:{line}: error:" in done.stderr and LIMIT in done.stderr, done.stderr
    assert version(stack) == before


# --- YAML aliases: bounded by the scalars they expand to ------------------------------------------------------

# 120 KB of YAML: one 100,000-character text repeated 5,000 times (500 MB once expanded).
SCALAR_BOMB = 'a: &a "' + "x" * 100_000 + '"\nb: [' + ", ".join(["*a"] * 5000) + "]\n"


def peak_rss_mib(stack: Stack) -> float:
    status = Path(f"/proc/{stack.server.process.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) / 1024


def test_a_scalar_alias_bomb_is_refused_with_its_line_before_it_expands(stack: Stack, tmp_path: Path) -> None:
    read = Client(stack.server, token_for(stack.root, "root", ["read"]))
    peak = peak_rss_mib(stack)
    sent = [
        (read, "POST", f"/admin/orgs/{ORG}/preview", {}),  # a read token's preview
        (stack.root, "PUT", PACK, {"If-Match": "*"}),
        (stack.root, "PATCH", f"/admin/orgs/{ORG}/people/li_na", {"If-Match": "*"}),
        (stack.root, "POST", "/admin/orgs", {}),
    ]
    for client, method, path, headers in sent:
        response = client.request(method, path, content=SCALAR_BOMB.encode(), headers={**YAML_TYPE, **headers})
        assert response.status_code == 400, (path, response.status_code, response.text[:300])
        issue = response.json()["issues"][0]
        assert issue["line"] == 2 and "DUTYLINE_MAX_YAML_SCALARS" in issue["message"], issue
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(SCALAR_BOMB, encoding="utf-8")
    done = cli(stack, "import", str(bomb))
    assert done.returncode == 1 and f"{bomb}:2: error:" in done.stderr and "aliases" in done.stderr, done.stderr
    assert peak_rss_mib(stack) - peak < 100, "the server never built the expanded document (500 MB)"


ANCHORED = """org: sales_company
name: &title {zh: 测试, en: anchored}
rules:
  - kind: condition
    id: big_claim
    name: *title
    applies_to: &claims {resources: [expense], actions: [submit]}
    when: context.amount > 100000
  - kind: condition
    id: huge_claim
    name: *title
    applies_to: *claims
    when: context.amount > 1000000
"""


def test_aliases_within_the_bound_are_still_read(stack: Stack) -> None:
    """Anchors that repeat a few values (a shared `applies_to`) are fine: a preview of a pack so written is valid."""
    preview = stack.root.put(f"{PACK}?preview=true", content=ANCHORED.encode(), headers={**YAML_TYPE, "If-Match": "*"})
    assert preview.status_code == 200 and preview.json()["valid"] is True, preview.text


# --- four-eyes on every path ------------------------------------------------------------------------------------


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DUTYLINE_DATABASE_URL": stack.database_url, "DUTYLINE_SEED_DIR": ""}
    return subprocess.run(
        [sys.executable, "-m", "dutyline", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=120
    )


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class People:
    """Two compliance officers and two HR admins of EDITED, each with an admin token."""

    def __init__(self, stack: Stack) -> None:
        suffix = uuid.uuid4().hex[:6]

        def person(name: str, role: str) -> Client:
            username = f"{name}_{suffix}"
            client = Client(
                stack.server, token_for(stack.root, username, ["admin"], [{"role": role, "organisation": EDITED}])
            )
            client.username = username  # type: ignore[attr-defined]
            return client

        self.carl = person("carl", "compliance_officer")
        self.cora = person("cora", "compliance_officer")
        self.hana = person("hana", "hr_admin")
        self.hugo = person("hugo", "hr_admin")


@pytest.fixture(scope="module")
def people(stack: Stack) -> People:
    return People(stack)


@pytest.fixture
def rules_four_eyes(stack: Stack) -> Iterator[None]:
    on = stack.root.put(f"/admin/orgs/{EDITED}/settings", json={"rules_four_eyes": True})
    assert on.json() == {"organisation": EDITED, "rules_four_eyes": True, "org_four_eyes": False}, on.text
    try:
        yield
    finally:
        stack.root.put(f"/admin/orgs/{EDITED}/settings", json={"rules_four_eyes": False})


@pytest.fixture
def org_four_eyes(stack: Stack) -> Iterator[None]:
    on = stack.root.put(f"/admin/orgs/{EDITED}/settings", json={"org_four_eyes": True})
    assert on.json() == {"organisation": EDITED, "rules_four_eyes": False, "org_four_eyes": True}, on.text
    try:
        yield
    finally:
        stack.root.put(f"/admin/orgs/{EDITED}/settings", json={"org_four_eyes": False})


def renamed_pack(client: Client, label: str) -> dict[str, Any]:
    pack = client.get(EDITED_PACK).json()
    return {**pack, "name": {"zh": f"规则 {label}", "en": f"rules {label}"}}


def pack_name(stack: Stack) -> str:
    return stack.root.get(EDITED_PACK).json()["name"]["en"]


def soon(seconds: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).isoformat()


def change(stack: Stack, change_id: str) -> dict[str, Any]:
    return stack.root.get(f"/admin/changes/{change_id}").json()


def held(response: httpx.Response, reason: str = "four_eyes", status: str = "pending") -> dict[str, Any]:
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["reason"], body["status"]) == (reason, status), body
    return body


def post_name(stack: Stack) -> str:
    return stack.root.get(EDITED_POST).json()["name"]["en"]


def scheduler_ran_past(stack: Stack, people: People, moment: str) -> None:
    """Wait until the scheduler has applied a change due at `moment` that needs nobody (an org chart change while
    only rule packs have four-eyes): from then on, everything due by `moment` has been looked at."""
    label = unique("tick")
    tick = people.hana.patch(
        EDITED_POST, json={"name": {"zh": label, "en": label}}, headers={"If-Match": "*", "X-Effective-At": moment}
    )
    held(tick, "scheduled", "scheduled")
    wait_for(lambda: change(stack, tick.json()["id"])["status"] == "applied", "the scheduler to pass the moment")


def test_a_scheduled_rule_change_waits_for_its_approval_even_after_its_time(
    stack: Stack, people: People, rules_four_eyes: None
) -> None:
    before = pack_name(stack)
    label = unique("scheduled")
    moment = soon(1)
    pending = held(
        people.carl.put(
            EDITED_PACK, json=renamed_pack(people.carl, label), headers={"If-Match": "*", "X-Effective-At": moment}
        )
    )
    assert pending["effective_at"] is not None
    scheduler_ran_past(stack, people, soon(1.5))
    assert change(stack, pending["id"])["status"] == "pending" and pack_name(stack) == before, "not applied unapproved"
    assert people.carl.post(f"/admin/changes/{pending['id']}/approve", json={}).status_code == 403, "not by its author"
    assert people.hana.post(f"/admin/changes/{pending['id']}/approve", json={}).status_code == 403, "not by HR"
    approved = people.cora.post(f"/admin/changes/{pending['id']}/approve", json={"comment": "checked"})
    assert approved.status_code == 200 and approved.json()["status"] == "applied", approved.text
    assert pack_name(stack) == f"rules {label}"
    applied = stack.root.get(f"/admin/orgs/{EDITED}/versions/{approved.json()['version']}").json()
    assert applied["author"] == people.carl.username and f"approved by {people.cora.username}" in applied["comment"]


def test_a_scheduled_rule_change_approved_before_its_time_is_applied_at_its_time(
    stack: Stack, people: People, rules_four_eyes: None
) -> None:
    label = unique("approved")
    pending = held(
        people.carl.put(
            EDITED_PACK, json=renamed_pack(people.carl, label), headers={"If-Match": "*", "X-Effective-At": soon(8)}
        )
    )
    approved = people.cora.post(f"/admin/changes/{pending['id']}/approve", json={})
    assert approved.status_code == 200, approved.text
    if approved.json()["status"] == "scheduled":  # (on a very slow machine its time may already have come)
        assert approved.json()["decided_by"] == people.cora.username and pack_name(stack) != f"rules {label}"
    wait_for(lambda: change(stack, pending["id"])["status"] == "applied", "the approved change's time")
    assert pack_name(stack) == f"rules {label}"


def test_a_restored_rule_pack_version_waits_for_the_second_person_now_or_scheduled(
    stack: Stack, people: People, rules_four_eyes: None
) -> None:
    versions = stack.root.get(f"/admin/orgs/{EDITED}/versions").json()["items"]
    old = next(v for v in versions if v["kind"] == "rules" and not v["deleted"])
    wanted = stack.root.get(f"/admin/orgs/{EDITED}/versions/{old['version']}").json()["document"]["name"]["en"]
    people.cora.put(EDITED_PACK, json=renamed_pack(people.cora, unique("x")), headers={"If-Match": "*"})  # held too
    before = pack_name(stack)
    restore = f"/admin/orgs/{EDITED}/versions/{old['version']}/restore"
    now = held(people.carl.post(restore))
    later = held(people.carl.post(restore, headers={"X-Effective-At": soon(3600)}))
    assert pack_name(stack) == before
    approved = people.cora.post(f"/admin/changes/{now['id']}/approve", json={})
    assert approved.status_code == 200 and approved.json()["status"] == "applied", approved.text
    assert pack_name(stack) == wanted
    people.cora.post(f"/admin/changes/{later['id']}/reject", json={})


def test_a_rule_pack_imported_as_yaml_through_the_api_waits_too(
    stack: Stack, people: People, rules_four_eyes: None
) -> None:
    text = io.StringIO()
    YAML().dump(renamed_pack(people.carl, unique("yaml")), text)
    before = pack_name(stack)
    pending = held(
        people.carl.put(EDITED_PACK, content=text.getvalue().encode(), headers={**YAML_TYPE, "If-Match": "*"})
    )
    created = held(
        people.carl.post(
            f"/admin/orgs/{EDITED}/rules", json={"name": unique("new"), "pack": renamed_pack(people.carl, "n")}
        )
    )
    deleted = held(people.carl.delete(EDITED_PACK, headers={"If-Match": "*"}))
    assert pack_name(stack) == before
    for waiting in (pending, created, deleted):
        assert people.cora.post(f"/admin/changes/{waiting['id']}/reject", json={}).json()["status"] == "rejected"


def test_a_change_scheduled_before_four_eyes_was_turned_on_waits_for_approval_at_its_time(
    stack: Stack, people: People
) -> None:
    label = unique("before")
    before = pack_name(stack)
    scheduled = held(
        people.carl.put(
            EDITED_PACK, json=renamed_pack(people.carl, label), headers={"If-Match": "*", "X-Effective-At": soon(1)}
        ),
        "scheduled",
        "scheduled",
    )
    on = stack.root.put(f"/admin/orgs/{EDITED}/settings", json={"rules_four_eyes": True})
    assert on.json()["rules_four_eyes"] is True
    try:
        wait_for(lambda: change(stack, scheduled["id"])["status"] != "scheduled", "the change's time")
        waiting = change(stack, scheduled["id"])
        assert (waiting["status"], waiting["reason"]) == ("pending", "four_eyes"), waiting
        assert pack_name(stack) == before
        approved = people.cora.post(f"/admin/changes/{scheduled['id']}/approve", json={})
        assert approved.json()["status"] == "applied" and pack_name(stack) == f"rules {label}", approved.text
    finally:
        stack.root.put(f"/admin/orgs/{EDITED}/settings", json={"rules_four_eyes": False})


def test_dutyline_import_refuses_a_rule_pack_change_that_needs_a_second_person(
    stack: Stack, people: People, rules_four_eyes: None, tmp_path: Path
) -> None:
    text = io.StringIO()
    YAML().dump(renamed_pack(people.carl, unique("cli")), text)
    path = tmp_path / f"{EDITED}.yaml"
    path.write_text(text.getvalue(), encoding="utf-8")
    before = pack_name(stack)
    done = cli(stack, "import", str(path))
    assert done.returncode == 1 and "four-eyes applies to rule pack changes" in done.stderr, done.stderr
    assert pack_name(stack) == before


def test_org_chart_four_eyes_is_off_by_default_and_holds_every_org_chart_path_when_on(
    stack: Stack, people: People, tmp_path: Path
) -> None:
    settings = stack.root.get(f"/admin/orgs/{EDITED}/settings").json()
    assert settings == {"organisation": EDITED, "rules_four_eyes": False, "org_four_eyes": False}
    temporary = unique("post")
    made = people.hana.post(
        f"/admin/orgs/{EDITED}/posts",
        json={"id": temporary, "name": {"zh": "临时岗", "en": "temporary post"}, "department": "business_dept"},
    )
    assert made.status_code == 201, "applied at once while org chart four-eyes is off"
    on = stack.root.put(f"/admin/orgs/{EDITED}/settings", json={"org_four_eyes": True})
    assert on.json()["org_four_eyes"] is True and on.json()["rules_four_eyes"] is False
    try:
        before = post_name(stack)
        label = unique("post")
        patched = held(
            people.hana.patch(EDITED_POST, json={"name": {"zh": label, "en": label}}, headers={"If-Match": "*"})
        )
        assert post_name(stack) == before
        assert people.hana.post(f"/admin/changes/{patched['id']}/approve", json={}).status_code == 403, (
            "not by its author"
        )
        assert people.carl.post(f"/admin/changes/{patched['id']}/approve", json={}).status_code == 403, (
            "not by compliance"
        )
        approved = people.hugo.post(f"/admin/changes/{patched['id']}/approve", json={})
        assert approved.status_code == 200 and approved.json()["status"] == "applied", approved.text
        assert post_name(stack) == label

        document = stack.root.get(f"/admin/orgs/{EDITED}", headers={"Accept": "application/yaml"}).text
        versions = stack.root.get(f"/admin/orgs/{EDITED}/versions").json()["items"]
        old = next(v for v in versions if v["kind"] == "org" and v["version"] < approved.json()["version"])
        waiting = [
            held(
                people.hana.post(
                    f"/admin/orgs/{EDITED}/posts",
                    json={"id": unique("p"), "name": {"zh": "岗", "en": "post"}, "department": "business_dept"},
                )
            ),
            held(people.hana.delete(f"/admin/orgs/{EDITED}/posts/{temporary}", headers={"If-Match": "*"})),
            held(
                people.hana.put(
                    f"/admin/orgs/{EDITED}", content=document.encode(), headers={**YAML_TYPE, "If-Match": "*"}
                )
            ),
            held(people.hana.post(f"/admin/orgs/{EDITED}/versions/{old['version']}/restore")),
            held(
                people.hana.patch(
                    EDITED_POST, json={"headcount": 3}, headers={"If-Match": "*", "X-Effective-At": soon(3600)}
                )
            ),
        ]
        assert post_name(stack) == label
        for pending in waiting:
            assert people.hugo.post(f"/admin/changes/{pending['id']}/reject", json={}).json()["status"] == "rejected"

        exported = tmp_path / f"{EDITED}.yaml"
        exported.write_text(document.replace(f"en: {label}", "en: renamed by the cli"), encoding="utf-8")
        done = cli(stack, "import", str(exported))
        assert done.returncode == 1 and "four-eyes applies to org chart changes" in done.stderr, done.stderr
        assert post_name(stack) == label
    finally:
        stack.root.put(f"/admin/orgs/{EDITED}/settings", json={"org_four_eyes": False})


def test_only_a_system_admin_turns_four_eyes_on_or_off_and_a_typo_is_refused(stack: Stack, people: People) -> None:
    assert people.carl.put(f"/admin/orgs/{EDITED}/settings", json={"rules_four_eyes": False}).status_code == 403
    assert people.hana.put(f"/admin/orgs/{EDITED}/settings", json={"org_four_eyes": False}).status_code == 403
    typo = stack.root.put(f"/admin/orgs/{EDITED}/settings", json={"org_foureyes": True})
    assert typo.status_code == 400 and stack.root.get(f"/admin/orgs/{EDITED}/settings").json()["org_four_eyes"] is False
    assert stack.root.put(f"/admin/orgs/{EDITED}/settings", json={}).status_code == 400


def test_with_the_defaults_on_a_new_organisation_and_its_rule_pack_wait_for_a_second_system_admin(
    tmp_path: Path,
) -> None:
    """DUTYLINE_ORG_FOUR_EYES and DUTYLINE_RULES_FOUR_EYES: creating an organisation is an org chart change too."""
    from tests.api.admin_client import create_admin
    from tests.conftest import POSTGRES_URL, fresh_database
    from tests.live import LiveServer

    defaults = {"DUTYLINE_ORG_FOUR_EYES": "true", "DUTYLINE_RULES_FOUR_EYES": "true"}
    with fresh_database("postgresql" if POSTGRES_URL else "sqlite", tmp_path) as url:
        root = create_admin(url)
        server = LiveServer(url, extra_env=defaults)
        try:
            server.wait_ready()
            first = Client(server, root)
            second = Client(
                server, token_for(first, "root2", ["admin"], [{"role": "system_admin", "organisation": "*"}])
            )
            document = (REPO / "policies/orgs/sales_company.yaml").read_bytes()
            created = held(first.post("/admin/orgs", content=document, headers=YAML_TYPE))
            assert first.get(f"/admin/orgs/{ORG}").status_code == 404, "not created yet"
            assert first.post(f"/admin/changes/{created['id']}/approve", json={}).status_code == 403
            approved = second.post(f"/admin/changes/{created['id']}/approve", json={})
            assert approved.status_code == 200 and approved.json()["status"] == "applied", approved.text
            assert first.get(f"/admin/orgs/{ORG}").status_code == 200
            assert first.get(f"/admin/orgs/{ORG}/settings").json() == {
                "organisation": ORG,
                "rules_four_eyes": True,
                "org_four_eyes": True,
            }
            rules = YAML(typ="safe").load((REPO / "rules/sales_company.yaml").read_text(encoding="utf-8"))
            pack = held(first.post(f"/admin/orgs/{ORG}/rules", json={"name": ORG, "pack": rules}))
            assert first.get(PACK).status_code == 404
            assert second.post(f"/admin/changes/{pack['id']}/approve", json={}).json()["status"] == "applied"
            assert first.get(PACK).status_code == 200
            env = {**os.environ, "DUTYLINE_DATABASE_URL": url, "DUTYLINE_SEED_DIR": "", **defaults}
            done = subprocess.run(
                [sys.executable, "-m", "dutyline", "import", "policies/orgs/hotel.yaml"],
                capture_output=True,
                text=True,
                env=env,
                cwd=REPO,
                timeout=120,
            )
            assert done.returncode == 1 and "four-eyes applies to org chart changes of 'hotel'" in done.stderr, (
                done.stderr
            )
        finally:
            server.stop()
