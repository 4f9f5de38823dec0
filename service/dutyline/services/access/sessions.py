"""Console sessions: login (argon2id, throttled per username and address), logout, the caller a session cookie
stands for, its CSRF token, and what the console draws from it (`Session`).

A username that is no user is written to the audit trail as a keyed digest: it is often a password typed into the
wrong field.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import math
import re
import secrets
import time
from dataclasses import dataclass

import msgspec
from sqlalchemy import orm

from dutyline.engines.admin_policy import ALL, CATALOGUE, AdminPermission
from dutyline.errors import TooManyRequests, Unauthenticated
from dutyline.services.access.callers import Caller, CallerCache, RoleGrant, granted, sha256, utcnow
from dutyline.services.access.passwords import Passwords
from dutyline.services.access.policy import PolicyHolder, known_organisations
from dutyline.services.metrics import LOGINS_THROTTLED
from dutyline.store import access as store
from dutyline.store import audit
from dutyline.store.audit import AuditEvent

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")

# Permissions the policy grants only for some attributes: the console may offer them if any of these is granted
# (approving a pending change depends on its kind; the route asks again for the change itself).
_ASKED_WITH: dict[AdminPermission, list[dict[str, str]]] = {
    AdminPermission.CHANGE_APPROVE: [{"kind": "rule_pack"}, {"kind": "org_chart"}],
}


@dataclass(frozen=True, slots=True)
class Login:
    token: str
    csrf_token: str
    expires_at: dt.datetime
    caller: Caller


class Session(msgspec.Struct, forbid_unknown_fields=True):
    """Who is logged in: roles, permissions (`resource:action`) per organisation (`*`: all), CSRF token."""

    username: str
    scope: str
    csrf_token: str | None
    expires_at: str | None
    roles: list[RoleGrant]
    permissions: dict[str, list[str]]


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(expected.encode(), given.encode())  # type: ignore[union-attr]


class Digests:
    """Keyed digests of what must not be stored as typed: login throttle keys, and unknown usernames."""

    def __init__(self, sessions: orm.sessionmaker[orm.Session], secret_key: str) -> None:
        self._sessions = sessions
        self._secret_key = secret_key

    def of(self, purpose: str, *parts: str) -> str:
        message = "\0".join((purpose, *parts)).encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def unknown_user(self, typed: str) -> str:
        """How the audit trail names a username that is no user: never the text (often a password typed into the
        wrong field), but a keyed digest of it, so that repeated tries with one name can still be told apart."""
        return f"unknown user {self.of('audit', typed)[:12]}"

    @functools.cached_property
    def _key(self) -> bytes:
        """The settings' secret key; without one, a key generated once and kept in the database (so that every
        replica digests a name alike: the throttle's counts are shared, and the audit trail's names agree)."""
        if self._secret_key:
            return self._secret_key.encode()
        with self._sessions.begin() as session:
            return store.server_secret(session, "username_digest", secrets.token_hex(32), utcnow()).encode()


@dataclass(frozen=True, slots=True)
class Throttle:
    """How many tries a window (which begins at the first) allows: of one username from one address (`attempts`),
    and of any usernames from one address (`per_address`). Counts are kept in the database, so that every replica
    and worker shares them."""

    attempts: int
    window: dt.timedelta
    per_address: int

    def refuse_beyond(self, budget: int, count: int, began: dt.datetime, now: dt.datetime, by: str, what: str) -> None:
        """429, saying when to retry, for the try beyond `budget`."""
        if count > budget:
            LOGINS_THROTTLED.labels(by).inc()
            retry = max(1, math.ceil((began + self.window - now).total_seconds()))
            raise TooManyRequests(f"too many {what}; try again in {retry} s", retry)


class ConsoleSessions:
    def __init__(
        self,
        sessions: orm.sessionmaker[orm.Session],
        policy: PolicyHolder,
        passwords: Passwords,
        digests: Digests,
        throttle: Throttle,
        ttl: dt.timedelta,
        cache: CallerCache,
    ) -> None:
        self._sessions = sessions
        self._policy = policy
        self._passwords = passwords
        self._digests = digests
        self._throttle = throttle
        self._ttl = ttl
        self._cache = cache

    def login(self, username: str, password: str, ip: str) -> Login:
        """Check the password (argon2id) and open a session.

        Each try is counted for its username and address, and for its address alone, in the database before any
        password is hashed, so every replica and worker shares one count and concurrent tries cannot slip past it:
        beyond `login_attempts` tries of one username, or `login_attempts_per_address` tries of any usernames, from
        one address in a window (which begins at the first), `429` until it ends, even with the right password.
        A successful login clears its username's count and gives its try back to the address.
        """
        key = self._digests.of("login", username.lower(), ip)
        address = self._digests.of("login-address", ip)
        now = utcnow()
        window = self._throttle.window
        with self._sessions.begin() as session:
            row = store.user_by_name(session, username) if USERNAME.match(username) else None
            from_address, address_since = store.count_login_attempt(session, address, now, window)
            tries, since = store.count_login_attempt(session, key, now, window)
        self._throttle.refuse_beyond(
            self._throttle.per_address, from_address, address_since, now, "address", "failed logins"
        )
        self._throttle.refuse_beyond(self._throttle.attempts, tries, since, now, "user", "failed logins")
        stored = row.password_hash if row is not None and row.active else None
        if not self._passwords.verify(stored, password):
            who = row.username if row is not None else self._digests.unknown_user(username)
            with self._sessions.begin() as session:
                store.prune_login_attempts(session, now - window)
                audit.append(session, who, AuditEvent.LOGIN_FAILED, None, f"user:{who}", {"ip": ip})
            raise Unauthenticated("wrong username or password")
        assert row is not None and stored is not None
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = now + self._ttl
        rehashed = self._passwords.hash(password) if self._passwords.needs_rehash(stored) else None
        with self._sessions.begin() as session:
            if rehashed is not None:
                fresh = store.user_by_name(session, username)
                if fresh is not None:
                    fresh.password_hash = rehashed
            store.clear_login_attempts(session, key)
            store.give_back_login_attempt(session, address, address_since)
            store.delete_expired_sessions(session, now)
            store.add_session(session, sha256(token), row.id, csrf, now, expires, ip)
            audit.append(session, row.username, AuditEvent.LOGIN, None, f"user:{row.username}", {"ip": ip})
            organisations = granted(session, row.id)
        caller = Caller(row.id, row.username, "session", csrf, None, expires, organisations)
        return Login(token, csrf, expires, caller)

    def logout(self, caller: Caller, token: str) -> None:
        with self._sessions.begin() as session:
            store.end_session(session, sha256(token))
            audit.append(session, caller.username, AuditEvent.LOGOUT, None, f"user:{caller.username}")
        self._cache.sessions.pop(sha256(token), None)

    def session_caller(self, token: str) -> Caller | None:
        key = sha256(token)
        with self._sessions() as session:
            found = store.session_of(session, key, utcnow())
            if found is None:
                return None
            row, user = found
            reached = granted(session, user.id)
            caller = Caller(user.id, user.username, "session", row.csrf_token, None, row.expires_at, reached)
        lasts = (row.expires_at - utcnow()).total_seconds()
        if len(self._cache.sessions) > 10_000:
            self._cache.sessions.clear()
        self._cache.sessions[key] = (time.monotonic() + min(self._cache.ttl, lasts), caller)
        return caller

    def cached_session_caller(self, token: str) -> Caller | None:
        """`session_caller` from the cache alone: the caller of a session found in the last few seconds (None: not
        known; ask `session_caller`, which reads the database and remembers the answer)."""
        cached = self._cache.sessions.get(sha256(token))
        return cached[1] if cached is not None and cached[0] > time.monotonic() else None

    def roles_of(self, caller: Caller) -> list[RoleGrant]:
        with self._sessions() as session:
            return [RoleGrant(g.role, g.organisation) for g in store.grants(session, [caller.user_id])]

    def view(self, caller: Caller) -> Session:
        """What the console needs to draw itself: who, which roles, and what they may do where."""
        with self._sessions() as session:
            orgs = known_organisations(session, with_deleted=False)
        permissions: dict[str, list[str]] = {}
        for org in [ALL, *orgs]:
            allowed = [
                f"{resource}:{action}"
                for resource, actions in CATALOGUE.items()
                for action in actions
                if any(
                    self._policy.allowed(caller, AdminPermission.of(resource, action), org, **asked)
                    for asked in _ASKED_WITH.get(AdminPermission.of(resource, action), [{}])
                )
            ]
            if allowed:
                permissions[org] = allowed
        return Session(
            username=caller.username,
            scope=caller.scope,
            csrf_token=caller.csrf_token,
            expires_at=caller.session_expires.isoformat() if caller.session_expires else None,
            roles=self.roles_of(caller),
            permissions=permissions,
        )
