"""The admin API's door, walked route by route from the app itself (not from its OpenAPI document): a route whose
permission is its guard refuses a caller without it, naming the permission; a decide token gets no admin route."""

from __future__ import annotations

import re
import uuid

import pytest
from litestar.routes import HTTPRoute

from dutyline.app import create_app
from dutyline.engines.admin_policy import ALL, AdminPermission
from tests.api.admin_client import PASSWORD
from tests.hardening import routes
from tests.hardening.conftest import Stack

pytestmark = pytest.mark.live
ORG = routes.ORG


def _admin_routes() -> list[tuple[str, str, list[str]]]:
    """(method, path with `{name}` parameters, names of its guards) of every /admin route the app serves."""
    found = []
    for route in create_app().routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/admin"):
            continue
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        for handler in route.route_handlers:
            guards = [guard.__name__ for guard in handler.resolve_guards()]
            found.extend((method, path, guards) for method in sorted(handler.http_methods) if method != "OPTIONS")
    return found


def _guarded() -> list[tuple[str, str, AdminPermission]]:
    """The routes whose guard asks for a permission (`api.guards.requires`), and the permission."""
    # Sorted: Litestar keeps a handler's paths in a set, so route order changes between processes (and between
    # pytest-xdist's workers, which must collect the same list).
    return sorted(
        (method, path, AdminPermission[name.removeprefix("requires_").upper()])
        for method, path, guards in _admin_routes()
        for name in guards
        if name.startswith("requires_")
    )


def _user_token(stack: Stack, roles: list[dict[str, str]], scopes: list[str]) -> tuple[str, str]:
    name = f"g_{uuid.uuid4().hex[:8]}"
    made = stack.root.post("/admin/users", json={"username": name, "password": PASSWORD, "roles": roles})
    assert made.status_code == 201, made.text
    issued = stack.root.post("/admin/tokens", json={"username": name, "scopes": scopes, "organisations": [ORG]})
    assert issued.status_code == 201, issued.text
    return name, issued.json()["token"]


def test_the_app_has_routes_guarded_by_their_permission() -> None:
    guarded = {(method, path) for method, path, _ in _guarded()}
    assert {("GET", "/admin/users"), ("POST", "/admin/users"), ("GET", "/admin/audit/verify")} <= guarded


@pytest.mark.parametrize(("method", "path", "permission"), _guarded(), ids=[f"{m} {p}" for m, p, _ in _guarded()])
def test_a_route_refuses_a_caller_without_its_permission_naming_it(
    stack: Stack, method: str, path: str, permission: AdminPermission
) -> None:
    """An admin token of a user who holds no admin role: the guard refuses before the handler reads anything."""
    name, token = _user_token(stack, [], ["admin"])
    response = stack.client(token).request(method, routes.fill(path), json={}, headers={"If-Match": "*"})
    assert response.status_code == 403, f"{method} {path}: {response.status_code} {response.text[:200]}"
    where = "" if "{org_id}" not in path else f" in {ORG!r}"
    message = response.json()["message"]
    assert message == f"{name} may not {permission.action} {permission.resource}{where}: the user holds no admin role"


def test_a_role_in_one_organisation_is_not_the_permission_everywhere(stack: Stack) -> None:
    """An auditor of one organisation reads its audit trail, but neither the whole chain nor another's entries."""
    name, token = _user_token(stack, [{"role": "auditor", "organisation": ORG}], ["read"])
    auditor = stack.client(token)
    assert auditor.get("/admin/audit", params={"org": ORG}).status_code == 200
    refused = {
        "/admin/audit/verify": f"{name} may not read audit: ",
        "/admin/audit?org=hotel": f"{name} may not read audit in 'hotel': ",
        "/admin/users": f"{name} may not read user: ",
        "/admin/users/root": f"{name} may not read user: ",
    }
    for path, message in refused.items():
        response = auditor.get(path)
        assert response.status_code == 403, f"{path}: {response.status_code} {response.text[:200]}"
        assert response.json()["message"].startswith(message), response.json()["message"]


PUBLIC = ("/admin/login", "/admin/setup")


def test_the_only_admin_routes_open_to_anyone_are_logging_in_and_whether_anyone_can(stack: Stack) -> None:
    anonymous = stack.client(None)
    for method, path, _ in _admin_routes():
        if path in PUBLIC:
            continue
        response = anonymous.request(method, routes.fill(path), json={})
        assert response.status_code == 401, f"{method} {path}: {response.status_code} {response.text[:200]}"
    setup = anonymous.get("/admin/setup")
    assert setup.status_code == 200 and setup.json() == {
        "users": True,
        "first_user": "dutyline admin create NAME --role system_admin",
    }


def test_a_decide_token_gets_403_on_every_admin_route(stack: Stack) -> None:
    """Even a system administrator's: a decide token is for the decision API only, reads of its own user, tokens
    and session included (docs/admin-api.md). Only logging in, and asking whether anyone can log in yet (the login
    page's `/admin/setup`), need no credentials at all."""
    client = stack.client(_user_token(stack, [{"role": "system_admin", "organisation": ALL}], ["decide"])[1])
    operations = [(m, p) for m, p, _ in _admin_routes() if p not in PUBLIC]
    assert len(operations) >= 40, operations
    for method, path in operations:
        # A required query parameter too, so that nothing is refused for a reason other than the token's scope.
        filled = routes.fill(path) + ("?at=2026-01-01T00:00:00" if path.endswith("/as-of") else "")
        response = client.request(method, filled, json={}, headers={"If-Match": "*"})
        assert response.status_code == 403, f"{method} {path}: {response.status_code} {response.text[:200]}"
        assert response.json()["message"] == "a decide token may call the decision API only, never the admin API"
