"""AccessService directly: users and their roles, links to people, logins and sessions, API tokens and what they
reach, and the admin policy compiled from the grants. Every change is audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dutyline.engines.admin_policy import AdminPermission
from dutyline.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from dutyline.runtime import Runtime
from dutyline.services.access import RoleGrant
from dutyline.store.tables import AuditRow
from tests.services.conftest import COUNTER, new_id

pytestmark = pytest.mark.live
PASSWORD = "correct horse battery"


def username() -> str:
    return new_id("u")


def audited(runtime: Runtime, event: str, target: str) -> list[dict]:
    with runtime.sessions() as session:
        rows = session.scalars(select(AuditRow).where(AuditRow.action == event, AuditRow.target == target)).all()
        return [{"actor": r.actor, "organisation": r.organisation} for r in rows]


def test_a_user_is_created_with_roles_and_the_creation_is_audited(runtime: Runtime) -> None:
    name = username()
    user = runtime.access.create_user(name, "", None, [("compliance_officer", COUNTER)], by="root")
    assert (user.username, user.display_name, user.active, user.has_password) == (name, name, True, False)
    assert user.roles == [RoleGrant("compliance_officer", COUNTER)]
    assert runtime.access.user(name) == user and name in [u.username for u in runtime.access.users()]
    assert audited(runtime, "user_created", f"user:{name}") == [{"actor": "root", "organisation": None}]
    with pytest.raises(Conflict, match=f"user '{name}' already exists"):
        runtime.access.create_user(name, "", None, [], by="root")


@pytest.mark.parametrize(
    ("name", "password", "roles", "message", "field"),
    [
        ("-bad", None, [], "username '-bad' is not valid", "username"),
        ("", None, [], "username '' is not valid", "username"),
        ("ok_name", "short", [], "a password needs at least 8 characters", "password"),
        ("ok_name", None, [("wizard", COUNTER)], "unknown role 'wizard'", "roles[0].role"),
        (
            "ok_name",
            None,
            [("auditor", "Not An Org")],
            "roles[0].organisation: 'Not An Org' is not an organisation id or *",
            "roles[0].organisation",
        ),
    ],
)
def test_a_bad_user_is_invalid_naming_the_field(
    runtime: Runtime, name: str, password: str | None, roles: list, message: str, field: str
) -> None:
    with pytest.raises(Invalid) as refused:
        runtime.access.create_user(name, "", password, roles, by="root")
    assert message in str(refused.value) and [i.path for i in refused.value.issues] == [field]


def test_a_system_administrators_role_is_granted_everywhere(runtime: Runtime) -> None:
    user = runtime.access.create_user(username(), "", None, [("system_admin", COUNTER)], by="root")
    assert user.roles == [RoleGrant("system_admin", "*")]


def test_changing_an_unknown_user_is_not_found(runtime: Runtime) -> None:
    with pytest.raises(NotFound, match="user 'nobody_here' not found"):
        runtime.access.update_user("nobody_here", by="root", display_name="x")
    with pytest.raises(NotFound, match="user 'nobody_here' not found"):
        runtime.access.user("nobody_here")


def test_a_user_is_linked_to_a_person_by_another_administrator_never_by_themselves(runtime: Runtime) -> None:
    name = username()
    runtime.access.create_user(name, "", None, [("compliance_officer", COUNTER)], by="root")
    linked = runtime.access.update_user(name, by="root", people={COUNTER: "mia@counter.example"})
    assert linked.people == {COUNTER: "mia"}, "stored as the person's id"
    assert audited(runtime, "user_linked", f"user:{name}") == [{"actor": "root", "organisation": COUNTER}]
    with pytest.raises(Forbidden, match="may not link themselves to a person"):
        runtime.access.update_user(name, by=name, people={COUNTER: "dan"})


@pytest.mark.parametrize(
    ("people", "message"),
    [
        ({"nowhere": "mia"}, "people.nowhere: 'nowhere' is not an organisation"),
        ({COUNTER: "nobody"}, "people.test_counter: 'nobody' is not a person of 'test_counter'"),
    ],
)
def test_a_link_to_an_unknown_organisation_or_person_is_invalid_naming_it(
    runtime: Runtime, people: dict, message: str
) -> None:
    name = username()
    runtime.access.create_user(name, "", None, [], by="root")
    with pytest.raises(Invalid) as refused:
        runtime.access.update_user(name, by="root", people=people)
    assert str(refused.value) == message and [i.path for i in refused.value.issues] == [f"people.{next(iter(people))}"]


def test_a_login_opens_a_session_and_a_wrong_password_is_unauthenticated_and_audited(runtime: Runtime) -> None:
    name = username()
    runtime.access.create_user(name, "", PASSWORD, [("auditor", COUNTER)], by="root")
    login = runtime.access.login(name, PASSWORD, "127.0.0.9")
    assert login.caller.username == name and login.caller.scope == "session"
    assert login.caller.organisations == frozenset({COUNTER})
    assert runtime.access.session_caller(login.token) == login.caller
    with pytest.raises(Unauthenticated, match="wrong username or password"):
        runtime.access.login(name, "not the password", "127.0.0.9")
    assert audited(runtime, "login_failed", f"user:{name}") == [{"actor": name, "organisation": None}]
    runtime.access.logout(login.caller, login.token)
    assert runtime.access.session_caller(login.token) is None


def test_a_deactivated_user_cannot_log_in_and_loses_their_sessions(runtime: Runtime) -> None:
    name = username()
    runtime.access.create_user(name, "", PASSWORD, [("auditor", COUNTER)], by="root")
    login = runtime.access.login(name, PASSWORD, "127.0.0.10")
    runtime.access.update_user(name, by="root", active=False)
    assert runtime.access.session_caller(login.token) is None
    with pytest.raises(Unauthenticated):
        runtime.access.login(name, PASSWORD, "127.0.0.10")


def test_changing_your_own_password_needs_the_current_one(runtime: Runtime) -> None:
    name = username()
    runtime.access.create_user(name, "", PASSWORD, [], by="root")
    with pytest.raises(Invalid, match="current_password: required to change your own password") as refused:
        runtime.access.update_user(name, by=name, password="another password")
    assert [i.path for i in refused.value.issues] == ["current_password"]
    with pytest.raises(Forbidden, match="current_password is wrong"):
        runtime.access.update_user(name, by=name, password="another password", current_password="a wrong one")
    runtime.access.update_user(name, by=name, password="another password", current_password=PASSWORD)
    assert runtime.access.login(name, "another password", "127.0.0.11").caller.username == name


def test_a_token_that_may_decide_names_the_organisations_it_reaches(runtime: Runtime) -> None:
    name = username()
    runtime.access.create_user(name, "", None, [("auditor", COUNTER)], by="root")
    with pytest.raises(Invalid, match="organisations: a token that may decide names the organisations") as refused:
        runtime.access.issue_token(name, ["decide"], "ci", by="root")
    assert [i.path for i in refused.value.issues] == ["organisations"]
    issued = runtime.access.issue_token(name, ["decide"], "ci", by="root", organisations=[COUNTER])
    caller = runtime.access.token_caller(issued.token)
    assert caller is not None and caller.organisations == frozenset({COUNTER}) and caller.may_decide
    assert issued.id in [t.id for t in runtime.access.tokens(name)]
    runtime.access.revoke_token(issued.id, by="root")
    assert runtime.access.token_caller(issued.token) is None
    with pytest.raises(NotFound, match=f"token '{issued.id}' not found \\(or already revoked\\)"):
        runtime.access.revoke_token(issued.id, by="root")


@pytest.mark.parametrize(
    ("scopes", "organisations", "message", "field"),
    [
        (["everything"], None, "scopes must be some of decide, read, admin", "scopes"),
        ([], None, "scopes must be some of decide, read, admin", "scopes"),
        (["decide"], ["Bad Org"], "organisations[0]: 'Bad Org' is not an organisation id or *", "organisations[0]"),
        (
            ["decide"],
            ["*", COUNTER],
            "organisations: * already means every organisation; give it alone",
            "organisations",
        ),
        (["decide"], [], "organisations: a token that may decide reaches at least one organisation", "organisations"),
        (["read"], ["no_such_org"], "organisations: 'no_such_org' is not an organisation", "organisations[0]"),
    ],
)
def test_a_bad_token_request_is_invalid_naming_the_field(
    runtime: Runtime, scopes: list, organisations: list | None, message: str, field: str
) -> None:
    name = username()
    runtime.access.create_user(name, "", None, [], by="root")
    with pytest.raises(Invalid) as refused:
        runtime.access.issue_token(name, scopes, "t", by="root", organisations=organisations)
    assert str(refused.value) == message and [i.path for i in refused.value.issues] == [field]


def test_an_issuer_gives_only_organisations_they_reach(runtime: Runtime) -> None:
    name = username()
    runtime.access.create_user(name, "", PASSWORD, [("hr_admin", COUNTER)], by="root")
    issuer = runtime.access.login(name, PASSWORD, "127.0.0.12").caller
    with pytest.raises(Forbidden, match=f"{name} may not issue a token for sales_company"):
        runtime.access.issue_token(name, ["decide"], "t", by=name, organisations=["sales_company"], issuer=issuer)
    with pytest.raises(Forbidden, match="only a system administrator may"):
        runtime.access.issue_token(name, ["decide"], "t", by=name, organisations=["*"], issuer=issuer)
    assert runtime.access.issue_token(
        name, ["decide"], "t", by=name, organisations=[COUNTER], issuer=issuer
    ).organisations == [COUNTER]


def test_the_admin_policy_follows_the_grants_and_says_why_it_refuses(runtime: Runtime) -> None:
    name = username()
    runtime.access.create_user(name, "", PASSWORD, [("auditor", COUNTER)], by="root")
    caller = runtime.access.login(name, PASSWORD, "127.0.0.13").caller
    assert runtime.access.allowed(caller, AdminPermission.AUDIT_READ, COUNTER)
    assert not runtime.access.allowed(caller, AdminPermission.AUDIT_READ, "sales_company")
    with pytest.raises(Forbidden, match=f"{name} may not write org_chart in 'test_counter'"):
        runtime.access.require(caller, AdminPermission.ORG_CHART_WRITE, COUNTER)
    assert runtime.access.organisations(caller, AdminPermission.AUDIT_READ, [COUNTER, "sales_company"]) == [COUNTER]


def test_a_console_user_acts_as_their_linked_person_only(runtime: Runtime) -> None:
    name = username()
    runtime.access.create_user(name, "", PASSWORD, [("compliance_officer", COUNTER)], by="root")
    caller = runtime.access.login(name, PASSWORD, "127.0.0.14").caller
    with pytest.raises(Forbidden, match=f"{name} is linked to no person in 'test_counter'"):
        runtime.access.acting_person(caller, COUNTER, None)
    runtime.access.update_user(name, by="root", people={COUNTER: "mia"})
    assert runtime.access.acting_person(caller, COUNTER, "mia@counter.example") == "mia"
    with pytest.raises(Forbidden, match="a console user acts as their own person \\(mia\\)"):
        runtime.access.acting_person(caller, COUNTER, "rob")


def test_a_display_name_longer_than_200_characters_is_invalid_naming_it(runtime: Runtime) -> None:
    """The column holds 200: PostgreSQL refused a longer one with a database error (a 500), SQLite stored it."""
    name = username()
    with pytest.raises(Invalid, match="display_name: at most 200 characters") as refused:
        runtime.access.create_user(name, "x" * 201, None, [], by="root")
    assert [i.path for i in refused.value.issues] == ["display_name"]
    runtime.access.create_user(name, "x" * 200, None, [], by="root")
    with pytest.raises(Invalid, match="display_name: at most 200 characters"):
        runtime.access.update_user(name, by="root", display_name="y" * 201)
    assert runtime.access.user(name).display_name == "x" * 200


def test_a_token_name_longer_than_200_characters_is_invalid_naming_it(runtime: Runtime) -> None:
    """The column holds 200: PostgreSQL refused a longer one with a database error (a 500), SQLite stored it."""
    name = username()
    runtime.access.create_user(name, "", None, [], by="root")
    with pytest.raises(Invalid, match="name: at most 200 characters") as refused:
        runtime.access.issue_token(name, ["read"], "n" * 201, by="root")
    assert [i.path for i in refused.value.issues] == ["name"]
    assert runtime.access.issue_token(name, ["read"], "n" * 200, by="root").name == "n" * 200
