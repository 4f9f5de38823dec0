"""Editor.preview directly: what a change would do, nothing stored. Who gains and loses which permissions, whose
approver chain changes, separation-of-duties conflicts, rule field changes and limits over time, and each check
decided under the current and the proposed policy. On the seed's sales_company, which no test here changes."""

from __future__ import annotations

import copy
import time
from typing import Any

import msgspec
import pytest

from dutyline.engines.decision import Check
from dutyline.errors import Invalid, NotFound
from dutyline.orgmodel.windows import instant, zone
from dutyline.runtime import Runtime
from dutyline.services.editing import Edit
from tests.services.conftest import current

pytestmark = pytest.mark.live
ORG = "sales_company"


def unchanged(runtime: Runtime) -> tuple[int, str | None]:
    return current(runtime, ORG, "posts/sales_analyst")[2], current(runtime, ORG, "posts/sales_analyst")[1]


def test_a_previewed_post_change_shows_gains_chains_and_checks_and_stores_nothing(runtime: Runtime) -> None:
    before = unchanged(runtime)
    edit = Edit(
        "posts/sales_analyst",
        "patch",
        {"reports_to": "senior_sales_representative", "inherits": ["sales_representative"]},
    )
    check = Check("chen_jing", "customer", "contact", time.time())
    preview = runtime.editor.preview(ORG, edit, [check])
    assert preview.valid is True and preview.issues == []
    gained = {(p.person, g.resource, g.action) for p in preview.permissions for g in p.gained}
    assert ("chen_jing", "customer", "contact") in gained
    chain = next(c for c in preview.approver_chains if c.post == "sales_analyst")
    assert tuple(chain.before) == ("department_head",) and chain.after[0] == "senior_sales_representative"
    assert msgspec.to_builtins(preview.checks) == [
        {
            "current": {"decision": "deny", "code": "no_grant", "rules": [], "approvers": []},
            "proposed": {"decision": "allow", "code": "granted", "rules": [], "approvers": []},
            "changed": True,
        }
    ]
    assert unchanged(runtime) == before, "a preview changes nothing"


def test_a_previewed_separation_of_duties_conflict_is_invalid_and_named(runtime: Runtime) -> None:
    person, _, _ = current(runtime, ORG, "people/li_na")
    assignments = [*person["assignments"], {"post": "sales_analyst", "kind": "concurrent"}]
    preview = runtime.editor.preview(ORG, Edit("people/li_na", "patch", {"assignments": assignments}))
    assert preview.valid is False
    [conflict] = preview.separation_of_duties
    assert (
        "analyst_not_seller" in conflict.message
        and conflict.path == "assignments[1]"
        and conflict.code == "sod_conflict"
    )


def test_an_acting_assignment_previewed_gains_permissions_only_inside_its_window(runtime: Runtime) -> None:
    timezone = zone(runtime.policies.current.get(ORG).document.timezone)  # type: ignore[union-attr]
    start, end = instant("2030-03-01", timezone), instant("2030-03-10", timezone)
    person, _, _ = current(runtime, ORG, "people/chen_jing")
    acting = {
        "post": "department_head",
        "kind": "acting",
        "valid_from": "2030-03-01",
        "valid_to": "2030-03-09",
        "stands_in_for": "wang_jianguo",
    }
    edit = Edit("people/chen_jing", "patch", {"assignments": [*person["assignments"], acting]})
    preview = runtime.editor.preview(ORG, edit, at=instant("2030-02-01", timezone))
    gains = [c for c in preview.timeline if c.person == "chen_jing" and c.change == "gained"]
    assert gains, preview.timeline
    assert {(c.since, c.until) for c in gains} == {(preview.moments[1], preview.moments[2])}, "the window only"
    assert [instant(m[:19], zone("UTC")) for m in preview.moments[1:3]] == [start, end]
    assert preview.permissions == [], "at `at` (before the window) nothing changes yet"


def test_a_previewed_rule_pack_lists_each_field_before_and_after_and_the_limits_it_changes(runtime: Runtime) -> None:
    pack, _, _ = current(runtime, ORG, f"rules/{ORG}")
    draft = copy.deepcopy(pack)
    rule = next(r for r in draft["rules"] if r["id"] == "expense_claim_limit")
    rule["limits"]["sales_representative"] = 2000
    claim = Check("li_na", "expense", "submit", time.time(), context={"amount": 3000, "currency": "CNY"})
    preview = runtime.editor.preview(ORG, Edit(f"rules/{ORG}", "put", draft), [claim])
    assert preview.valid is True and preview.note == "rule pack changes do not change duty permissions"
    [field] = [c for c in preview.rule_changes if c.rule == "expense_claim_limit"]
    assert (field.field, field.before, field.after) == ("limits.sales_representative", 5000, 2000)
    lowered = {(c.person, c.before, c.after) for c in preview.limits if c.rule == "expense_claim_limit"}
    assert ("li_na", 5000, 2000) in lowered
    [check] = preview.checks
    assert (check.current.decision, check.proposed.decision, check.changed) == (
        "allow",
        "needs_approval",
        True,
    )


def test_a_previewed_invalid_rule_pack_is_reported_not_raised(runtime: Runtime) -> None:
    pack, _, _ = current(runtime, ORG, f"rules/{ORG}")
    draft: dict[str, Any] = copy.deepcopy(pack)
    draft["rules"][0]["limits"]["no_such_post"] = 1
    preview = runtime.editor.preview(ORG, Edit(f"rules/{ORG}", "put", draft))
    assert preview.valid is False and any("no_such_post" in i.message for i in preview.issues)


def test_a_previewed_merge_patch_that_makes_a_rule_pack_a_number_is_invalid(runtime: Runtime) -> None:
    with pytest.raises(Invalid, match=f"rule pack '{ORG}' must be an object"):
        runtime.editor.preview(ORG, Edit(f"rules/{ORG}", "patch", 49129))


def test_previewing_a_change_to_an_unknown_organisation_or_entity_is_not_found(runtime: Runtime) -> None:
    with pytest.raises(NotFound, match="organisation 'nowhere' not found"):
        runtime.editor.preview("nowhere", Edit("posts/x", "patch", {}))
    with pytest.raises(NotFound, match="no such collection 'widgets'"):
        runtime.editor.preview(ORG, Edit("widgets/x", "patch", {}))


def test_a_previewed_deletion_of_the_organisation_loses_every_permission(runtime: Runtime) -> None:
    preview = runtime.editor.preview(ORG, Edit("org", "delete"))
    assert preview.valid is True and preview.permissions and all(not p.gained for p in preview.permissions)
    assert {p.person for p in preview.permissions} >= {"li_na", "wang_jianguo"}
