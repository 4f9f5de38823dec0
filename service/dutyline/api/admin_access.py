"""The admin API for identity and oversight: login and sessions, users and roles, API tokens, the audit
trail, and pending changes (four-eyes approvals, scheduled changes). See docs/admin-api.md.

One controller per resource. A route's permission is its guard (`api.guards`); where it depends on the query or the
body (an organisation asked for, a user other than the caller), the handler asks `AccessService.require` itself."""

from __future__ import annotations

import asyncio
from typing import Annotated

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, Parameter
from litestar.types import ControllerRouterHandler

from dutyline.api.auth import COOKIE, cleared_cookie, session_cookie
from dutyline.api.body import read_json
from dutyline.api.guards import requires, signed_in
from dutyline.api.openapi import ADMIN, answers, takes
from dutyline.api.schemas import Changes, LoggedOut, Revoked, Tokens, Users
from dutyline.engines.admin_policy import ALL, AdminPermission
from dutyline.errors import Forbidden, Invalid, Issue
from dutyline.orgmodel.windows import when
from dutyline.services.access import AccessService, Caller, IssuedToken, Session, User
from dutyline.services.access.policy import Setup
from dutyline.services.audit_trail import AuditCheck, AuditReader, AuditTrail
from dutyline.services.editing import Change, Editor
from dutyline.services.four_eyes import kind_of

