"""Applying, deferring and previewing an edit start from the same proposal (`plan`): for each kind of edit, what
is applied at once, what a held change writes once a second person approves it, and what the preview says would
change are the same. Each test edits two copies of sales_company: one changed at once, one through four-eyes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dutyline.orgmodel.diff import ORG_COLLECTIONS, PACK_COLLECTIONS, summarise
from dutyline.runtime import Runtime
from dutyline.services.editing import Edit, EditKind, Held, Written, plan
from dutyline.services.editing.writer import read_current
from tests.services.conftest import copy_of, current

pytestmark = pytest.mark.live


def rename_post(org: str, runtime: Runtime) -> Edit:
    return Edit("posts/sales_analyst", "patch", {"name": {"zh": "数据分析员", "en": "Data Analyst"}})


def rename_organisation(org: str, runtime: Runtime) -> Edit:
    document = runtime.editor.document(org)[1].value
    return Edit("org", "put", {**copy.deepcopy(document), "name": {"zh": "新名", "en": "Renamed"}})


def lower_a_limit(org: str, runtime: Runtime) -> Edit:
    pack, _, _ = current(runtime, org, f"rules/{org}")
    draft = copy.deepcopy(pack)
    rule = next(r for r in draft["rules"] if r["id"] == "expense_claim_limit")
    rule["limits"]["sales_representative"] = 2000
    return Edit(f"rules/{org}", "put", draft)


EDITS: dict[str, Callable[[str, Runtime], Edit]] = {
    "entity": rename_post,
    "document": rename_organisation,
    "rule_pack": lower_a_limit,
}


def state(runtime: Runtime, org: str, edit: Edit) -> Any:
    """The edited document (the organisation's, or the rule pack) as stored, with the organisation's id as `ORG`."""
    target = edit.target if edit.kind is EditKind.RULE_PACK else "org"
    value = runtime.editor.current(org, target).value if target != "org" else runtime.editor.document(org)[1].value
    return _anonymous(value, org)


def _anonymous(value: Any, org: str) -> Any:
    if isinstance(value, dict):
        return {k: _anonymous(v, org) for k, v in value.items()}
    if isinstance(value, list):
        return [_anonymous(v, org) for v in value]
    return "ORG" if value == org else value


def etag_of_target(runtime: Runtime, org: str, edit: Edit) -> str | None:
    return (
        runtime.editor.current(org, edit.target).etag if edit.target != "org" else runtime.editor.document(org)[1].etag
    )


@pytest.mark.parametrize("kind", sorted(EDITS))
def test_apply_defer_and_preview_propose_the_same_document(runtime: Runtime, tmp_path: Path, kind: str) -> None:
    now_org, later_org = copy_of(runtime, tmp_path), copy_of(runtime, tmp_path)
    edit = EDITS[kind](now_org, runtime)
    before = state(runtime, now_org, edit)

    with runtime.sessions() as session:
        proposal = plan(read_current(session, now_org, edit), edit)
    previewed = runtime.editor.preview(now_org, edit)
    applied = runtime.editor.submit(now_org, edit, etag_of_target(runtime, now_org, edit), "ann", "at once")
    assert isinstance(applied, Written) and applied.changed
    after = state(runtime, now_org, edit)

    runtime.editor.set_four_eyes(later_org, "root", rules=True, org=True)
    deferred = EDITS[kind](later_org, runtime)
    held = runtime.editor.submit(later_org, deferred, etag_of_target(runtime, later_org, deferred), "ann", "held")
    assert isinstance(held, Held) and held.change.status == "pending"
    assert state(runtime, later_org, deferred) == before, "nothing written while it waits"
    assert runtime.editor.decide_change(held.change.id, "bob", True).status == "applied"

    assert state(runtime, later_org, deferred) == after, "the approved change writes what applying it at once wrote"
    planned = proposal.pack if edit.kind is EditKind.RULE_PACK else proposal.document
    assert _anonymous(planned, now_org) == after, "what is stored is what `plan` proposed"
    collections = PACK_COLLECTIONS if edit.kind is EditKind.RULE_PACK else ORG_COLLECTIONS
    assert previewed.valid and previewed.summary == summarise(before, after, collections), (
        "the preview's summary is of the change that was applied"
    )
    assert previewed.summary, "the change changes something"
