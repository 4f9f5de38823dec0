"""Who is calling the admin API, and may they: users, console sessions, API tokens, login throttling, and
the admin policy (`engines.admin_policy`) compiled from the users' role grants and kept in memory.

Secrets (session tokens, API tokens) are random, shown once, and stored as SHA-256; passwords as argon2id.
Every login, logout, user change and token issued is written to the audit trail in the same transaction. A
username that is no user is written there as a keyed digest: it is often a password typed into the wrong field.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dutyline.engines.admin_policy import ALL, ORG_ID, ROLES, AdminPolicy, Member, compile_admin
from dutyline.errors import Conflict, Forbidden, Invalid, Issue, NotFound, TooManyRequests, Unauthenticated
from dutyline.services.policies import PolicyService
from dutyline.store import access as store
from dutyline.store import audit

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
ORG_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
SCOPES = ("decide", "read", "admin")
MIN_PASSWORD = 8
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("not a password anyone has")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller of the admin API.

    `scope` is what the policy sees as `context.scope`: `session` (console login), or the token's
    strongest scope, `admin`, `read` or `decide`.
    """

    user_id: int
    username: str
    scope: str
    csrf_token: str | None = None  # console sessions only
    token_id: str | None = None  # API tokens only
    session_expires: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Login:
    token: str
    csrf_token: str
    expires_at: dt.datetime
    caller: Caller


@dataclass(slots=True)
class _TokenCache:
    """Decision endpoints check bearer tokens and console sessions without a database read per request: answers
    are kept a few seconds (a session no longer than it lasts; logout and user changes forget them at once)."""

    ttl: float = 5.0
    entries: dict[str, tuple[float, bool]] = field(default_factory=dict)
    sessions: dict[str, tuple[float, Caller]] = field(default_factory=dict)