Limit = Annotated[int, Parameter(ge=1, le=1000)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
TAGS = ["admin: access"]
Access = NamedDependency[AccessService]
Who = NamedDependency[Caller]


class LoginBody(msgspec.Struct):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Annotated[str, msgspec.Meta(max_length=1024)]


class Role(msgspec.Struct):
    role: str
    organisation: str = ALL


class NewUser(msgspec.Struct):
    username: str
    password: str | None = None
    display_name: str = ""
    roles: list[Role] = []


class UserChange(msgspec.Struct):
    display_name: str | None = None
    password: str | None = None
    # Changing one's own password: the current one (an administrator setting another user's needs none).
    current_password: Annotated[str, msgspec.Meta(max_length=1024)] | None = None
    # Also revoke every API token of the user (a new password ends their other console sessions in any case).
    revoke_tokens: bool = False
    active: bool | None = None
    roles: list[Role] | None = None
    # {organisation: person}: who the user is there, whom they act as on approvals and cases (replaces all links).
    # Set by another administrator: a system administrator, or the HR administrator of each organisation changed.
    people: dict[str, str] | None = None


class NewToken(msgspec.Struct):
    scopes: list[str]
    username: str | None = None  # default: the caller
    name: str = ""
    expires_in_days: Annotated[float, msgspec.Meta(gt=0, le=3650)] | None = None
    # What it reaches on the decision API: organisation ids, or ["*"] for every one (system administrators only).
    # Required for the decide and admin scopes.
    organisations: list[Annotated[str, msgspec.Meta(min_length=1, max_length=64)]] | None = None


class DecisionBody(msgspec.Struct):
    comment: Annotated[str, msgspec.Meta(max_length=4000)] = ""


def _client_ip(request: Request) -> str:
    client = request.client
    return client.host if client is not None else "?"


class SessionController(Controller):
    path = "/admin"
    tags = TAGS

    @post(
        "/login",
        summary="Log in: sets the session cookie, returns the CSRF token",
        status_code=200,
        responses=answers({}, 400, 401, 413, 429, 503),
        operation_class=takes(LoginBody),
    )
    async def login(self, request: Request, access: Access) -> Response[Session]:
        body = await read_json(request, LoginBody)
        done = await asyncio.to_thread(access.login, body.username, body.password, _client_ip(request))
        view = await asyncio.to_thread(access.session_view, done.caller)
        return Response(view, cookies=[session_cookie(request, done)])

    @get(
        "/setup",
        summary="Whether the console has any user yet (asked by the login page, before anyone signs in)",
        responses=answers({}, 503),
    )
    async def setup(self, access: Access) -> Setup:
        return access.setup()

    @post(
        "/logout", summary="End the console session", status_code=200, responses=answers({}, *ADMIN), guards=[signed_in]
    )
    async def logout(self, request: Request, access: Access, caller: Who) -> Response[LoggedOut]:
        token = request.cookies.get(COOKIE)
        if caller.token_id is None and token:
            await asyncio.to_thread(access.logout, caller, token)
        return Response(LoggedOut(True), cookies=[cleared_cookie(request)])

    @get(
        "/session",
        summary="Who is logged in: roles, permissions per organisation, CSRF token",
        responses=answers({}, *ADMIN),
        guards=[signed_in],
    )
    async def current(self, access: Access, caller: Who) -> Session:
        return await asyncio.to_thread(access.session_view, caller)


class UserController(Controller):
    path = "/admin/users"
    tags = TAGS

    @get(
        summary="Users and their roles (system admin)",
        responses=answers({}, *ADMIN),
        guards=[requires(AdminPermission.USER_READ, organisation=None)],
    )
    async def list_users(self, access: Access) -> Users:
        return Users(await asyncio.to_thread(access.users))

    @post(
        summary="Create a user with roles (system admin)",
        status_code=201,
        responses=answers({}, *ADMIN, 409, 413),
        operation_class=takes(NewUser),
        guards=[requires(AdminPermission.USER_WRITE, organisation=None)],
    )
    async def create_user(self, request: Request, access: Access, caller: Who) -> User:
        body = await read_json(request, NewUser)
        grants = [(r.role, r.organisation) for r in body.roles]
        return await asyncio.to_thread(
            access.create_user, body.username, body.display_name, body.password, grants, caller.username
        )

    @get("/{username:str}", summary="One user", responses=answers({}, *ADMIN, 404), guards=[signed_in])
    async def get_user(self, username: FromPath[str], access: Access, caller: Who) -> User:
        if username != caller.username:
            access.require(caller, AdminPermission.USER_READ, ALL)
        return await asyncio.to_thread(access.user, username)

    @patch(
        "/{username:str}",
        summary="Change a user: name, password, active, roles (system admin)",
        responses=answers({}, *ADMIN, 404, 413),
        operation_class=takes(UserChange),
        guards=[signed_in],
    )
    async def change_user(self, request: Request, username: FromPath[str], access: Access, caller: Who) -> User:
        body = await read_json(request, UserChange)
        own = username == caller.username
        own_password_only = (
            own and body.roles is None and body.active is None and body.people is None and caller.scope == "session"
        )
        links_only = (
            body.people is not None
            and not own
            and body.roles is None
            and body.active is None
            and (body.display_name is None and body.password is None and not body.revoke_tokens)
        )
        if links_only and not access.allowed(caller, AdminPermission.USER_WRITE, ALL):
            # An organisation's HR administrator links users to its people; the others' links stay as they are.
            assert body.people is not None
            for org in await asyncio.to_thread(access.linked_organisations, username, body.people):
                access.require(caller, AdminPermission.ORG_CHART_WRITE, org)
        elif not own_password_only and not (own and body.people is not None):  # linking oneself: refused below
            access.require(caller, AdminPermission.USER_WRITE, ALL)
        roles = [(r.role, r.organisation) for r in body.roles] if body.roles is not None else None
        session_token = request.cookies.get(COOKIE) if caller.token_id is None else None

        def change() -> User:
            return access.update_user(
                username,
                caller.username,
                body.display_name,
                body.password,
                body.active,
                roles,
                body.people,
                current_password=body.current_password,
                revoke_tokens=body.revoke_tokens,
                session_token=session_token,
            )

        return await asyncio.to_thread(change)


class TokenController(Controller):
    path = "/admin/tokens"
    tags = TAGS

    @get(
        summary="API tokens (yours; every user's for a system admin)",
        responses=answers({}, *ADMIN, 404),
        guards=[signed_in],
    )
    async def list_tokens(self, access: Access, caller: Who) -> Tokens:
        everyone = access.allowed(caller, AdminPermission.USER_READ, ALL)
        return Tokens(await asyncio.to_thread(access.tokens, None if everyone else caller.username))

    @post(
        summary="Issue an API token; the secret is shown once",
        status_code=201,
        responses=answers({}, *ADMIN, 404, 413),
        operation_class=takes(NewToken),
        guards=[signed_in],
    )
    async def issue_token(self, request: Request, access: Access, caller: Who) -> IssuedToken:
        body = await read_json(request, NewToken)
        username = body.username or caller.username
        if caller.scope not in ("session", "admin"):
            raise Forbidden(f"a {caller.scope} token cannot issue tokens")
        if username != caller.username:
            access.require(caller, AdminPermission.USER_WRITE, ALL)
        return await asyncio.to_thread(
            access.issue_token,
            username,
            body.scopes,
            body.name,
            caller.username,
            body.expires_in_days,
            body.organisations,
            caller,
        )

    @delete(
        "/{token_id:str}",
        summary="Revoke an API token",
        status_code=200,
        responses=answers({}, *ADMIN, 404),
        guards=[signed_in],
    )
    async def revoke_token(self, token_id: FromPath[str], access: Access, caller: Who) -> Revoked:
        own = {t.id for t in await asyncio.to_thread(access.tokens, caller.username)}
        if token_id not in own or caller.scope not in ("session", "admin"):
            access.require(caller, AdminPermission.USER_WRITE, ALL)
        await asyncio.to_thread(access.revoke_token, token_id, caller.username)
        return Revoked(token_id)


class AuditController(Controller):
    path = "/admin/audit"
    tags = TAGS

    @get(
        summary="The audit trail, newest first (auditors: their organisations)",
        responses=answers({}, *ADMIN),
        guards=[signed_in],
    )
    async def audit_trail(
        self,
        access: Access,
        caller: Who,
        audit_trail: NamedDependency[AuditReader],
        org: FromQuery[str | None] = None,
        actor: FromQuery[str | None] = None,
        since: Annotated[str | None, Parameter(description="ISO date-time, inclusive")] = None,
        until: Annotated[str | None, Parameter(description="ISO date-time, exclusive")] = None,
        before: Annotated[
            int | None, Parameter(description="Page on: entries with a smaller seq", ge=0, le=2**31 - 1)
        ] = None,
        limit: Limit = 100,
    ) -> AuditTrail:
        organisations: frozenset[str] | None = None
        if org is not None:
            access.require(caller, AdminPermission.AUDIT_READ, org)
        elif not access.allowed(caller, AdminPermission.AUDIT_READ, ALL):
            known = await asyncio.to_thread(access.known_organisations)
            organisations = frozenset(access.organisations(caller, AdminPermission.AUDIT_READ, known))
            if not organisations:
                raise Forbidden(f"{caller.username} may not read the audit trail of any organisation")
        return await asyncio.to_thread(
            lambda: audit_trail.page(
                limit,
                before,
                organisation=org,
                organisations=organisations,
                actor=actor,
                since=when(since, None, "since", "an ISO date-time") if since else None,
                until=when(until, None, "until", "an ISO date-time") if until else None,
            )
        )

    @get(
        "/verify",
        summary="Walk the audit chain; report the first broken link",
        responses=answers({}, *ADMIN),
        guards=[requires(AdminPermission.AUDIT_READ, organisation=None)],
    )
    async def audit_verify(self, audit_trail: NamedDependency[AuditReader]) -> AuditCheck:
        return await asyncio.to_thread(audit_trail.verify)


# --- pending changes -----------------------------------------------------------------------------------------


class ChangeController(Controller):
    """Changes waiting for a second person or for their time, and decided ones. Who may read or decide one depends
    on the change (its organisation, author and kind), so the handlers ask the admin policy once they have it."""

    path = "/admin/changes"
    tags = TAGS

    @get(
        "/",
        summary="Changes waiting for approval or for their time (and decided ones)",
        responses=answers({200: Changes}, *ADMIN),
    )
    async def list_changes(
        self,
        access: NamedDependency[AccessService],
        editor: NamedDependency[Editor],
        caller: NamedDependency[Caller],
        status: Annotated[str | None, Parameter(description="pending, scheduled, applied, rejected or failed")] = None,
        org: FromQuery[str | None] = None,
        limit: Limit = 100,
    ) -> Changes:
        if status is not None and status not in ("pending", "scheduled", "applied", "rejected", "failed"):
            raise Invalid(
                f"status: {status!r} is not a change status", [Issue("<request>", 0, "status", "unknown status")]
            )
        organisations: frozenset[str] | None = None
        if org is not None:
            access.require(caller, AdminPermission.CHANGE_READ, org)
        elif not access.allowed(caller, AdminPermission.CHANGE_READ, ALL):
            known = await asyncio.to_thread(access.known_organisations)
            organisations = frozenset(access.organisations(caller, AdminPermission.CHANGE_READ, known))
        return Changes(await asyncio.to_thread(editor.changes, status, organisations, org, limit))

    @get("/{change_id:str}", summary="One change", responses=answers({200: Change}, *ADMIN, 404))
    async def get_change(
        self,
        access: NamedDependency[AccessService],
        editor: NamedDependency[Editor],
        caller: NamedDependency[Caller],
        change_id: FromPath[str],
    ) -> Change:
        change = await asyncio.to_thread(editor.change, change_id)
        access.require(caller, AdminPermission.CHANGE_READ, change.organisation)
        return change

    @post(
        "/{change_id:str}/approve",
        summary="Approve and apply a pending change (not its author)",
        status_code=200,
        responses=answers({200: Change}, *ADMIN, 404, 409, 413),
        operation_class=takes(DecisionBody, required=False),
    )
    async def approve_change(
        self,
        request: Request,
        access: NamedDependency[AccessService],
        editor: NamedDependency[Editor],
        caller: NamedDependency[Caller],
        change_id: FromPath[str],
    ) -> Change:
        return await _decide(request, access, editor, caller, change_id, True)

    @post(
        "/{change_id:str}/reject",
        summary="Reject a pending change (not its author)",
        status_code=200,
        responses=answers({200: Change}, *ADMIN, 404, 409, 413),
        operation_class=takes(DecisionBody, required=False),
    )
    async def reject_change(
        self,
        request: Request,
        access: NamedDependency[AccessService],
        editor: NamedDependency[Editor],
        caller: NamedDependency[Caller],
        change_id: FromPath[str],
    ) -> Change:
        return await _decide(request, access, editor, caller, change_id, False)


async def _decide(
    request: Request, access: AccessService, editor: Editor, caller: Caller, change_id: str, approve: bool
) -> Change:
    body = await read_json(request, DecisionBody) if (await request.body()).strip() else DecisionBody()
    change = await asyncio.to_thread(editor.change, change_id)
    # The admin policy decides: someone who may make such changes in the organisation (a compliance officer for a
    # rule pack, an HR admin for the org chart) or a system admin, never the author.
    access.require(
        caller, AdminPermission.CHANGE_APPROVE, change.organisation, author=change.author, kind=kind_of(change.target)
    )
    return await asyncio.to_thread(editor.decide_change, change_id, caller.username, approve, body.comment)


ROUTES: list[ControllerRouterHandler] = [
    SessionController,
    UserController,
    TokenController,
    AuditController,
    ChangeController,
]
