"""The summary of what a change does (orgmodel/diff.py) is computed for proposals before they are validated, so an
ill-formed one must be summarised, not crash the preview (the fuzz test found a 500 on PUT with a list as an id)."""

from __future__ import annotations

import pytest

from dutyline.orgmodel.diff import summarise

pytestmark = pytest.mark.pure

COLLECTIONS = {"posts": ("posts",)}


def test_entities_are_added_removed_and_changed_by_id() -> None:
    old = {"posts": [{"id": "teller", "headcount": 2}, {"id": "clerk"}]}
    new = {"posts": [{"id": "teller", "headcount": 3}, {"id": "manager"}]}
    assert summarise(old, new, COLLECTIONS)["posts"] == {
        "added": ["manager"],
        "removed": ["clerk"],
        "changed": ["teller"],
    }


@pytest.mark.parametrize("bad_id", [["teller"], {"id": "teller"}, None, 7, 1.5])
def test_an_entity_whose_id_is_not_a_string_is_no_entity_of_the_summary(bad_id: object) -> None:
    old = {"posts": [{"id": "teller"}]}
    new = {"posts": [{"id": "teller"}, {"id": bad_id}]}
    assert "posts" not in summarise(old, new, COLLECTIONS)