class AccessService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        session_ttl: float = 8 * 3600.0,
        login_attempts: int = 5,
        login_window: float = 60.0,
        secret_key: str = "",
        policies: PolicyService | None = None,
    ) -> None:
        self._sessions = sessions
        self._policies = policies  # the organisations and people that users are linked to (None: no links checked)
        self._ttl = dt.timedelta(seconds=session_ttl)
        self._login_attempts = login_attempts
        self._login_window = dt.timedelta(seconds=login_window)
        self._secret_key = secret_key
        self._lock = threading.Lock()
        self._fingerprint = ""
        self.policy: AdminPolicy = compile_admin([])
        self._tokens = _TokenCache()

    # --- the admin policy -------------------------------------------------------------------------------

    def refresh(self) -> AdminPolicy:
        """Recompile the admin policy if users or grants changed (here or in another replica)."""
        with self._sessions() as session:
            rows = store.access_rows(session)
        fingerprint = hashlib.sha256(repr(rows).encode()).hexdigest()
        with self._lock:
            if fingerprint == self._fingerprint:
                return self.policy
            members: dict[int, tuple[str, list[tuple[str, str]]]] = {}
            for user_id, username, active, role, organisation in rows:
                if not active:
                    continue
                entry = members.setdefault(user_id, (username, []))
                if role is not None and organisation is not None:
                    entry[1].append((role, organisation))
            self.policy = compile_admin([Member(uid, name, tuple(grants)) for uid, (name, grants) in members.items()])
            self._fingerprint = fingerprint
            return self.policy

    def allowed(self, caller: Caller, resource: str, action: str, organisation: str = ALL, **attributes: Any) -> bool:
        decision = self.policy.decide(caller.user_id, resource, action, organisation, caller.scope, time.time(), attributes)
        return decision.allowed

    def require(self, caller: Caller, resource: str, action: str, organisation: str = ALL, **attributes: Any) -> None:
        """Raise Forbidden unless the admin policy allows it; the message says what was refused and why."""
        decision = self.policy.decide(caller.user_id, resource, action, organisation, caller.scope, time.time(), attributes)
        if decision.allowed:
            return
        where = "" if organisation == ALL else f" in {organisation!r}"
        why = {
            "denied_by_duty": "; ".join(b.grant.duty.en or b.grant.duty.text for b in decision.denied_by),
            "no_active_assignment": "the user holds no admin role",
        }.get(decision.code, "no role of the user grants it")
        raise Forbidden(f"{caller.username} may not {action} {resource}{where}: {why}")

    def organisations(self, caller: Caller, resource: str, action: str, candidates: Iterable[str]) -> list[str]:
        """The candidates on which the caller may do the action."""
        return [org for org in candidates if self.allowed(caller, resource, action, org)]

    # --- users --------------------------------------------------------------------------------------------

    def create_user(
        self, username: str, display_name: str, password: str | None, roles: Iterable[tuple[str, str]], by: str
    ) -> dict[str, Any]:
        _check_username(username)
        if password is not None:
            _check_password(password)
        grants = _check_roles(roles)
        now = utcnow()
        try:
            with self._sessions.begin() as session:
                if store.user_by_name(session, username) is not None:
                    raise Conflict(f"user {username!r} already exists")
                row = store.add_user(session, username, display_name or username, _hash(password), now)
                store.replace_grants(session, row.id, grants, by, now)
                audit.append(session, by, "user_created", None, f"user:{username}", {"roles": _shown_roles(grants)})
                result = self._user_dict(session, row)
        except IntegrityError:
            raise Conflict(f"user {username!r} already exists") from None
        self.refresh()
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
    ) -> dict[str, Any]:
        if password is not None:
            _check_password(password)
        grants = _check_roles(roles) if roles is not None else None
        links = self._check_people(people) if people is not None else None
        now = utcnow()
        with self._sessions.begin() as session:
            row = store.user_by_name(session, username)
            if row is None:
                raise NotFound(f"user {username!r} not found")
            changed: dict[str, Any] = {}
            if display_name is not None:
                row.display_name = display_name
                changed["display_name"] = display_name
            if password is not None:
                row.password_hash = _hash(password)
                changed["password"] = "changed"
                store.end_sessions_of(session, row.id)
            if active is not None:
                row.active = active
                changed["active"] = active
                if not active:
                    store.end_sessions_of(session, row.id)
            if grants is not None:
                store.replace_grants(session, row.id, grants, by, now)
                changed["roles"] = _shown_roles(grants)
            if links is not None:
                store.replace_people(session, row.id, links, by, now)
                changed["people"] = links
            row.updated_at = now
            audit.append(session, by, "user_changed", None, f"user:{username}", changed)
            result = self._user_dict(session, row)
        self.refresh()
        self._tokens.entries.clear()
        self._tokens.sessions.clear()
        return result

    def users(self) -> list[dict[str, Any]]:
        with self._sessions() as session:
            return [self._user_dict(session, row) for row in store.users(session)]

    def user(self, username: str) -> dict[str, Any]:
        with self._sessions() as session:
            row = store.user_by_name(session, username)
            if row is None:
                raise NotFound(f"user {username!r} not found")
            return self._user_dict(session, row)

    def _user_dict(self, session: Session, row: Any) -> dict[str, Any]:
        return {
            "username": row.username,
            "display_name": row.display_name,
            "active": row.active,
            "has_password": row.password_hash is not None,
            "roles": [{"role": g.role, "organisation": g.organisation} for g in store.grants(session, [row.id])],
            "people": {link.organisation: link.person for link in store.people(session, [row.id])},
            "created_at": row.created_at.isoformat(),
            "updated_at": row.updated_at.isoformat(),
        }

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
                f"a system administrator links them (PATCH /admin/users/{caller.username} with people)"
            )
        if roles == {"auditor"}:
            raise Forbidden(f"{caller.username} is an auditor in {organisation!r}: auditors read, they do not act")
        org = self._policies.current.get(organisation) if self._policies is not None else None
        identities = org.identities if org is not None else {}
        if claimed is not None and identities.get(claimed, claimed) != link.person:
            raise Forbidden(f"a console user acts as their own person ({link.person})")
        return link.person

    def roles_of(self, caller: Caller) -> list[dict[str, str]]:
        with self._sessions() as session:
            return [{"role": g.role, "organisation": g.organisation} for g in store.grants(session, [caller.user_id])]

    # --- console sessions -----------------------------------------------------------------------------

    def login(self, username: str, password: str, ip: str) -> Login:
        """Check the password (argon2id) and open a session.

        Each try is counted for its username and address in the database before the password is checked, so
        every replica and worker shares one count and concurrent tries cannot slip past it: beyond
        `login_attempts` tries in a window (which begins at the first), `429` until it ends, even with the right
        password. A successful login clears the count.
        """
        key = self._digest("login", username.lower(), ip)
        now = utcnow()
        with self._sessions.begin() as session:
            row = store.user_by_name(session, username) if USERNAME.match(username) else None
            tries, since = store.count_login_attempt(session, key, now, self._login_window)
        if tries > self._login_attempts:
            retry = max(1, math.ceil((since + self._login_window - now).total_seconds()))
            raise TooManyRequests(f"too many failed logins; try again in {retry} s", retry)
        stored = row.password_hash if row is not None and row.active else None
        if not _verify(stored, password):
            who = row.username if row is not None else self._unknown_user(username)
            with self._sessions.begin() as session:
                store.prune_login_attempts(session, now - self._login_window)
                audit.append(session, who, "login_failed", None, f"user:{who}", {"ip": ip})
            raise Unauthenticated("wrong username or password")
        assert row is not None and stored is not None
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = now + self._ttl
        with self._sessions.begin() as session:
            if _hasher.check_needs_rehash(stored):
                fresh = store.user_by_name(session, username)
                if fresh is not None:
                    fresh.password_hash = _hasher.hash(password)
            store.clear_login_attempts(session, key)
            store.delete_expired_sessions(session, now)
            store.add_session(session, sha256(token), row.id, csrf, now, expires, ip)
            audit.append(session, row.username, "login", None, f"user:{row.username}", {"ip": ip})
        return Login(token, csrf, expires, Caller(row.id, row.username, "session", csrf, None, expires))

    def logout(self, caller: Caller, token: str) -> None:
        with self._sessions.begin() as session:
            store.end_session(session, sha256(token))
            audit.append(session, caller.username, "logout", None, f"user:{caller.username}")
        self._tokens.sessions.pop(sha256(token), None)

    def session_caller(self, token: str) -> Caller | None:
        key = sha256(token)
        with self._sessions() as session:
            found = store.session_of(session, key, utcnow())
        if found is None:
            return None
        row, user = found
        caller = Caller(user.id, user.username, "session", row.csrf_token, None, row.expires_at)
        lasts = (row.expires_at - utcnow()).total_seconds()
        if len(self._tokens.sessions) > 10_000:
            self._tokens.sessions.clear()
        self._tokens.sessions[key] = (time.monotonic() + min(self._tokens.ttl, lasts), caller)
        return caller

    def cached_session_caller(self, token: str) -> Caller | None:
        """`session_caller` from the cache alone: the caller of a session found in the last few seconds (None: not
        known; ask `session_caller`, which reads the database and remembers the answer)."""
        cached = self._tokens.sessions.get(sha256(token))
        return cached[1] if cached is not None and cached[0] > time.monotonic() else None

    def _unknown_user(self, typed: str) -> str:
        """How the audit trail names a username that is no user: never the text (often a password typed into the
        wrong field), but a keyed digest of it, so that repeated tries with one name can still be told apart."""
        return f"unknown user {self._digest('audit', typed)[:12]}"

    def _digest(self, purpose: str, *parts: str) -> str:
        message = "\0".join((purpose, *parts)).encode("utf-8", "surrogatepass")
        return hmac.new(self._digest_key, message, hashlib.sha256).hexdigest()

    @functools.cached_property
    def _digest_key(self) -> bytes:
        """The settings' secret key; without one, a key generated once and kept in the database (so that every
        replica digests a name alike: the throttle's counts are shared, and the audit trail's names agree)."""
        if self._secret_key:
            return self._secret_key.encode()
        with self._sessions.begin() as session:
            return store.server_secret(session, "username_digest", secrets.token_hex(32), utcnow()).encode()

    # --- API tokens ---------------------------------------------------------------------------------------

    def issue_token(
        self, username: str, scopes: Iterable[str], name: str, by: str, expires_in_days: float | None = None
    ) -> dict[str, Any]:
        """A new bearer token acting as `username` within `scopes`; the secret is in the result, once."""
        wanted = sorted(set(scopes), key=SCOPES.index) if all(s in SCOPES for s in scopes) else None
        if not wanted:
            raise Invalid(
                f"scopes must be some of {', '.join(SCOPES)}", [Issue("<request>", 0, "scopes", f"one or more of {', '.join(SCOPES)}")]
            )
        token_id = secrets.token_hex(6)
        secret = f"dl_{token_id}_{secrets.token_urlsafe(32)}"
        now = utcnow()
        expires = now + dt.timedelta(days=expires_in_days) if expires_in_days else None
        with self._sessions.begin() as session:
            user = store.user_by_name(session, username)
            if user is None:
                raise NotFound(f"user {username!r} not found")
            row = store.add_token(session, token_id, sha256(secret), user.id, name or token_id, ",".join(wanted), now, expires)
            audit.append(session, by, "token_issued", None, f"token:{token_id}", {"user": username, "scopes": wanted, "name": row.name})
            shown = _token_dict(row, username)
        return {**shown, "token": secret}

    def tokens(self, username: str | None = None) -> list[dict[str, Any]]:
        with self._sessions() as session:
            user_id = None
            if username is not None:
                user = store.user_by_name(session, username)
                if user is None:
                    raise NotFound(f"user {username!r} not found")
                user_id = user.id
            return [_token_dict(row, name) for row, name in store.tokens(session, user_id)]

    def revoke_token(self, token_id: str, by: str) -> None:
        with self._sessions.begin() as session:
            if not store.revoke_token(session, token_id, utcnow()):
                raise NotFound(f"token {token_id!r} not found (or already revoked)")
            audit.append(session, by, "token_revoked", None, f"token:{token_id}")
        self._tokens.entries.clear()

    def token_caller(self, token: str) -> Caller | None:
        with self._sessions() as session:
            found = store.token_of(session, sha256(token), utcnow())
        if found is None:
            return None
        row, user = found
        scopes = row.scopes.split(",")
        scope = "admin" if "admin" in scopes else "read" if "read" in scopes else "decide"
        return Caller(user.id, user.username, scope, None, row.id)

    def cached_may_decide(self, token: str) -> bool | None:
        """`may_decide` from the cache alone (None: not known yet; ask `may_decide`, which reads the database)."""
        cached = self._tokens.entries.get(sha256(token))
        return cached[1] if cached is not None and cached[0] > time.monotonic() else None

    def may_decide(self, token: str) -> bool:
        """Whether a bearer token may call the decision endpoints (scope decide or admin); cached a few seconds."""
        key = sha256(token)
        now = time.monotonic()
        cached = self._tokens.entries.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        with self._sessions() as session:
            found = store.token_of(session, key, utcnow())
        ok = found is not None and bool({"decide", "admin"} & set(found[0].scopes.split(",")))
        if len(self._tokens.entries) > 10_000:
            self._tokens.entries.clear()
        self._tokens.entries[key] = (now + self._tokens.ttl, ok)
        return ok


def _hash(password: str | None) -> str | None:
    return _hasher.hash(password) if password is not None else None


def _verify(stored: str | None, password: str) -> bool:
    """Constant work whether or not the user exists: an unknown user is checked against a dummy hash."""
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def _check_username(username: str) -> None:
    if not USERNAME.match(username):
        raise Invalid(
            f"username {username!r} is not valid",
            [Issue("<request>", 0, "username", "1–64 letters, digits, _ . @ -, starting with a letter or digit")],
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


def _token_dict(row: Any, username: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "user": username,
        "scopes": row.scopes.split(","),
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(expected.encode(), given.encode())  # type: ignore[union-attr]

