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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dutyline.engines.admin_policy import ALL, ORG_ID, ROLES, AdminPermission, AdminPolicy, Member, compile_admin
from dutyline.engines.decision import Decision
from dutyline.errors import Conflict, Forbidden, Invalid, Issue, NotFound, TooManyRequests, Unauthenticated, Unavailable
from dutyline.services.metrics import LOGINS_THROTTLED, PASSWORD_HASHES, PASSWORD_HASHES_PEAK, PASSWORD_HASHES_RUNNING
from dutyline.services.policies import PolicyService
from dutyline.services.reach import Reach
from dutyline.store import access as store
from dutyline.store import audit, history
from dutyline.store.audit import AuditEvent

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
ORG_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
SCOPES = ("decide", "read", "admin")
DECIDING = frozenset({"decide", "admin"})  # the token scopes that may call the decision API
MIN_PASSWORD = 8
# The columns' lengths of a user's display name and a token's name (PostgreSQL refuses a longer value with a database
# error, SQLite stores it): refused here, naming the field, for the API and the command line alike.
MAX_DISPLAY_NAME = MAX_NAME = 200
_hasher = PasswordHasher()
T = TypeVar("T")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller of the admin API.

    `scope` is what the policy sees as `context.scope`: `session` (console login), or the token's
    strongest scope, `admin`, `read` or `decide`. `organisations` is what it reaches on the decision API (None:
    every organisation): a token's, or for a session its user's (`_granted`: roles and links).
    """

    user_id: int
    username: str
    scope: str
    csrf_token: str | None = None  # console sessions only
    token_id: str | None = None  # API tokens only
    session_expires: dt.datetime | None = None
    organisations: frozenset[str] | None = frozenset()
    scopes: tuple[str, ...] = ()  # a token's scopes, all of them

    @property
    def may_decide(self) -> bool:
        """Whether the decision API takes this caller: a console session, or a token with the decide or admin scope."""
        return self.token_id is None or bool(DECIDING & set(self.scopes))

    @property
    def reach(self) -> Reach:
        holder = f"token {self.token_id}" if self.token_id is not None else f"console user {self.username}"
        return Reach(self.organisations, holder)


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
    entries: dict[str, tuple[float, Caller | None]] = field(default_factory=dict)  # None: no such live token
    sessions: dict[str, tuple[float, Caller]] = field(default_factory=dict)


class _Hashing:
    """At most `limit` argon2id computations at once in this process (each takes 64 MiB): parallel logins queue
    here for at most `wait` seconds, then get a 503, rather than take the memory the process needs."""

    def __init__(self, limit: int, wait: float) -> None:
        self._slots = threading.BoundedSemaphore(max(1, limit))
        self._wait = wait
        self._lock = threading.Lock()
        self._running = 0
        self._peak = 0

    def run(self, kind: str, work: Callable[[], T]) -> T:
        if not self._slots.acquire(timeout=self._wait):
            raise Unavailable("too many password checks at once; retry shortly")
        try:
            with self._lock:
                self._running += 1
                self._peak = max(self._peak, self._running)
                PASSWORD_HASHES_RUNNING.set(self._running)
                PASSWORD_HASHES_PEAK.set(self._peak)
            PASSWORD_HASHES.labels(kind).inc()
            return work()
        finally:
            with self._lock:
                self._running -= 1
                PASSWORD_HASHES_RUNNING.set(self._running)
            self._slots.release()


class AccessService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        session_ttl: float = 8 * 3600.0,
        login_attempts: int = 5,
        login_window: float = 60.0,
        secret_key: str = "",
        policies: PolicyService | None = None,
        login_attempts_per_address: int = 50,
        hash_concurrency: int = 2,
        hash_wait: float = 10.0,
    ) -> None:
        self._sessions = sessions
        self._policies = policies  # the organisations and people that users are linked to (None: no links checked)
        self._ttl = dt.timedelta(seconds=session_ttl)
        self._login_attempts = login_attempts
        self._login_window = dt.timedelta(seconds=login_window)
        self._per_address = login_attempts_per_address
        self._hashing = _Hashing(hash_concurrency, hash_wait)
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

    def allowed(self, caller: Caller, permission: AdminPermission, organisation: str = ALL, **attributes: Any) -> bool:
        return self._decide(caller, permission, organisation, attributes).allowed

    def require(self, caller: Caller, permission: AdminPermission, organisation: str = ALL, **attributes: Any) -> None:
        """Raise Forbidden unless the admin policy allows it; the message says what was refused and why."""
        decision = self._decide(caller, permission, organisation, attributes)
        if decision.allowed:
            return
        where = "" if organisation == ALL else f" in {organisation!r}"
        why = {
            "denied_by_duty": "; ".join(b.grant.duty.en or b.grant.duty.text for b in decision.denied_by),
            "no_active_assignment": "the user holds no admin role",
        }.get(decision.code, "no role of the user grants it")
        raise Forbidden(f"{caller.username} may not {permission.action} {permission.resource}{where}: {why}")

    def organisations(self, caller: Caller, permission: AdminPermission, candidates: Iterable[str]) -> list[str]:
        """The candidates in which the caller holds the permission."""
        return [org for org in candidates if self.allowed(caller, permission, org)]

    def _decide(
        self, caller: Caller, permission: AdminPermission, organisation: str, attributes: dict[str, Any]
    ) -> Decision:
        return self.policy.decide(
            caller.user_id, permission.resource, permission.action, organisation, caller.scope, time.time(), attributes
        )

    # --- users --------------------------------------------------------------------------------------------

    def create_user(
        self, username: str, display_name: str, password: str | None, roles: Iterable[tuple[str, str]], by: str
    ) -> dict[str, Any]:
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
                row = store.add_user(session, username, display_name or username, self._hash(password), now)
                store.replace_grants(session, row.id, grants, by, now)
                audit.append(
                    session, by, AuditEvent.USER_CREATED, None, f"user:{username}", {"roles": _shown_roles(grants)}
                )
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
        *,
        current_password: str | None = None,
        revoke_tokens: bool = False,
        session_token: str | None = None,
    ) -> dict[str, Any]:
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
        new_hash = self._hash(password) if password is not None else None
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
            result = self._user_dict(session, row)
        self.refresh()
        self._tokens.entries.clear()
        self._tokens.sessions.clear()
        return result

    def linked_organisations(self, username: str, people: Mapping[str, str]) -> list[str]:
        """The organisations whose link a `people` change (the whole new set) adds, moves or removes."""
        with self._sessions() as session:
            row = store.user_by_name(session, username)
            if row is None:
                raise NotFound(f"user {username!r} not found")
            before = {link.organisation: link.person for link in store.people(session, [row.id])}
        return sorted(org for org in set(before) | set(people) if before.get(org) != people.get(org))

    def _check_current_password(self, username: str, current: str | None) -> None:
        """A user changing their own password proves they know the current one (a stolen session alone must not
        do it); wrong tries are throttled like logins."""
        if current is None:
            raise Invalid(
                "current_password: required to change your own password",
                [Issue("<request>", 0, "current_password", "required to change your own password")],
            )
        key = self._digest("current-password", username.lower())
        now = utcnow()
        with self._sessions.begin() as session:
            row = store.user_by_name(session, username)
            tries, since = store.count_login_attempt(session, key, now, self._login_window)
        if tries > self._login_attempts:
            LOGINS_THROTTLED.labels("user").inc()
            retry = max(1, math.ceil((since + self._login_window - now).total_seconds()))
            raise TooManyRequests(f"too many wrong current passwords; try again in {retry} s", retry)
        if not self._verify(row.password_hash if row is not None else None, current):
            raise Forbidden("current_password is wrong")
        with self._sessions.begin() as session:
            store.clear_login_attempts(session, key)

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
                f"another administrator links them (PATCH /admin/users/{caller.username} with people)"
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

        Each try is counted for its username and address, and for its address alone, in the database before any
        password is hashed, so every replica and worker shares one count and concurrent tries cannot slip past it:
        beyond `login_attempts` tries of one username, or `login_attempts_per_address` tries of any usernames, from
        one address in a window (which begins at the first), `429` until it ends, even with the right password.
        A successful login clears its username's count and gives its try back to the address.
        """
        key = self._digest("login", username.lower(), ip)
        address = self._digest("login-address", ip)
        now = utcnow()
        with self._sessions.begin() as session:
            row = store.user_by_name(session, username) if USERNAME.match(username) else None
            from_address, address_since = store.count_login_attempt(session, address, now, self._login_window)
            tries, since = store.count_login_attempt(session, key, now, self._login_window)
        for budget, count, began, by in (
            (self._per_address, from_address, address_since, "address"),
            (self._login_attempts, tries, since, "user"),
        ):
            if count > budget:
                LOGINS_THROTTLED.labels(by).inc()
                retry = max(1, math.ceil((began + self._login_window - now).total_seconds()))
                raise TooManyRequests(f"too many failed logins; try again in {retry} s", retry)
        stored = row.password_hash if row is not None and row.active else None
        if not self._verify(stored, password):
            who = row.username if row is not None else self._unknown_user(username)
            with self._sessions.begin() as session:
                store.prune_login_attempts(session, now - self._login_window)
                audit.append(session, who, AuditEvent.LOGIN_FAILED, None, f"user:{who}", {"ip": ip})
            raise Unauthenticated("wrong username or password")
        assert row is not None and stored is not None
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = now + self._ttl
        rehashed = self._hash(password) if _hasher.check_needs_rehash(stored) else None
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
            organisations = _granted(session, row.id)
        caller = Caller(row.id, row.username, "session", csrf, None, expires, organisations)
        return Login(token, csrf, expires, caller)

    def logout(self, caller: Caller, token: str) -> None:
        with self._sessions.begin() as session:
            store.end_session(session, sha256(token))
            audit.append(session, caller.username, AuditEvent.LOGOUT, None, f"user:{caller.username}")
        self._tokens.sessions.pop(sha256(token), None)

    def session_caller(self, token: str) -> Caller | None:
        key = sha256(token)
        with self._sessions() as session:
            found = store.session_of(session, key, utcnow())
            if found is None:
                return None
            row, user = found
            reached = _granted(session, user.id)
            caller = Caller(user.id, user.username, "session", row.csrf_token, None, row.expires_at, reached)
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
        self,
        username: str,
        scopes: Iterable[str],
        name: str,
        by: str,
        expires_in_days: float | None = None,
        organisations: Iterable[str] | None = None,
        issuer: Caller | None = None,
    ) -> dict[str, Any]:
        """A new bearer token acting as `username` within `scopes` and, on the decision API, within
        `organisations` (`["*"]`: every one); the secret is in the result, once.

        A token that may call the decision API (scope decide or admin) names its organisations: there is no
        default. `issuer` (None: the command line, which has the database anyway) may give only organisations it
        reaches itself, and `*` only as a system administrator."""
        scopes = list(scopes)
        wanted = sorted(set(scopes), key=SCOPES.index) if all(s in SCOPES for s in scopes) else None
        if not wanted:
            raise Invalid(
                f"scopes must be some of {', '.join(SCOPES)}",
                [Issue("<request>", 0, "scopes", f"one or more of {', '.join(SCOPES)}")],
            )
        if len(name) > MAX_NAME:
            raise Invalid(
                f"name: at most {MAX_NAME} characters, not {len(name)}",
                [Issue("<request>", 0, "name", f"at most {MAX_NAME} characters")],
            )
        reached = self._token_organisations(organisations, bool(DECIDING & set(wanted)), issuer)
        token_id = secrets.token_hex(6)
        secret = f"dl_{token_id}_{secrets.token_urlsafe(32)}"
        now = utcnow()
        expires = now + dt.timedelta(days=expires_in_days) if expires_in_days else None
        with self._sessions.begin() as session:
            user = store.user_by_name(session, username)
            if user is None:
                raise NotFound(f"user {username!r} not found")
            known = {row[0] for row in history.organisations(session) if not row[4]}
            for index, org in enumerate(sorted(reached - {ALL})):
                if org not in known:
                    raise Invalid(
                        f"organisations: {org!r} is not an organisation",
                        [Issue("<request>", 0, f"organisations[{index}]", "unknown organisation")],
                    )
            stored = ",".join(sorted(reached))
            row = store.add_token(
                session, token_id, sha256(secret), user.id, name or token_id, ",".join(wanted), stored, now, expires
            )
            detail = {"user": username, "scopes": wanted, "name": row.name, "organisations": sorted(reached)}
            audit.append(session, by, AuditEvent.TOKEN_ISSUED, None, f"token:{token_id}", detail)
            shown = _token_dict(row, username)
        return {**shown, "token": secret}

    def _token_organisations(self, given: Iterable[str] | None, decides: bool, issuer: Caller | None) -> frozenset[str]:
        if given is None:
            if decides:
                raise Invalid(
                    "organisations: a token that may decide names the organisations it may reach (['*']: every one, "
                    "for a system administrator to give)",
                    [Issue("<request>", 0, "organisations", "required for the decide and admin scopes")],
                )
            return frozenset()
        given = list(given)
        for index, org in enumerate(given):
            if org != ALL and (not isinstance(org, str) or not ORG_PATTERN.match(org) or len(org) > 64):
                raise Invalid(
                    f"organisations[{index}]: {org!r} is not an organisation id or *",
                    [Issue("<request>", 0, f"organisations[{index}]", "an organisation id, or * for every one")],
                )
        reached = frozenset(given)
        if ALL in reached and len(reached) > 1:
            raise Invalid(
                "organisations: * already means every organisation; give it alone",
                [Issue("<request>", 0, "organisations", "* alone, or organisation ids")],
            )
        if decides and not reached:
            raise Invalid(
                "organisations: a token that may decide reaches at least one organisation",
                [Issue("<request>", 0, "organisations", "at least one")],
            )
        if issuer is not None:
            if ALL in reached and not self.allowed(issuer, AdminPermission.USER_WRITE, ALL):
                raise Forbidden(
                    f"{issuer.username} may not issue a token for every organisation: only a system administrator may"
                )
            outside = sorted(org for org in reached - {ALL} if not issuer.reach.admits(org))
            if outside:
                raise Forbidden(
                    f"{issuer.username} may not issue a token for {', '.join(outside)}: only for organisations they "
                    f"reach themselves ({issuer.reach.shown()})"
                )
        return reached

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
            audit.append(session, by, AuditEvent.TOKEN_REVOKED, None, f"token:{token_id}")
        self._tokens.entries.clear()

    def token_caller(self, token: str) -> Caller | None:
        """The caller a live bearer token stands for (None: unknown, expired or revoked); cached a few seconds, so
        the decision endpoints read the database once per token, not per request (`cached_token_caller`)."""
        key = sha256(token)
        with self._sessions() as session:
            found = store.token_of(session, key, utcnow())
            caller = None
            if found is not None:
                row, user = found
                scopes = tuple(row.scopes.split(","))
                scope = "admin" if "admin" in scopes else "read" if "read" in scopes else "decide"
                if row.organisations is None:  # issued before tokens had organisations: its user's
                    organisations = _granted(session, user.id)
                else:
                    named = frozenset(o for o in row.organisations.split(",") if o)
                    organisations = None if ALL in named else named
                caller = Caller(user.id, user.username, scope, None, row.id, None, organisations, scopes)
        if len(self._tokens.entries) > 10_000:
            self._tokens.entries.clear()
        self._tokens.entries[key] = (time.monotonic() + self._tokens.ttl, caller)
        return caller

    def cached_token_caller(self, token: str) -> tuple[Caller | None] | None:
        """`token_caller` from the cache alone: a 1-tuple of its answer, or None when not known (ask `token_caller`)."""
        cached = self._tokens.entries.get(sha256(token))
        return (cached[1],) if cached is not None and cached[0] > time.monotonic() else None

    # --- argon2id, bounded ---------------------------------------------------------------------------------

    def _hash(self, password: str | None) -> str | None:
        return self._hashing.run("hash", lambda: _hasher.hash(password)) if password is not None else None

    def _verify(self, stored: str | None, password: str) -> bool:
        """Constant work whether or not the user exists: an unknown user is checked against a dummy hash."""
        against = stored or self._dummy_hash  # (made once, before this check takes its slot)

        def check() -> bool:
            try:
                return _hasher.verify(against, password) and stored is not None
            except (VerificationError, InvalidHashError):
                return False

        return self._hashing.run("verify", check)

    @functools.cached_property
    def _dummy_hash(self) -> str:
        return self._hashing.run("hash", lambda: _hasher.hash("not a password anyone has"))


def _granted(session: Session, user_id: int) -> frozenset[str] | None:
    """The organisations a user's console session reaches: where they hold a role or are linked to a person
    (None: every organisation, for a role granted in `*`)."""
    organisations = {g.organisation for g in store.grants(session, [user_id])}
    if ALL in organisations:
        return None
    return frozenset(organisations | {link.organisation for link in store.people(session, [user_id])})


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


def _token_dict(row: Any, username: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "user": username,
        "scopes": row.scopes.split(","),
        # None: issued before tokens had organisations (it reaches its user's, as a console session does)
        "organisations": None if row.organisations is None else [o for o in row.organisations.split(",") if o],
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(expected.encode(), given.encode())  # type: ignore[union-attr]
