"""Who a credential stands for (`Caller`), and a few seconds' memory of the answer (`CallerCache`), shared by the
console sessions, the API tokens and the user changes that must forget them."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

import msgspec
from sqlalchemy.orm import Session

from dutyline.engines.admin_policy import ALL
from dutyline.services.reach import Reach
from dutyline.store import access as store

DECIDING = frozenset({"decide", "admin"})  # the token scopes that may call the decision API


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller of the admin API.

    `scope` is what the policy sees as `context.scope`: `session` (console login), or the token's
    strongest scope, `admin`, `read` or `decide`. `organisations` is what it reaches on the decision API (None:
    every organisation): a token's, or for a session its user's (`granted`: roles and links).
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


@dataclass(slots=True)
class CallerCache:
    """Decision endpoints check bearer tokens and console sessions without a database read per request: answers
    are kept a few seconds (a session no longer than it lasts; logout and user changes forget them at once)."""

    ttl: float = 5.0
    tokens: dict[str, tuple[float, Caller | None]] = field(default_factory=dict)  # None: no such live token
    sessions: dict[str, tuple[float, Caller]] = field(default_factory=dict)

    def forget(self) -> None:
        self.tokens.clear()
        self.sessions.clear()


def granted(session: Session, user_id: int) -> frozenset[str] | None:
    """The organisations a user's console session reaches: where they hold a role or are linked to a person
    (None: every organisation, for a role granted in `*`)."""
    organisations = {g.organisation for g in store.grants(session, [user_id])}
    if ALL in organisations:
        return None
    return frozenset(organisations | {link.organisation for link in store.people(session, [user_id])})


class RoleGrant(msgspec.Struct, forbid_unknown_fields=True):
    """A role a user holds in an organisation (`*`: every one)."""

    role: str
    organisation: str
