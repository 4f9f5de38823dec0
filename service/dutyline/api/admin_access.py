"""The admin API for identity and oversight: login and sessions, users and roles, API tokens, the audit
trail, and pending changes (four-eyes approvals, scheduled changes). See docs/admin-api.md."""

from __future__ import annotations

import asyncio
from typing import Annotated

import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, Parameter

from dutyline.api.auth import admin_caller, cleared_cookie, json_response, session_cookie
from dutyline.api.body import read_json
from dutyline.api.openapi import ADMIN, answers, takes
from dutyline.api.payloads import parse_time
from dutyline.api.schemas import (
    AuditBreak,
    AuditCheck,
    AuditEntry,
    AuditTrail,
    Change,
    Changes,
    IssuedToken,
    LoggedOut,
    Revoked,
    Session,
    Tokens,
    User,
    Users,
)
from dutyline.engines.admin_policy import ALL, CATALOGUE, AdminPermission
from dutyline.errors import Forbidden, Invalid, Issue
from dutyline.runtime import Runtime
from dutyline.services.access import Caller
from dutyline.services.four_eyes import kind_of
from dutyline.store import audit, history
from dutyline.store.audit import AuditFilter

Limit = Annotated[int, Parameter(ge=1, le=1000)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
TAGS = ["admin: access"]


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


# --- sessions -----------------------------------------------------------------------------------------------


@post(
    "/admin/login",
    tags=TAGS,
    summary="Log in: sets the session cookie, returns the CSRF token",
    status_code=200,
    responses=answers({200: Session}, 400, 401, 413, 429, 503),
    operation_class=takes(LoginBody),
)
async def login(request: Request, state: State) -> Response[bytes]:
    runtime: Runtime = state.runtime
    body = await read_json(request, LoginBody)
    done = await asyncio.to_thread(runtime.access.login, body.username, body.password, _client_ip(request))
    payload = await asyncio.to_thread(_session_view, runtime, done.caller)
    response = json_response(payload)
    response.set_cookie(session_cookie(request, done))
    return response


@post(
    "/admin/logout",
    tags=TAGS,
    summary="End the console session",
    status_code=200,
    responses=answers({200: LoggedOut}, *ADMIN),
)
async def logout(request: Request, state: State) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    token = request.cookies.get("dutyline_session")
    if caller.token_id is None and token:
        await asyncio.to_thread(runtime.access.logout, caller, token)
    response = json_response(LoggedOut(True))
    response.set_cookie(cleared_cookie(request))
    return response


@get(
    "/admin/session",
    tags=TAGS,
    summary="Who is logged in: roles, permissions per organisation, CSRF token",
    responses=answers({200: Session}, *ADMIN),
)
async def current_session(request: Request, state: State) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    return json_response(await asyncio.to_thread(_session_view, runtime, caller))


def _known_orgs(runtime: Runtime, with_deleted: bool = True) -> list[str]:
    with runtime.sessions() as session:
        return [row[0] for row in history.organisations(session) if with_deleted or not row[4]]


# Permissions the policy grants only for some attributes: the console may offer them if any of these is granted
# (approving a pending change depends on its kind; the route asks again for the change itself).
_ASKED_WITH: dict[tuple[str, str], list[dict[str, str]]] = {
    ("change", "approve"): [{"kind": "rule_pack"}, {"kind": "org_chart"}],
}


def _session_view(runtime: Runtime, caller: Caller) -> Session:
    """What the console needs to draw itself: who, which roles, and what they may do where."""
    orgs = _known_orgs(runtime, with_deleted=False)
    permissions: dict[str, list[str]] = {}
    for org in [ALL, *orgs]:
        allowed = [
            f"{resource}:{action}"
            for resource, actions in CATALOGUE.items()
            for action in actions
            if any(
                runtime.access.allowed(caller, AdminPermission.of(resource, action), org, **asked)
                for asked in _ASKED_WITH.get((resource, action), [{}])
            )
        ]
        if allowed:
            permissions[org] = allowed
    return Session(
        username=caller.username,
        scope=caller.scope,
        csrf_token=caller.csrf_token,
        expires_at=caller.session_expires.isoformat() if caller.session_expires else None,
        roles=runtime.access.roles_of(caller),  # type: ignore[arg-type]  # {role, organisation}, as RoleGrant
        permissions=permissions,
    )


# --- users -------------------------------------------------------------------------------------------------


@get("/admin/users", tags=TAGS, summary="Users and their roles (system admin)", responses=answers({200: Users}, *ADMIN))
async def list_users(request: Request, state: State) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    runtime.access.require(caller, AdminPermission.USER_READ, ALL)
    return json_response(Users(await asyncio.to_thread(runtime.access.users)))  # type: ignore[arg-type]


@post(
    "/admin/users",
    tags=TAGS,
    summary="Create a user with roles (system admin)",
    status_code=201,
    responses=answers({201: User}, *ADMIN, 409, 413),
    operation_class=takes(NewUser),
)
async def create_user(request: Request, state: State) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    runtime.access.require(caller, AdminPermission.USER_WRITE, ALL)
    body = await read_json(request, NewUser)
    user = await asyncio.to_thread(
        runtime.access.create_user,
        body.username,
        body.display_name,
        body.password,
        [(r.role, r.organisation) for r in body.roles],
        caller.username,
    )
    return json_response(user, 201)


@get("/admin/users/{username:str}", tags=TAGS, summary="One user", responses=answers({200: User}, *ADMIN, 404))
async def get_user(request: Request, state: State, username: FromPath[str]) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    if username != caller.username:
        runtime.access.require(caller, AdminPermission.USER_READ, ALL)
    return json_response(await asyncio.to_thread(runtime.access.user, username))


@patch(
    "/admin/users/{username:str}",
    tags=TAGS,
    summary="Change a user: name, password, active, roles (system admin)",
    responses=answers({200: User}, *ADMIN, 404, 413),
    operation_class=takes(UserChange),
)
async def change_user(request: Request, state: State, username: FromPath[str]) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
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
    if links_only and not runtime.access.allowed(caller, AdminPermission.USER_WRITE, ALL):
        # An organisation's HR administrator links users to its people; the others' links stay as they are.
        assert body.people is not None
        for org in await asyncio.to_thread(runtime.access.linked_organisations, username, body.people):
            runtime.access.require(caller, AdminPermission.ORG_CHART_WRITE, org)
    elif not own_password_only and not (own and body.people is not None):  # linking oneself: refused below
        runtime.access.require(caller, AdminPermission.USER_WRITE, ALL)
    roles = [(r.role, r.organisation) for r in body.roles] if body.roles is not None else None
    session_token = request.cookies.get("dutyline_session") if caller.token_id is None else None

    def change() -> dict:
        return runtime.access.update_user(
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

    return json_response(await asyncio.to_thread(change))


# --- tokens ------------------------------------------------------------------------------------------------


@get(
    "/admin/tokens",
    tags=TAGS,
    summary="API tokens (yours; every user's for a system admin)",
    responses=answers({200: Tokens}, *ADMIN, 404),
)
async def list_tokens(request: Request, state: State) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    everyone = runtime.access.allowed(caller, AdminPermission.USER_READ, ALL)
    items = await asyncio.to_thread(runtime.access.tokens, None if everyone else caller.username)
    return json_response(Tokens(items))  # type: ignore[arg-type]


@post(
    "/admin/tokens",
    tags=TAGS,
    summary="Issue an API token; the secret is shown once",
    status_code=201,
    responses=answers({201: IssuedToken}, *ADMIN, 404, 413),
    operation_class=takes(NewToken),
)
async def issue_token(request: Request, state: State) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    body = await read_json(request, NewToken)
    username = body.username or caller.username
    if caller.scope not in ("session", "admin"):
        raise Forbidden(f"a {caller.scope} token cannot issue tokens")
    if username != caller.username:
        runtime.access.require(caller, AdminPermission.USER_WRITE, ALL)
    token = await asyncio.to_thread(
        runtime.access.issue_token,
        username,
        body.scopes,
        body.name,
        caller.username,
        body.expires_in_days,
        body.organisations,
        caller,
    )
    return json_response(token, 201)


@delete(
    "/admin/tokens/{token_id:str}",
    tags=TAGS,
    summary="Revoke an API token",
    status_code=200,
    responses=answers({200: Revoked}, *ADMIN, 404),
)
async def revoke_token(request: Request, state: State, token_id: FromPath[str]) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    own = {t["id"] for t in await asyncio.to_thread(runtime.access.tokens, caller.username)}
    if token_id not in own or caller.scope not in ("session", "admin"):
        runtime.access.require(caller, AdminPermission.USER_WRITE, ALL)
    await asyncio.to_thread(runtime.access.revoke_token, token_id, caller.username)
    return json_response(Revoked(token_id))


# --- audit -------------------------------------------------------------------------------------------------


@get(
    "/admin/audit",
    tags=TAGS,
    summary="The audit trail, newest first (auditors: their organisations)",
    responses=answers({200: AuditTrail}, *ADMIN),
)
async def audit_trail(
    request: Request,
    state: State,
    org: FromQuery[str | None] = None,
    actor: FromQuery[str | None] = None,
    since: Annotated[str | None, Parameter(description="ISO date-time, inclusive")] = None,
    until: Annotated[str | None, Parameter(description="ISO date-time, exclusive")] = None,
    before: Annotated[
        int | None, Parameter(description="Page on: entries with a smaller seq", ge=0, le=2**31 - 1)
    ] = None,
    limit: Limit = 100,
) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    organisations: frozenset[str] | None = None
    if org is not None:
        runtime.access.require(caller, AdminPermission.AUDIT_READ, org)
    elif not runtime.access.allowed(caller, AdminPermission.AUDIT_READ, ALL):
        known = await asyncio.to_thread(_known_orgs, runtime)
        organisations = frozenset(runtime.access.organisations(caller, AdminPermission.AUDIT_READ, known))
        if not organisations:
            raise Forbidden(f"{caller.username} may not read the audit trail of any organisation")
    where = AuditFilter(
        organisation=org,
        organisations=organisations,
        actor=actor,
        since=parse_time("since", since) if since else None,
        until=parse_time("until", until) if until else None,
    )

    def read() -> list[AuditEntry]:
        with runtime.sessions() as session:
            rows = audit.query(session, where, limit, before)
        return [
            AuditEntry(
                r.seq,
                r.at.isoformat(),
                r.actor,
                r.action,
                r.organisation,
                r.target,
                msgspec.json.decode(r.detail),
                r.hash,
                r.prev_hash,
            )
            for r in rows
        ]

    items = await asyncio.to_thread(read)
    return json_response(AuditTrail(items, items[-1].seq if len(items) == limit else None))


@get(
    "/admin/audit/verify",
    tags=TAGS,
    summary="Walk the audit chain; report the first broken link",
    responses=answers({200: AuditCheck}, *ADMIN),
)
async def audit_verify(request: Request, state: State) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    runtime.access.require(caller, AdminPermission.AUDIT_READ, ALL)

    def walk() -> AuditCheck:
        with runtime.sessions() as session:
            checked, broken = audit.verify(session)
            head = audit.head(session)
        shown = f"{head[0]}:{head[1]}" if head is not None else None
        return AuditCheck(checked, broken is None, AuditBreak(broken.seq, broken.message) if broken else None, shown)

    return json_response(await asyncio.to_thread(walk))


# --- pending changes -----------------------------------------------------------------------------------------


@get(
    "/admin/changes",
    tags=TAGS,
    summary="Changes waiting for approval or for their time (and decided ones)",
    responses=answers({200: Changes}, *ADMIN),
)
async def list_changes(
    request: Request,
    state: State,
    status: Annotated[str | None, Parameter(description="pending, scheduled, applied, rejected or failed")] = None,
    org: FromQuery[str | None] = None,
    limit: Limit = 100,
) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    if status is not None and status not in ("pending", "scheduled", "applied", "rejected", "failed"):
        raise Invalid(f"status: {status!r} is not a change status", [Issue("<request>", 0, "status", "unknown status")])
    organisations: frozenset[str] | None = None
    if org is not None:
        runtime.access.require(caller, AdminPermission.CHANGE_READ, org)
    elif not runtime.access.allowed(caller, AdminPermission.CHANGE_READ, ALL):
        known = await asyncio.to_thread(_known_orgs, runtime)
        organisations = frozenset(runtime.access.organisations(caller, AdminPermission.CHANGE_READ, known))
    items = await asyncio.to_thread(runtime.editor.changes, status, organisations, org, limit)
    return json_response(Changes(items))


@get("/admin/changes/{change_id:str}", tags=TAGS, summary="One change", responses=answers({200: Change}, *ADMIN, 404))
async def get_change(request: Request, state: State, change_id: FromPath[str]) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    change = await asyncio.to_thread(runtime.editor.change, change_id)
    runtime.access.require(caller, AdminPermission.CHANGE_READ, change.organisation)
    return json_response(change)


async def _decide(request: Request, state: State, change_id: str, approve: bool) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    body = await read_json(request, DecisionBody) if (await request.body()).strip() else DecisionBody()
    change = await asyncio.to_thread(runtime.editor.change, change_id)
    # The admin policy decides: someone who may make such changes in the organisation (a compliance officer for a
    # rule pack, an HR admin for the org chart) or a system admin, never the author.
    runtime.access.require(
        caller,
        AdminPermission.CHANGE_APPROVE,
        change.organisation,
        author=change.author,
        kind=kind_of(change.target),
    )
    return json_response(
        await asyncio.to_thread(runtime.editor.decide_change, change_id, caller.username, approve, body.comment)
    )


@post(
    "/admin/changes/{change_id:str}/approve",
    tags=TAGS,
    summary="Approve and apply a pending change (not its author)",
    status_code=200,
    responses=answers({200: Change}, *ADMIN, 404, 409, 413),
    operation_class=takes(DecisionBody, required=False),
)
async def approve_change(request: Request, state: State, change_id: FromPath[str]) -> Response[bytes]:
    return await _decide(request, state, change_id, True)


@post(
    "/admin/changes/{change_id:str}/reject",
    tags=TAGS,
    summary="Reject a pending change (not its author)",
    status_code=200,
    responses=answers({200: Change}, *ADMIN, 404, 409, 413),
    operation_class=takes(DecisionBody, required=False),
)
async def reject_change(request: Request, state: State, change_id: FromPath[str]) -> Response[bytes]:
    return await _decide(request, state, change_id, False)


ROUTES = [
    login,
    logout,
    current_session,
    list_users,
    create_user,
    get_user,
    change_user,
    list_tokens,
    issue_token,
    revoke_token,
    audit_trail,
    audit_verify,
    list_changes,
    get_change,
    approve_change,
    reject_change,
]
