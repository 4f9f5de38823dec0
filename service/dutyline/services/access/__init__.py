"""Who is calling the admin API, and may they: the admin policy (`policy`), users (`users`), console sessions and
the login throttle (`sessions`), API tokens (`tokens`).

`AccessService` is the one object the runtime, the API and the command line hold: the parts built together, over
one cache of callers (a user change forgets every cached session and token at once) and one bound on password
hashing. Its methods are the parts' own.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from dutyline.services.access.callers import Caller, CallerCache, RoleGrant
from dutyline.services.access.passwords import Passwords
from dutyline.services.access.policy import PolicyHolder
from dutyline.services.access.sessions import ConsoleSessions, Digests, Login, Session, Throttle, csrf_matches
from dutyline.services.access.tokens import SCOPES, IssuedToken, Token, Tokens
from dutyline.services.access.users import User, Users
from dutyline.services.policies import PolicyService

__all__ = [
    "SCOPES",
    "AccessService",
    "Caller",
    "IssuedToken",
    "Login",
    "RoleGrant",
    "Session",
    "Token",
    "User",
    "csrf_matches",
]


class AccessService:
    def __init__(
        self,
        sessions: sessionmaker[DbSession],
        session_ttl: float = 8 * 3600.0,
        login_attempts: int = 5,
        login_window: float = 60.0,
        secret_key: str = "",
        policies: PolicyService | None = None,
        login_attempts_per_address: int = 50,
        hash_concurrency: int = 2,
        hash_wait: float = 10.0,
    ) -> None:
        cache = CallerCache()
        passwords = Passwords(hash_concurrency, hash_wait)
        digests = Digests(sessions, secret_key)
        throttle = Throttle(login_attempts, dt.timedelta(seconds=login_window), login_attempts_per_address)
        self.admin = PolicyHolder(sessions)
        self.accounts = Users(sessions, self.admin, passwords, digests, throttle, cache, policies)
        self.console = ConsoleSessions(
            sessions, self.admin, passwords, digests, throttle, dt.timedelta(seconds=session_ttl), cache
        )
        self.api_tokens = Tokens(sessions, self.admin, cache)

        self.refresh = self.admin.refresh
        self.allowed = self.admin.allowed
        self.require = self.admin.require
        self.organisations = self.admin.organisations
        self.known_organisations = self.admin.known_organisations
        self.setup = self.admin.setup

        self.create_user = self.accounts.create_user
        self.update_user = self.accounts.update_user
        self.linked_organisations = self.accounts.linked_organisations
        self.users = self.accounts.users
        self.user = self.accounts.user
        self.acting_person = self.accounts.acting_person

        self.login = self.console.login
        self.logout = self.console.logout
        self.session_caller = self.console.session_caller
        self.cached_session_caller = self.console.cached_session_caller
        self.roles_of = self.console.roles_of
        self.session_view = self.console.view

        self.issue_token = self.api_tokens.issue_token
        self.tokens = self.api_tokens.tokens
        self.revoke_token = self.api_tokens.revoke_token
        self.token_caller = self.api_tokens.token_caller
        self.cached_token_caller = self.api_tokens.cached_token_caller
