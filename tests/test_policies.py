"""The policy content itself: `policies/` validates, and every decision-table case holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from dutyline.engines.compiler import compile_org
from dutyline.engines.decision_tables import CaseResult, parse_table, run_table
from dutyline.services import sources

REPO = Path(__file__).resolve().parents[1]
SEED_ORGS = [
    "ninger_branch",
    "water_utility",
    "restaurant",
    "hotel",
    "logistics",
    "securities_branch",
    "sales_company",
]


def _results() -> list[CaseResult]:
    loaded = sources.load([REPO / "policies"])
    compiled = {org_id: compile_org(p.organisation) for org_id, p in loaded.organisations.items()}
    results: list[CaseResult] = []
    for data, source in loaded.decision_tables:
        table, issues = parse_table(data, source)
        assert table is not None, issues
        results += run_table(table, source, compiled)
    return results


def test_policies_validate_without_errors_or_warnings() -> None:
    loaded = sources.load([REPO / "policies"])
    assert [str(i) for i in loaded.issues] == []
    assert sorted(loaded.organisations) == sorted(SEED_ORGS)


@pytest.mark.parametrize("org", SEED_ORGS)
def test_every_seed_organisation_has_a_decision_table(org: str) -> None:
    assert (REPO / "policies" / "tests" / f"{org}.yaml").exists()


@pytest.mark.parametrize("result", _results(), ids=lambda r: f"{r.org}:{r.line}")
def test_decision_table_case(result: CaseResult) -> None:
    assert result.passed, f"{result.file}:{result.line} {result.name}: {result.message}"
