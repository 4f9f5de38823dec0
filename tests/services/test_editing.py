"""Editor directly: reading entities with their ETags, changes guarded by If-Match, validated as `dutyline validate`
validates files (rule packs against the changed document too), stored as versions, audited, and served at once;
changes held for a second person (four-eyes) or for their time. Each test edits a copy of sales_company."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from dutyline.errors import Conflict, Forbidden, Invalid, NotFound, PreconditionFailed, PreconditionRequired
from dutyline.runtime import Runtime
from dutyline.services.editing import Edit, Held, Written
from dutyline.services.editing.pending import UNREADABLE
from dutyline.store.tables import AdminChangeRow, AuditRow
from tests.services.conftest import copy_of, current

pytestmark = pytest.mark.live


@pytest.fixture
def org(runtime: Runtime, tmp_path: Path) -> str:
    return copy_of(runtime, tmp_path)


def audit_actions(runtime: Runtime, org: str) -> list[str]:
    with runtime.sessions() as session:
        return list(session.scalars(select(AuditRow.action).where(AuditRow.organisation == org).order_by(AuditRow.seq)))


def rename(org: str, runtime: Runtime, etag: str | None, en: str = "Data Analyst") -> Written | Held:
    return runtime.editor.submit(
        org, Edit("posts/sales_analyst", "patch", {"name": {"zh": "分析员", "en": en}}), etag, "ann", "rename"
    )


def test_an_entity_is_read_with_its_etag_and_an_absent_one_is_not_found(runtime: Runtime, org: str) -> None:
    value, etag, version = current(runtime, org, "posts/sales_analyst")
    assert value["id"] == "sales_analyst" and etag is not None and etag.startswith('"')
    assert version == runtime.policies.current.get(org).version  # type: ignore[union-attr]
    with pytest.raises(NotFound, match=f"post 'nope' not found in '{org}'"):
        current(runtime, org, "posts/nope")
    with pytest.raises(NotFound, match="no such collection 'widgets'"):
        current(runtime, org, "widgets/x")
    with pytest.raises(NotFound, match="organisation 'no_such_org' not found"):
        current(runtime, "no_such_org", "posts/sales_analyst")


def test_a_change_with_the_etag_read_is_stored_audited_and_served_at_once(runtime: Runtime, org: str) -> None:
    _, etag, before = current(runtime, org, "posts/sales_analyst")
    written = rename(org, runtime, etag)
    assert isinstance(written, Written) and written.changed and written.version > before
    assert written.value["name"] == {"zh": "分析员", "en": "Data Analyst"} and written.etag != etag
    served = runtime.policies.current.get(org)
    assert served is not None and served.version == written.version
    assert next(p for p in served.document.posts if p.id == "sales_analyst").name.en == "Data Analyst"
    assert audit_actions(runtime, org)[-1] == "posts_changed"


def test_a_change_without_if_match_or_with_a_stale_one_is_refused_and_stores_nothing(
    runtime: Runtime, org: str
) -> None:
    _, etag, _ = current(runtime, org, "posts/sales_analyst")
    with pytest.raises(PreconditionRequired, match="If-Match is required to change post 'sales_analyst'"):
        rename(org, runtime, None)
    rename(org, runtime, etag)
    with pytest.raises(PreconditionFailed, match="post 'sales_analyst' has changed since you read it"):
        rename(org, runtime, etag, "Another Name")
    assert current(runtime, org, "posts/sales_analyst")[0]["name"]["en"] == "Data Analyst"


def test_creating_what_exists_is_a_conflict_and_an_id_cannot_change(runtime: Runtime, org: str) -> None:
    value, _, _ = current(runtime, org, "posts/sales_analyst")
    with pytest.raises(Conflict, match=f"post 'sales_analyst' already exists in '{org}'"):
        runtime.editor.submit(org, Edit("posts/sales_analyst", "create", value), None, "ann", "")
    with pytest.raises(Invalid, match="id: the body's id 'other' differs from the URL's 'new_post'") as refused:
        runtime.editor.submit(org, Edit("posts/new_post", "create", {**value, "id": "other"}), None, "ann", "")
    assert [i.path for i in refused.value.issues] == ["id"]


def test_an_invalid_entity_is_refused_with_every_issue_and_nothing_is_stored(runtime: Runtime, org: str) -> None:
    value, etag, before = current(runtime, org, "posts/sales_analyst")
    with pytest.raises(Invalid) as refused:
        runtime.editor.submit(
            org, Edit("posts/sales_analyst", "put", {**value, "department": "no_such_dept"}), etag, "ann", ""
        )
    assert any("no_such_dept" in i.message for i in refused.value.issues), refused.value.issues
    assert current(runtime, org, "posts/sales_analyst")[2] == before


def test_removing_a_post_a_rule_pack_names_is_refused_naming_the_pack(runtime: Runtime, org: str) -> None:
    _, etag, _ = current(runtime, org, "posts/senior_sales_representative")
    _, person_etag, _ = current(runtime, org, "people/liu_yang")  # its only holder: gone first
    runtime.editor.submit(org, Edit("people/liu_yang", "delete"), person_etag, "ann", "")
    with pytest.raises(Invalid, match="a rule pack that depends on this organisation would break") as refused:
        runtime.editor.submit(org, Edit("posts/senior_sales_representative", "delete"), etag, "ann", "")
    assert any(i.file == f"rules/{org}" for i in refused.value.issues), refused.value.issues


def test_a_rule_pack_change_is_validated_against_the_organisation(runtime: Runtime, org: str) -> None:
    pack, etag, _ = current(runtime, org, f"rules/{org}")
    rules = [dict(r) for r in pack["rules"]]
    rules[0] = {**rules[0], "limits": {**rules[0]["limits"], "no_such_post": 1}}
    with pytest.raises(Invalid) as refused:
        runtime.editor.submit(org, Edit(f"rules/{org}", "put", {**pack, "rules": rules}), etag, "ann", "")
    assert any("no_such_post" in i.message for i in refused.value.issues), refused.value.issues
    rules[0] = {**pack["rules"][0], "limits": {**pack["rules"][0]["limits"], "sales_representative": 6000}}
    written = runtime.editor.submit(org, Edit(f"rules/{org}", "put", {**pack, "rules": rules}), etag, "ann", "raise")
    assert isinstance(written, Written) and written.value["rules"][0]["limits"]["sales_representative"] == 6000
    assert audit_actions(runtime, org)[-1] == "rules_replaced"


def test_with_four_eyes_a_change_waits_for_a_second_person(runtime: Runtime, org: str) -> None:
    assert runtime.editor.set_four_eyes(org, "root", org=True).org
    _, etag, before = current(runtime, org, "posts/sales_analyst")
    held = rename(org, runtime, etag)
    assert isinstance(held, Held) and (held.change.status, held.change.reason) == ("pending", "four_eyes")
    assert current(runtime, org, "posts/sales_analyst")[2] == before, "nothing applied yet"
    with pytest.raises(Forbidden, match="ann may not approve a change they made"):
        runtime.editor.decide_change(held.change.id, "ann", True)
    applied = runtime.editor.decide_change(held.change.id, "bob", True, "looks right")
    assert (applied.status, applied.decided_by) == ("applied", "bob") and applied.version > before
    assert current(runtime, org, "posts/sales_analyst")[0]["name"]["en"] == "Data Analyst"
    with pytest.raises(Conflict, match=f"change {held.change.id} is applied, not pending"):
        runtime.editor.decide_change(held.change.id, "bob", False)


def test_a_rejected_change_is_never_applied(runtime: Runtime, org: str) -> None:
    runtime.editor.set_four_eyes(org, "root", org=True)
    _, etag, before = current(runtime, org, "posts/sales_analyst")
    held = rename(org, runtime, etag)
    assert isinstance(held, Held)
    rejected = runtime.editor.decide_change(held.change.id, "ann", False, "no")  # the author may withdraw it
    assert rejected.status == "rejected" and current(runtime, org, "posts/sales_analyst")[2] == before
    with pytest.raises(NotFound, match="change 'chg_nope' not found"):
        runtime.editor.decide_change("chg_nope", "bob", True)


def test_approving_a_change_whose_stored_row_was_damaged_fails_it_and_applies_nothing(
    runtime: Runtime, org: str
) -> None:
    runtime.editor.set_four_eyes(org, "root", org=True)
    _, etag, before = current(runtime, org, "posts/sales_analyst")
    held = rename(org, runtime, etag)
    assert isinstance(held, Held)
    with runtime.sessions.begin() as session:
        row = session.get(AdminChangeRow, held.change.id)
        assert row is not None
        row.operation = '{"target": "posts/sales_analyst"}'  # no method: nothing a caller can send
    decided = runtime.editor.decide_change(held.change.id, "bob", True)
    assert (decided.status, decided.message, decided.method) == ("failed", UNREADABLE, "unreadable")
    assert current(runtime, org, "posts/sales_analyst")[2] == before
    assert audit_actions(runtime, org)[-1] == "change_failed"


def test_a_change_scheduled_for_later_waits_for_its_time(runtime: Runtime, org: str) -> None:
    _, etag, before = current(runtime, org, "posts/sales_analyst")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    held = runtime.editor.submit(
        org, Edit("posts/sales_analyst", "patch", {"headcount": 2}), etag, "ann", "", effective_at=later
    )
    assert isinstance(held, Held) and held.change.status == "scheduled"
    runtime.editor.apply_due()
    assert runtime.editor.change(held.change.id).status == "scheduled", "not due yet"
    assert current(runtime, org, "posts/sales_analyst")[2] == before
    assert held.change.id in [c.id for c in runtime.editor.changes("scheduled", None, org, 100)]
    with pytest.raises(Conflict, match="is scheduled, not pending"):
        runtime.editor.decide_change(held.change.id, "bob", True)


def test_an_invalid_change_is_refused_before_it_is_held(runtime: Runtime, org: str) -> None:
    _, etag, _ = current(runtime, org, "posts/sales_analyst")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    with pytest.raises(Invalid):
        runtime.editor.submit(
            org, Edit("posts/sales_analyst", "patch", {"department": "gone"}), etag, "ann", "", effective_at=later
        )
    assert runtime.editor.changes(None, None, org, 100) == []


def test_a_new_organisation_must_not_exist_or_take_the_reserved_id(runtime: Runtime, org: str) -> None:
    document, _, _ = current(runtime, org, "org")
    with pytest.raises(Conflict, match=f"organisation '{org}' already exists"):
        runtime.editor.create_org(document, "ann", "")
    with pytest.raises(Invalid, match="is reserved for Dutyline's own administration") as refused:
        runtime.editor.create_org({**document, "id": "dutyline_admin"}, "ann", "")
    assert [i.path for i in refused.value.issues] == ["id"]


def test_a_deleted_organisation_is_no_longer_served_or_edited(runtime: Runtime, org: str) -> None:
    _, etag, _ = current(runtime, org, "org")
    written = runtime.editor.submit(org, Edit("org", "delete"), etag, "ann", "closed")
    assert isinstance(written, Written) and runtime.policies.current.get(org) is None
    with pytest.raises(NotFound, match=f"organisation '{org}' not found"):
        current(runtime, org, "posts/sales_analyst")
    assert "org_deleted" in audit_actions(runtime, org)


def test_a_due_change_that_cannot_be_run_is_marked_failed_and_holds_back_no_other(
    runtime: Runtime, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = copy_of(runtime, tmp_path / "a"), copy_of(runtime, tmp_path / "b")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    held = {}
    for org in (first, second):
        _, etag, _ = current(runtime, org, "posts/sales_analyst")
        change = runtime.editor.submit(
            org, Edit("posts/sales_analyst", "patch", {"headcount": 2}), etag, "ann", "", effective_at=later
        )
        assert isinstance(change, Held)
        held[org] = change.change.id
    # The first's stored operation is unreadable (a damaged row: nothing a caller can send), and both are due now.
    with runtime.sessions.begin() as session:
        for row in session.scalars(select(AdminChangeRow).where(AdminChangeRow.id.in_(held.values()))):
            row.effective_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            if row.id == held[first]:
                row.operation = "{not json"
    shown = runtime.editor.change(held[first])
    assert (shown.method, shown.value, shown.status) == ("unreadable", None, "scheduled"), "shown, not a 500"
    assert held[first] in {c.id for c in runtime.editor.changes(None, None, first, 10)}, "nor does it hide the list"
    assert runtime.editor.apply_due() == 2
    with runtime.sessions() as session:
        broken = session.get(AdminChangeRow, held[first])
        assert broken is not None and broken.status == "failed" and broken.message == UNREADABLE
    assert runtime.editor.change(held[second]).status == "applied"
    assert current(runtime, second, "posts/sales_analyst")[0]["headcount"] == 2
    assert "change_failed" in audit_actions(runtime, first)
    assert runtime.editor.apply_due() == 0, "the failed one is no longer due"
