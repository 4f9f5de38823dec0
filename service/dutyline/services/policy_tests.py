"""Running policy tests as data: decision tables (`policies/tests`) and rule cases (`rules/tests`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from dutyline.engines.compiler import compile_org
from dutyline.engines.decision_tables import CaseResult, parse_table, run_table
from dutyline.engines.rule_tests import parse_rule_table, run_rule_table
from dutyline.engines.rulehost import RuleBackend, new_backend
from dutyline.engines.rules import compile_rules
from dutyline.errors import Issue
from dutyline.services import sources


def run_all(paths: Iterable[str | Path], host: RuleBackend | None = None) -> tuple[list[CaseResult], list[Issue]]:
    """Every case under `paths`, or the errors that stop them from running."""
    loaded = sources.load(paths)
    if loaded.errors:
        return [], loaded.errors
    orgs = {org_id: compile_org(p.organisation) for org_id, p in loaded.organisations.items()}
    rules = {org_id: compile_rules([p.pack for p in loaded.packs_of(org_id)], org) for org_id, org in orgs.items()}
    host = host or new_backend()
    host.load({name: cond for r in rules.values() for name, cond in r.rulesets.items()})
    results: list[CaseResult] = []
    issues: list[Issue] = []
    for data, source in loaded.decision_tables:
        table, found = parse_table(data, source)
        issues += found
        if table is not None:
            results += run_table(table, source, orgs)
    for data, source in loaded.rule_tables:
        table, found = parse_rule_table(data, source)
        issues += found
        if table is not None:
            results += run_rule_table(table, source, orgs, rules, host)
    return results, issues
