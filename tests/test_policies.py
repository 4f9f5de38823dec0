"""The policy content itself: `policies/` validates, and every decision-table case holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from dutyline.engines.decision_tables import CaseResult
from dutyline.services import sources
from dutyline.services.policy_tests import run_all

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
    results, issues = run_all([REPO / "policies", REPO / "rules"])
    assert [str(i) for i in issues] == []
    return results


def test_policies_and_rules_validate_without_errors_or_warnings() -> None:
    loaded = sources.load([REPO / "policies", REPO / "rules"])
    assert [str(i) for i in loaded.issues] == []
    assert sorted(loaded.organisations) == sorted(SEED_ORGS)
    assert sorted({p.pack.org for p in loaded.rule_packs}) == sorted(SEED_ORGS)


@pytest.mark.parametrize("org", SEED_ORGS)
def test_every_seed_organisation_has_a_decision_table_a_rule_pack_and_rule_cases(org: str) -> None:
    assert (REPO / "policies" / "tests" / f"{org}.yaml").exists()
    assert (REPO / "rules" / f"{org}.yaml").exists()
    assert (REPO / "rules" / "tests" / f"{org}.yaml").exists()


@pytest.mark.parametrize("result", _results(), ids=lambda r: f"{r.org}:{r.line}")
def test_decision_table_case(result: CaseResult) -> None:
    assert result.passed, f"{result.file}:{result.line} {result.name}: {result.message}"
