"""Users of the admin API: their role grants (which the admin policy is compiled from), their passwords, and the
people they are linked to in each organisation (whom they act as on approvals and cases). Every change is audited
in the same transaction."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dutyline.engines.admin_policy import ALL, ORG_ID, ROLES
from dutyline.errors import Conflict, Forbidden, Invalid, Issue, NotFound
from dutyline.services.access.callers import Caller, CallerCache, RoleGrant, sha256, utcnow
from dutyline.services.access.passwords import Passwords
from dutyline.services.access.policy import PolicyHolder
from dutyline.services.access.sessions import USERNAME, Digests, Throttle
from dutyline.services.policies import PolicyService
from dutyline.store import access as store
from dutyline.store import audit
from dutyline.store.audit import AuditEvent
from dutyline.store.tables import UserRow

ORG_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
MIN_PASSWORD = 8
# The column's length of a user's display name (PostgreSQL refuses a longer value with a database error, SQLite
# stores it): refused here, naming the field, for the API and the command line alike.
MAX_DISPLAY_NAME = 200


class User(msgspec.Struct, forbid_unknown_fields=True):
    username: str
    display_name: str
    active: bool
    has_password: bool
    roles: list[RoleGrant]
    people: dict[str, str]  # {organisation: person}: whom the user acts as there on approvals and cases
    created_at: str
    updated_at: str


class Users:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        policy: PolicyHolder,
        passwords: Passwords,
        digests: Digests,
        throttle: Throttle,
        cache: CallerCache,
        policies: PolicyService | None,
    ) -> None:
        self._sessions = sessions
        self._policy = policy
        self._passwords = passwords
        self._digests = digests
        self._throttle = throttle
        self._cache = cache
        self._policies = policies  # the organisations and people that users are linked to (None: no links checked)

    def create_user(
        self, username: str, display_name: str, password: str | None, roles: Iterable[tuple[str, str]], by: str
    ) -> User:
        _check_username(username)
        _check_display_name(display_name)
        if password is not None:
            _check_password(password)
        grants = _check_roles(roles)
        now = utcnow()
        try:
            with self._sessions.begin() as session:
                if store.user_by_name(session, username) is not None:
                    raise Conflict(f"user {username!r} already exists")
                row = store.add_user(session, username, display_name or username, self._passwords.hash(password), now)
                store.replace_grants(session, row.id, grants, by, now)
                audit.append(
                    session, by, AuditEvent.USER_CREATED, None, f"user:{username}", {"roles": _shown_roles(grants)}
                )
                result = _user(session, row)
        except IntegrityError:
            raise Conflict(f"user {username!r} already exists") from None
        self._policy.refresh()
        return result

    def update_user(
        self,
        username: str,
        by: str,
        display_name: str | None = None,
        password: str | None = None,
        active: bool | None = None,
        roles: Iterable[tuple[str, str]] | None = None,
        people: Mapping[str, str] | None = None,
        *,
        current_password: str | None = None,
        revoke_tokens: bool = False,
        session_token: str | None = None,
    ) -> User:
        """Change a user, as `by` (who may do it is the caller's to check). Whatever `by` may do otherwise:
        nobody links themselves to a person (another administrator does it, audited), and a user changing their
        own password gives the current one. A new password ends the user's other console sessions (all of them
        when an administrator sets it; `session_token` is the one to keep); `revoke_tokens` also revokes every
        API token of the user in the same transaction (tokens are separate credentials and otherwise stay)."""
        own = username == by
        if people is not None and own:
            raise Forbidden(
                f"{by} may not link themselves to a person: another administrator of the organisation (its HR "
                "administrator) or a system administrator links them, and the audit trail records who"
            )
        if display_name is not None:
            _check_display_name(display_name)
        if password is not None:
            _check_password(password)
            if own:
                self._check_current_password(username, current_password)
        grants = _check_roles(roles) if roles is not None else None
        links = self._check_people(people) if people is not None else None
        new_hash = self._passwords.hash(password) if password is not None else None
        now = utcnow()
        with self._sessions.begin() as session:
            row = store.user_by_name(session, username)
            if row is None:
                raise NotFound(f"user {username!r} not found")
            changed: dict[str, Any] = {}
            if display_name is not None:
                row.display_name = display_name
                changed["display_name"] = display_name
            if new_hash is not None:
                row.password_hash = new_hash
                changed["password"] = "changed" if own else "reset by an administrator"
                store.end_other_sessions_of(session, row.id, sha256(session_token) if own and session_token else None)
            if revoke_tokens:
                changed["tokens_revoked"] = store.revoke_tokens_of(session, row.id, now)
            if active is not None:
                row.active = active
                changed["active"] = active
                if not active:
                    store.end_sessions_of(session, row.id)
            if grants is not None:
                store.replace_grants(session, row.id, grants, by, now)
                changed["roles"] = _shown_roles(grants)
            if links is not None:
                before = {link.organisation: link.person for link in store.people(session, [row.id])}
                store.replace_people(session, row.id, links, by, now)
                for organisation in sorted(set(before) | set(links)):
                    # one entry per organisation whose link changes, for its auditors
                    if before.get(organisation) != links.get(organisation):
                        detail = {"person": links.get(organisation), "previous": before.get(organisation)}
                        audit.append(session, by, AuditEvent.USER_LINKED, organisation, f"user:{username}", detail)
            row.updated_at = now
            if changed or links is None:
                audit.append(session, by, AuditEvent.USER_CHANGED, None, f"user:{username}", changed)
            result = _user(session, row)
        self._policy.refresh()
        self._cache.forget()
        return result

    def linked_organisations(self, username: str, people: Mapping[str, str]) -> list[str]:
        """The organisations whose link a `people` change (the whole new set) adds, moves or removes."""
        with self._sessions() as session:
            row = store.user_by_name(session, username)
            if row is None:
                raise NotFound(f"user {username!r} not found")
            before = {link.organisation: link.person for link in store.people(session, [row.id])}
        return sorted(org for org in set(before) | set(people) if before.get(org) != people.get(org))

    def users(self) -> list[User]:
        with self._sessions() as session:
            return [_user(session, row) for row in store.users(session)]

    def user(self, username: str) -> User:
        with self._sessions() as session:
            row = store.user_by_name(session, username)
            if row is None:
                raise NotFound(f"user {username!r} not found")
            return _user(session, row)

    def acting_person(self, caller: Caller, organisation: str, claimed: str | None) -> str:
        """The person a console user acts as in `organisation` (approving, rejecting, requesting, resolving): the
        person a system administrator linked them to. Forbidden when they are linked to nobody there, hold only the
        auditor role there, or `claimed` (the body's `person`) is someone else. Bearer tokens never come here:
        their clients attest the person themselves."""
        with self._sessions() as session:
            link = next((p for p in store.people(session, [caller.user_id]) if p.organisation == organisation), None)
            roles = {g.role for g in store.grants(session, [caller.user_id]) if g.organisation in (organisation, ALL)}
        if link is None:
            raise Forbidden(
                f"{caller.username} is linked to no person in {organisation!r}, so may not act there from the console: "
                f"another administrator links them (PATCH /admin/users/{caller.username} with people)"
            )
        if roles == {"auditor"}:
            raise Forbidden(f"{caller.username} is an auditor in {organisation!r}: auditors read, they do not act")
        org = self._policies.current.get(organisation) if self._policies is not None else None
        identities = org.identities if org is not None else {}
        if claimed is not None and identities.get(claimed, claimed) != link.person:
            raise Forbidden(f"a console user acts as their own person ({link.person})")
        return link.person

    def _check_current_password(self, username: str, current: str | None) -> None:
        """A user changing their own password proves they know the current one (a stolen session alone must not
        do it); wrong tries are throttled like logins."""
        if current is None:
            raise Invalid(
                "current_password: required to change your own password",
                [Issue("<request>", 0, "current_password", "required to change your own password")],
            )
        key = self._digests.of("current-password", username.lower())
        now = utcnow()
        with self._sessions.begin() as session:
            row = store.user_by_name(session, username)
            tries, since = store.count_login_attempt(session, key, now, self._throttle.window)
        self._throttle.refuse_beyond(self._throttle.attempts, tries, since, now, "user", "wrong current passwords")
        if not self._passwords.verify(row.password_hash if row is not None else None, current):
            raise Forbidden("current_password is wrong")
        with self._sessions.begin() as session:
            store.clear_login_attempts(session, key)

    def _check_people(self, people: Mapping[str, str]) -> dict[str, str]:
        """{organisation: person} with each organisation a current one and each person one of its people (any of
        their identities, stored as the person's id); Invalid naming `people.<organisation>` otherwise."""
        current = self._policies.current if self._policies is not None else None
        out = {}
        for organisation, person in people.items():
            org = current.get(organisation) if current is not None else None
            if org is None:
                raise Invalid(
                    f"people.{organisation}: {organisation!r} is not an organisation",
                    [Issue("<request>", 0, f"people.{organisation}", "unknown organisation")],
                )
            if person not in org.identities:
                raise Invalid(
                    f"people.{organisation}: {person!r} is not a person of {organisation!r}",
                    [Issue("<request>", 0, f"people.{organisation}", "unknown person")],
                )
            out[organisation] = org.identities[person]
        return out


def _user(session: Session, row: UserRow) -> User:
    return User(
        username=row.username,
        display_name=row.display_name,
        active=row.active,
        has_password=row.password_hash is not None,
        roles=[RoleGrant(g.role, g.organisation) for g in store.grants(session, [row.id])],
        people={link.organisation: link.person for link in store.people(session, [row.id])},
        created_at=row.created_at.isoformat(),
        updated_at=row.updated_at.isoformat(),
    )


def _check_username(username: str) -> None:
    if not USERNAME.match(username):
        raise Invalid(
            f"username {username!r} is not valid",
            [Issue("<request>", 0, "username", "1–64 letters, digits, _ . @ -, starting with a letter or digit")],
        )


def _check_display_name(display_name: str) -> None:
    if len(display_name) > MAX_DISPLAY_NAME:
        raise Invalid(
            f"display_name: at most {MAX_DISPLAY_NAME} characters, not {len(display_name)}",
            [Issue("<request>", 0, "display_name", f"at most {MAX_DISPLAY_NAME} characters")],
        )


def _check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= 1024:
        raise Invalid(
            f"a password needs at least {MIN_PASSWORD} characters",
            [Issue("<request>", 0, "password", f"at least {MIN_PASSWORD} characters")],
        )


def _check_roles(roles: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    out = []
    for index, (role, organisation) in enumerate(roles):
        if role not in ROLES:
            raise Invalid(
                f"unknown role {role!r}", [Issue("<request>", 0, f"roles[{index}].role", f"one of {', '.join(ROLES)}")]
            )
        if role == "system_admin":
            organisation = ALL
        if organisation != ALL and (not ORG_PATTERN.match(organisation) or organisation == ORG_ID):
            raise Invalid(
                f"roles[{index}].organisation: {organisation!r} is not an organisation id or *",
                [Issue("<request>", 0, f"roles[{index}].organisation", "an organisation id, or * for all")],
            )
        out.append((role, organisation))
    return out


def _shown_roles(grants: Iterable[tuple[str, str]]) -> list[str]:
    return [f"{role}@{organisation}" for role, organisation in grants]
