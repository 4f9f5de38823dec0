"""API tokens: bearer credentials acting as a user within scopes and, on the decision API, within organisations.
The secret is random, shown once, and stored as SHA-256; issuing and revoking are audited."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Iterable

import msgspec
from sqlalchemy.orm import Session, sessionmaker

from dutyline.engines.admin_policy import ALL, AdminPermission
from dutyline.errors import Forbidden, Invalid, Issue, NotFound
from dutyline.services.access.callers import DECIDING, Caller, CallerCache, granted, sha256, utcnow
from dutyline.services.access.policy import PolicyHolder, known_organisations
from dutyline.services.access.users import ORG_PATTERN
from dutyline.store import access as store
from dutyline.store import audit
from dutyline.store.audit import AuditEvent
from dutyline.store.tables import ApiTokenRow

SCOPES = ("decide", "read", "admin")
# The column's length of a token's name (PostgreSQL refuses a longer value with a database error, SQLite stores it):
# refused here, naming the field, for the API and the command line alike.
MAX_NAME = 200


class Token(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    name: str
    user: str
    scopes: list[str]
    # What it reaches on the decision API (["*"]: every organisation; []: none, a read token). None: issued before
    # tokens had organisations; it reaches its user's, as a console session does.
    organisations: list[str] | None
    created_at: str
    expires_at: str | None
    revoked_at: str | None


class IssuedToken(Token, kw_only=True):
    """A new token; `token` is its secret, shown this once."""

    token: str


class Tokens:
    def __init__(self, sessions: sessionmaker[Session], policy: PolicyHolder, cache: CallerCache) -> None:
        self._sessions = sessions
        self._policy = policy
        self._cache = cache

    def issue_token(
        self,
        username: str,
        scopes: Iterable[str],
        name: str,
        by: str,
        expires_in_days: float | None = None,
        organisations: Iterable[str] | None = None,
        issuer: Caller | None = None,
    ) -> IssuedToken:
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
            known = set(known_organisations(session, with_deleted=False))
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
            shown = _token(row, username)
        return IssuedToken(**msgspec.structs.asdict(shown), token=secret)

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
            if ALL in reached and not self._policy.allowed(issuer, AdminPermission.USER_WRITE, ALL):
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

    def tokens(self, username: str | None = None) -> list[Token]:
        with self._sessions() as session:
            user_id = None
            if username is not None:
                user = store.user_by_name(session, username)
                if user is None:
                    raise NotFound(f"user {username!r} not found")
                user_id = user.id
            return [_token(row, name) for row, name in store.tokens(session, user_id)]

    def revoke_token(self, token_id: str, by: str) -> None:
        with self._sessions.begin() as session:
            if not store.revoke_token(session, token_id, utcnow()):
                raise NotFound(f"token {token_id!r} not found (or already revoked)")
            audit.append(session, by, AuditEvent.TOKEN_REVOKED, None, f"token:{token_id}")
        self._cache.tokens.clear()

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
                    organisations = granted(session, user.id)
                else:
                    named = frozenset(o for o in row.organisations.split(",") if o)
                    organisations = None if ALL in named else named
                caller = Caller(user.id, user.username, scope, None, row.id, None, organisations, scopes)
        if len(self._cache.tokens) > 10_000:
            self._cache.tokens.clear()
        self._cache.tokens[key] = (time.monotonic() + self._cache.ttl, caller)
        return caller

    def cached_token_caller(self, token: str) -> tuple[Caller | None] | None:
        """`token_caller` from the cache alone: a 1-tuple of its answer, or None when not known (ask `token_caller`)."""
        cached = self._cache.tokens.get(sha256(token))
        return (cached[1],) if cached is not None and cached[0] > time.monotonic() else None


def _token(row: ApiTokenRow, username: str) -> Token:
    return Token(
        id=row.id,
        name=row.name,
        user=username,
        scopes=row.scopes.split(","),
        # None: issued before tokens had organisations (it reaches its user's, as a console session does)
        organisations=None if row.organisations is None else [o for o in row.organisations.split(",") if o],
        created_at=row.created_at.isoformat(),
        expires_at=row.expires_at.isoformat() if row.expires_at else None,
        revoked_at=row.revoked_at.isoformat() if row.revoked_at else None,
    )
