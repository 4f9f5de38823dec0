"""Past policies for point-in-time checks: the organisation and the rule packs in force at a moment, their rules
in rule hosts of their own that are unloaded when evicted from the cache (never while a decision uses them)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from dutyline.services import orgs
from dutyline.services.decisions import DecisionService, Question
from dutyline.services.policies import PolicyService
from dutyline.services.versions import Versions
from dutyline.store.tables import OrgVersionRow

REPO = Path(__file__).resolve().parents[2]
PACK = REPO / "rules" / "sales_company.yaml"
Sessions = sessionmaker[Session]
# A sales representative's expense claim of 8,000 CNY: above the seed pack's per-claim limit of 5,000.
CLAIM = Question(
    "li_na", "expense", "submit", organisation="sales_company", context={"amount": 8000, "currency": "CNY"}
)


def moment() -> dt.datetime:
    """A moment strictly between the versions stored before and after it."""
    time.sleep(0.05)
    now = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    return now


def history(sessions: Sessions, tmp_path: Path) -> tuple[list[dt.datetime], list[int]]:
    """sales_company without rule packs, then with the seed pack (a claim limit of 5,000 CNY for a sales
    representative), then with that limit raised to 10,000: a moment in force of each, and the pack versions."""
    orgs.import_paths(sessions, [REPO / "policies" / "orgs" / "sales_company.yaml"], author="test")
    no_packs = moment()
    first = orgs.import_paths(sessions, [PACK], author="test")
    seed_pack = moment()
    raised = tmp_path / "sales_company.yaml"
    old, new = "  sales_representative: 5000\n", "  sales_representative: 10000\n"
    text = PACK.read_text(encoding="utf-8")
    assert text.count(old) == 1
    raised.write_text(text.replace(old, new), encoding="utf-8")
    second = orgs.import_paths(sessions, [raised], author="test")
    raised_pack = moment()
    return [no_packs, seed_pack, raised_pack], [first[0].version, second[0].version]


def test_an_as_of_decision_uses_the_rule_packs_in_force_then(sessions: Sessions, tmp_path: Path) -> None:
    (no_packs, seed_pack, raised_pack), (v1, v2) = history(sessions, tmp_path)
    versions = Versions(sessions)
    decisions = DecisionService(PolicyService(sessions))
    try:
        outcomes = []
        for at in (no_packs, seed_pack, raised_pack):
            with versions.policy_at("sales_company", at) as past:
                assert past is not None
                answer = decisions.answer(CLAIM, past)
                outcomes.append((dict(past.rule_versions), answer.outcome, [h.rule for h in answer.verdict.hits]))
        assert outcomes == [
            ({}, "allow", []),  # before the pack existed: no business rules at all
            ({"sales_company": v1}, "needs_approval", ["expense_claim_limit"]),
            ({"sales_company": v2}, "allow", []),
        ]
        with versions.policy_at("sales_company", dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) as past:
            assert past is None, "the organisation did not exist yet"
    finally:
        versions.close()


def test_evicted_past_rules_are_unloaded_once_no_decision_uses_them(sessions: Sessions, tmp_path: Path) -> None:
    (_, seed_pack, raised_pack), _ = history(sessions, tmp_path)
    versions = Versions(sessions, cache_size=1)
    with versions.policy_at("sales_company", seed_pack) as first:
        assert first is not None and first.host.names() == frozenset(first.rules.rulesets) != frozenset()
        with versions.policy_at("sales_company", raised_pack) as second:
            assert second is not None and second.host is not first.host
            assert first.host.names(), "evicted while a decision uses it: still loaded"
        assert second.host.names(), "cached: stays loaded after its decision"
    assert first.host.names() == frozenset(), "evicted and no longer used: unloaded"
    with versions.policy_at("sales_company", raised_pack) as again:
        assert again is second, "a cache hit is the same hosted policy"
    with versions.policy_at("sales_company", seed_pack) as third:
        assert third is not None and third is not first
        assert second.host.names() == frozenset(), "evicted while unused: unloaded at once"
    versions.close()
    assert third.host.names() == frozenset()


def test_a_past_rule_pack_this_release_cannot_read_makes_as_of_decisions_denials(
    sessions: Sessions, tmp_path: Path
) -> None:
    """Fail closed: a stored pack of a rule kind no longer known (an older release's) is an internal error, a
    deny with its reason, never an answer made without the rules that were in force."""
    (_, seed_pack, _), (v1, _) = history(sessions, tmp_path)
    with sessions.begin() as session:
        session.execute(
            update(OrgVersionRow)
            .where(OrgVersionRow.version == v1)
            .values(document='{"org": "sales_company", "rules": [{"kind": "retired_kind", "id": "old"}]}')
        )
    versions = Versions(sessions)
    decisions = DecisionService(PolicyService(sessions))
    try:
        with versions.policy_at("sales_company", seed_pack) as past:
            assert past is not None and past.error is not None and "sales_company" in past.error
            answer = decisions.answer(CLAIM, past)
        assert (answer.outcome, answer.decision.code) == ("deny", "internal_error")
        assert [r.code for r in answer.reasons] == ["internal_error"]
    finally:
        versions.close()
