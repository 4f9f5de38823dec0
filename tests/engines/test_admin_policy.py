"""The admin policy: users and role grants as an organisation document that Dutyline's own engine decides."""

from __future__ import annotations

import time

import msgspec
import pytest

from dutyline.engines.admin_policy import ALL, CATALOGUE, Member, admin_document, compile_admin
from dutyline.orgmodel.validate import organisation_from_json

MEMBERS = [
    Member(1, "root", (("system_admin", ALL),)),
    Member(2, "hr", (("hr_admin", "sales_company"), ("hr_admin", "hotel"))),
    Member(3, "audrey", (("auditor", "hotel"),)),
    Member(4, "carl", (("compliance_officer", "hotel"), ("auditor", ALL))),
    Member(5, "nobody", ()),
]
POLICY = compile_admin(MEMBERS)


def allowed(user: int, resource: str, action: str, org: str, scope: str = "session", **attributes: object) -> bool:
    return POLICY.decide(user, resource, action, org, scope, time.time(), attributes).allowed


def test_the_generated_document_passes_the_same_validation_as_any_organisation() -> None:
    parsed = organisation_from_json(msgspec.json.encode(admin_document(MEMBERS)))
    assert parsed.warnings == ()
    assert {p.id for p in parsed.organisation.posts} == {"system_admin", "hr_admin", "compliance_officer", "auditor"}


@pytest.mark.parametrize(
    ("user", "resource", "action", "org", "expected"),
    [
        (1, "user", "write", ALL, True),
        (1, "org_chart", "write", "anything", True),
        (2, "org_chart", "write", "sales_company", True),
        (2, "org_chart", "write", "hotel", True),
        (2, "org_chart", "read", "logistics", False),
        (2, "rule_pack", "write", "hotel", False),
        (2, "rule_pack", "read", "hotel", True),
        (2, "audit", "read", "hotel", False),
        (2, "user", "read", ALL, False),
        (3, "audit", "read", "hotel", True),
        (3, "decision_log", "read", "hotel", True),
        (3, "org_chart", "write", "hotel", False),
        (3, "org_chart", "read", "sales_company", False),
        (4, "rule_pack", "write", "hotel", True),
        (4, "audit", "read", "logistics", True),
        (4, "org_chart", "write", "hotel", False),
        (5, "org_chart", "read", "hotel", False),
    ],
)
def test_each_role_may_do_its_own_things_in_its_own_organisations(
    user: int, resource: str, action: str, org: str, expected: bool
) -> None:
    assert allowed(user, resource, action, org) is expected


def test_a_read_token_changes_nothing_and_a_decide_token_nothing_at_all() -> None:
    for resource, actions in CATALOGUE.items():
        for action in actions:
            assert not allowed(1, resource, action, "hotel", scope="decide")
            assert allowed(1, resource, action, "hotel", scope="read") is (action == "read")


def test_nobody_approves_their_own_change() -> None:
    assert allowed(4, "change", "approve", "hotel", author="root", kind="rule_pack")
    assert not allowed(4, "change", "approve", "hotel", author="carl", kind="rule_pack")
    assert not allowed(1, "change", "approve", "hotel", author="root", kind="rule_pack"), "not even a system admin"


def test_changes_are_approved_by_whoever_may_make_them() -> None:
    """Four-eyes: a compliance officer approves rule pack changes, an HR admin org chart changes, each in their
    own organisations; a system admin either; a change of no known kind, nobody."""
    assert allowed(4, "change", "approve", "hotel", author="x", kind="rule_pack")
    assert not allowed(4, "change", "approve", "hotel", author="x", kind="org_chart")
    assert allowed(2, "change", "approve", "hotel", author="x", kind="org_chart")
    assert not allowed(2, "change", "approve", "hotel", author="x", kind="rule_pack")
    assert not allowed(2, "change", "approve", "logistics", author="x", kind="org_chart")
    assert allowed(1, "change", "approve", "logistics", author="x", kind="org_chart")
    assert not allowed(4, "change", "approve", "hotel", author="x")
    assert not allowed(2, "change", "approve", "hotel", author="x")
