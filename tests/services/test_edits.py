"""`plan`: what each kind of edit proposes of what is there now, before validation. One dispatch on the kind of
edit (the whole document, one entity, a rule pack) for create, put, patch and delete; applying, deferring and
previewing all start from it (tests/services/test_editing_proposals.py checks that they agree)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dutyline.errors import Invalid, NotFound
from dutyline.services.editing import Current, Edit, EditKind, plan

pytestmark = pytest.mark.pure

TELLER = {"id": "teller", "name": {"zh": "柜员", "en": "Teller"}, "department": "branch"}
DOCUMENT: dict[str, Any] = {
    "id": "acme",
    "name": {"zh": "顶点", "en": "Acme"},
    "departments": [{"id": "branch", "name": {"zh": "支行", "en": "Branch"}}],
    "posts": [TELLER],
    "catalogue": {"resources": [{"id": "loan", "actions": ["approve"]}]},
}
PACK = {"org": "acme", "rules": [{"id": "limit", "kind": "limit", "default": 100}]}


def now(target: str) -> Current:
    """`acme` as it is now, with `target`'s value as the current state reads it."""
    if target.startswith("rules/"):
        value: Any = copy.deepcopy(PACK)
    elif target == "org":
        value = DOCUMENT
    else:
        value = next((p for p in DOCUMENT["posts"] if f"posts/{p['id']}" == target), None)
    return Current("acme", copy.deepcopy(DOCUMENT), 7, "digest", value, '"etag"')


# --- the whole document -------------------------------------------------------------------------------------


def test_a_document_put_proposes_the_body_with_the_organisation_id_when_it_gives_none() -> None:
    body = {"name": {"zh": "新", "en": "New"}, "posts": []}
    proposal = plan(now("org"), Edit("org", "put", body))
    assert proposal.kind is EditKind.ORGANISATION and not proposal.deletes
    assert proposal.document == {"id": "acme", **body} and proposal.pack is None


def test_a_document_put_keeps_the_id_it_gives_for_validation_to_refuse() -> None:
    assert plan(now("org"), Edit("org", "put", {"id": "other"})).document == {"id": "other"}


def test_a_document_create_proposes_the_body_as_given() -> None:
    body = {"id": "fresh", "name": {"zh": "新", "en": "Fresh"}}
    assert plan(now("org"), Edit("org", "create", body)).document == body


def test_a_document_delete_proposes_no_document() -> None:
    proposal = plan(now("org"), Edit("org", "delete"))
    assert proposal.deletes and proposal.document is None


def test_a_document_that_is_not_an_object_is_invalid() -> None:
    with pytest.raises(Invalid, match="the organisation must be an object"):
        plan(now("org"), Edit("org", "put", ["not", "a", "document"]))


# --- one entity -------------------------------------------------------------------------------------------------


def test_an_entity_create_appends_it_with_the_targets_id() -> None:
    clerk = {"name": {"zh": "职员", "en": "Clerk"}, "department": "branch"}
    proposal = plan(now("posts/clerk"), Edit("posts/clerk", "create", clerk))
    assert proposal.kind is EditKind.ENTITY and not proposal.deletes
    assert proposal.document is not None
    assert proposal.document["posts"] == [TELLER, {"id": "clerk", **clerk}]
    assert {k: v for k, v in proposal.document.items() if k != "posts"} == {
        k: v for k, v in DOCUMENT.items() if k != "posts"
    }, "nothing else changes"


def test_an_entity_put_replaces_it_in_place() -> None:
    renamed = {"name": {"zh": "柜员", "en": "Cashier"}, "department": "branch"}
    proposal = plan(now("posts/teller"), Edit("posts/teller", "put", renamed))
    assert proposal.document is not None and proposal.document["posts"] == [{"id": "teller", **renamed}]


def test_an_entity_patch_is_a_json_merge_patch() -> None:
    patch = {"name": {"en": "Cashier"}, "department": None, "headcount": 2}
    proposal = plan(now("posts/teller"), Edit("posts/teller", "patch", patch))
    assert proposal.document is not None
    assert proposal.document["posts"] == [{"id": "teller", "name": {"zh": "柜员", "en": "Cashier"}, "headcount": 2}]


def test_an_entity_delete_removes_it_and_leaves_the_document_otherwise_as_it_was() -> None:
    current = now("posts/teller")
    proposal = plan(current, Edit("posts/teller", "delete"))
    assert not proposal.deletes, "deleting an entity proposes a document without it"
    assert proposal.document == {**DOCUMENT, "posts": []}
    assert current.document == DOCUMENT, "what is there now is not changed by planning"


def test_an_entity_nested_in_the_catalogue_is_found_under_its_path() -> None:
    proposal = plan(now("resources/loan"), Edit("resources/loan", "patch", {"actions": ["approve", "sign"]}))
    assert proposal.document is not None
    assert proposal.document["catalogue"]["resources"] == [{"id": "loan", "actions": ["approve", "sign"]}]


def test_an_entity_whose_id_differs_from_the_target_is_invalid() -> None:
    with pytest.raises(Invalid, match="the body's id 'other' differs from the URL's 'teller'") as refused:
        plan(now("posts/teller"), Edit("posts/teller", "put", {"id": "other"}))
    assert [i.path for i in refused.value.issues] == ["id"]


def test_an_entity_that_is_not_an_object_is_invalid() -> None:
    with pytest.raises(Invalid, match="post 'teller' must be an object"):
        plan(now("posts/teller"), Edit("posts/teller", "put", 42))


def test_an_unknown_collection_is_not_found() -> None:
    with pytest.raises(NotFound, match="no such collection 'widgets'"):
        plan(now("widgets/x"), Edit("widgets/x", "put", {}))


# --- a rule pack ---------------------------------------------------------------------------------------------


def test_a_pack_create_or_put_proposes_the_body_beside_the_document_as_it_is() -> None:
    body = {"rules": []}
    for method in ("create", "put"):
        proposal = plan(now("rules/acme"), Edit("rules/acme", method, body))  # type: ignore[arg-type]
        assert proposal.kind is EditKind.RULE_PACK and not proposal.deletes
        assert proposal.pack == body and proposal.document == DOCUMENT


def test_a_pack_patch_merges_into_the_stored_pack() -> None:
    proposal = plan(now("rules/acme"), Edit("rules/acme", "patch", {"description": "limits", "org": None}))
    assert proposal.pack == {"rules": PACK["rules"], "description": "limits"}


def test_a_pack_patch_that_is_not_an_object_replaces_the_pack_for_validation_to_refuse() -> None:
    assert plan(now("rules/acme"), Edit("rules/acme", "patch", 49129)).pack == 49129


def test_a_pack_delete_proposes_no_pack_and_the_document_unchanged() -> None:
    proposal = plan(now("rules/acme"), Edit("rules/acme", "delete"))
    assert proposal.deletes and proposal.pack is None and proposal.document == DOCUMENT
