"""`dutyline explain` decides as the service does: the duty model, then the business rules, with context.

The property of issue 12: for every decision-table case and every rule case of the seed, `dutyline explain`
(against the same database) and a live server's `/v1/check` give the same decision, code, reasons, rules,
approvers and obligations.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dutyline.engines.decision_tables import parse_table
from dutyline.engines.rule_tests import parse_rule_table
from dutyline.orgmodel.source import load_yaml
from tests.conftest import REPO, fresh_database, run_cli
from tests.hardening.conftest import load_content
from tests.live import LiveServer

FIXED_AT = "2026-07-06T10:00"  # a Monday morning: cases without a moment of their own are decided at it


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    with fresh_database("sqlite", tmp_path_factory.mktemp("explain")) as url:
        load_content(url)
        live = LiveServer(url)
        try:
            live.wait_ready()
            yield live, url
        finally:
            live.stop()


def _bodies() -> list[tuple[str, dict[str, Any]]]:
    """A /v1/check body for every case of policies/tests and rules/tests."""
    out = []
    for path in sorted((REPO / "policies" / "tests").glob("*.yaml")):
        data, source = load_yaml(path.read_text(encoding="utf-8"), str(path))
        table, _ = parse_table(data, source)
        for case in table.cases:
            subject = {"id": case.post, "type": "post"} if case.post else {"id": case.person}
            out.append(
                (
                    f"{path.stem}: {case.name}",
                    {
                        "organisation": table.org,
                        "subject": subject,
                        "resource": {"type": case.resource},
                        "action": case.action,
                        "at": case.at or FIXED_AT,
                    },
                )
            )
    for path in sorted((REPO / "rules" / "tests").glob("*.yaml")):
        data, source = load_yaml(path.read_text(encoding="utf-8"), str(path))
        table, _ = parse_rule_table(data, source)
        for case in table.cases:
            r = case.request
            resource: dict[str, Any] = {"type": r.resource}
            if r.resource_id:
                resource["id"] = r.resource_id
            if r.resource_properties:
                resource["properties"] = r.resource_properties
            subject: dict[str, Any] = {"id": r.person}
            if r.subject_properties:
                subject["properties"] = r.subject_properties
            out.append(
                (
                    f"rules {path.stem}: {case.name}",
                    {
                        "organisation": table.org,
                        "subject": subject,
                        "resource": resource,
                        "action": r.action,
                        "at": r.at or FIXED_AT,
                        "context": r.context,
                    },
                )
            )
    return out


def _comparable(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k not in ("decision_id", "approval")}


def test_explain_and_the_service_agree_on_every_decision_table_and_rule_case(
    server: tuple[LiveServer, str], tmp_path: Path
) -> None:
    live, url = server
    bodies = _bodies()
    assert len(bodies) > 400
    requests = tmp_path / "requests.jsonl"
    requests.write_text("".join(json.dumps(b, ensure_ascii=False) + "\n" for _, b in bodies), encoding="utf-8")
    explained = run_cli("explain", "--requests", str(requests), database_url=url, check=True)
    lines = [json.loads(line) for line in explained.stdout.splitlines()]
    assert len(lines) == len(bodies)
    disagreements = []
    with httpx.Client(base_url=live.url, timeout=30) as http:
        for (name, body), cli in zip(bodies, lines, strict=True):
            served = http.post("/v1/check", json=body)
            assert served.status_code == 200, served.text
            if _comparable(served.json()) != _comparable(cli):
                disagreements.append(f"{name}: service {_comparable(served.json())} / explain {_comparable(cli)}")
    assert not disagreements, "\n".join(disagreements[:5])


def test_explain_of_one_question_takes_context_and_prints_the_rules_reasons_in_either_language(
    server: tuple[LiveServer, str],
) -> None:
    _, url = server
    night = run_cli(
        "explain",
        "ninger_branch",
        "huang_wei",
        "transaction",
        "enter",
        "--at",
        "2026-12-02T03:00",
        "--context",
        "amount=120000",
        "--context",
        "currency=CNY",
        "--lang",
        "en",
        database_url=url,
    )
    assert night.returncode == 0, night.stderr
    first, *reasons = night.stdout.splitlines()
    assert first.startswith("DENY (rule_denied): huang_wei enter transaction in ninger_branch")
    assert any("counter_business_hours" in line and "2026-12-02 03:00" in line for line in reasons)
    assert any("120,000 CNY against this post's limit of 50,000 CNY" in line for line in reasons)
    assert not any("规则" in line for line in reasons), "English only"
    day = run_cli(
        "explain",
        "ninger_branch",
        "huang_wei",
        "transaction",
        "enter",
        "--at",
        "2026-12-02T10:00",
        "--context-json",
        '{"amount": 120000, "currency": "cny"}',
        "--lang",
        "zh",
        "--json",
        database_url=url,
    )
    answer = json.loads(day.stdout)
    assert (answer["decision"], answer["code"]) == ("needs_approval", "needs_approval")
    assert [s["post"] for s in answer["approvers"]] == ["operations_manager", "director"]


def test_explain_of_an_org_file_uses_the_rule_packs_beside_it() -> None:
    result = run_cli(
        "explain",
        str(REPO / "policies/orgs/ninger_branch.yaml"),
        "huang_wei",
        "transaction",
        "enter",
        "--at",
        "2026-12-02T03:00",
        "--context",
        "amount=100",
        "--context",
        "currency=CNY",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("DENY (rule_denied)") and "counter_business_hours" in result.stdout


def test_explain_refuses_a_context_that_is_not_key_value() -> None:
    result = run_cli(
        "explain",
        str(REPO / "policies/orgs/ninger_branch.yaml"),
        "huang_wei",
        "transaction",
        "enter",
        "--context",
        "amount",
    )
    assert result.returncode == 2 and "KEY=VALUE" in result.stderr
