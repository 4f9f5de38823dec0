"""The impact preview over time: a change is previewed at every moment it matters, and a rule pack change field
by field."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from dutyline.engines import impact
from dutyline.engines.compiler import CompiledOrg, compile_org
from dutyline.engines.rules import compile_rules
from dutyline.orgmodel.document import Assignment, Organisation
from dutyline.orgmodel.windows import instant, zone
from dutyline.rulemodel.document import RulePack
from dutyline.services import sources

REPO = Path(__file__).resolve().parents[2]
NOW = instant("2026-12-07T10:00", zone("Asia/Shanghai"))  # a Monday
NEXT_MONDAY, NEXT_FRIDAY_END = (
    instant("2026-12-14", zone("Asia/Shanghai")),
    instant("2026-12-19", zone("Asia/Shanghai")),
)


@pytest.fixture(scope="module")
def seed() -> tuple[Organisation, RulePack]:
    loaded = sources.load([REPO / "policies/orgs/ninger_branch.yaml", REPO / "rules/ninger_branch.yaml"])
    return loaded.organisations["ninger_branch"].organisation, loaded.rule_packs[0].pack


def _acting_next_week(document: Organisation) -> CompiledOrg:
    acting = Assignment(
        post="senior_teller", kind="acting", valid_from="2026-12-14", valid_to="2026-12-18", stands_in_for="yang_li"
    )
    people = [
        msgspec.structs.replace(p, assignments=[*p.assignments, acting]) if p.id == "huang_wei" else p
        for p in document.people
    ]
    return compile_org(msgspec.structs.replace(document, people=people))


def test_an_acting_assignment_for_next_week_changes_nothing_now_and_is_previewed_in_its_window(seed) -> None:  # type: ignore[no-untyped-def]
    document, pack = seed
    before, after = compile_org(document), _acting_next_week(document)
    assert impact.permission_changes(before, after, NOW) == [], "now, nobody gains or loses anything"
    at = impact.moments(before, after, NOW)
    assert at[0] == NOW and NEXT_MONDAY in at and NEXT_FRIDAY_END in at
    timeline = impact.permission_timeline(before, after, at)
    assert timeline and all(c.person == "huang_wei" and c.change == "gained" for c in timeline)
    assert {(c.since, c.until) for c in timeline} == {(NEXT_MONDAY, NEXT_FRIDAY_END)}
    limits = impact.limit_timeline(before, after, compile_rules([pack], before), compile_rules([pack], after), at)
    entering = next(c for c in limits if c.rule == "transaction_limit")
    assert (entering.person, entering.before, entering.after) == ("huang_wei", 50_000, 200_000)
    assert (entering.since, entering.until) == (NEXT_MONDAY, NEXT_FRIDAY_END), "she may enter 150,000 next week"


def test_a_change_effective_later_is_previewed_from_its_effective_date(seed) -> None:  # type: ignore[no-untyped-def]
    document, _ = seed
    before = compile_org(document)
    later = instant("2026-12-10", zone("Asia/Shanghai"))
    assert impact.moments(before, before, NOW, effective=later)[0] == later


def test_a_rule_change_is_shown_field_by_field_with_the_posts_names(seed) -> None:  # type: ignore[no-untyped-def]
    document, pack = seed
    data = msgspec.to_builtins(pack)
    data["rules"][0]["limits"]["teller"] = 80_000
    data["rules"] = [r for r in data["rules"] if r["id"] != "incident_report"]
    changed = msgspec.convert(data, RulePack)
    lines = [(c.rule, c.field, c.en) for c in impact.rule_changes(pack, changed, compile_org(document))]
    assert ("transaction_limit", "limits.teller", "transaction_limit · Integrated Teller: 50,000 → 80,000") in lines
    assert ("incident_report", "", "incident_report: rule removed") in lines
    zh = next(c.zh for c in impact.rule_changes(pack, changed, compile_org(document)) if c.field == "limits.teller")
    assert zh == "transaction_limit · 综合经办柜员:50,000 → 80,000"


def test_a_rule_change_names_the_posts_it_picks_and_the_days_of_its_windows(seed) -> None:  # type: ignore[no-untyped-def]
    document, pack = seed
    data = msgspec.to_builtins(pack)
    dual = next(r for r in data["rules"] if r["kind"] == "dual_control")
    window = next(r for r in data["rules"] if r["kind"] == "time_window")
    before_posts = list(dual["posts"])
    dual["posts"] = [*before_posts, "teller"] if "teller" not in before_posts else before_posts[:-1]
    window["windows"] = [{"days": ["mon", "tue"], "start": "09:00", "end": "12:00"}]
    window["enabled"] = False
    changed = msgspec.convert(data, RulePack)
    org = compile_org(document)
    lines = {
        c.field: (c.zh, c.en) for c in impact.rule_changes(pack, changed, org) if c.rule in (dual["id"], window["id"])
    }
    zh, en = lines["posts"]
    assert "Integrated Teller" in en and "综合经办柜员" in zh and "teller" not in en.split(": ", 1)[1]
    assert lines["windows"][1].endswith("→ Mon,Tue 09:00–12:00")
    assert lines["windows"][0].endswith("→ 周一,周二 09:00–12:00")
    assert lines["enabled"] == (
        f"{window['id']} · enabled:启用 → 停用",
        f"{window['id']} · enabled: enabled → disabled",
    )
