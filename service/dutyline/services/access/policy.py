"""The admin policy (`engines.admin_policy`) compiled from the users' role grants, kept in memory and asked for
every admin request: may this caller have this `AdminPermission` in this organisation."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from dutyline.engines.admin_policy import ALL, AdminPermission, AdminPolicy, Member, compile_admin
from dutyline.engines.decision import Decision
from dutyline.errors import Forbidden
from dutyline.services.access.callers import Caller
from dutyline.services.shapes import Shape
from dutyline.store import access as store
from dutyline.store import history


class PolicyHolder:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()
        self._fingerprint = ""
        self.policy: AdminPolicy = compile_admin([])

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

    def setup(self) -> Setup:
        """Whether anyone can sign in yet, from the policy in memory (refreshed every few seconds): the login page
        asks before anyone is authenticated, so it must cost nothing."""
        return Setup(users=bool(self.policy.org.people_by_id), first_user=FIRST_USER)

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

    def known_organisations(self, with_deleted: bool = True) -> list[str]:
        """Every organisation ever stored (with `with_deleted`), or only the current ones: where a permission may
        be asked for."""
        with self._sessions() as session:
            return known_organisations(session, with_deleted)

    def _decide(
        self, caller: Caller, permission: AdminPermission, organisation: str, attributes: dict[str, Any]
    ) -> Decision:
        return self.policy.decide(
            caller.user_id, permission.resource, permission.action, organisation, caller.scope, time.time(), attributes
        )


FIRST_USER = "dutyline admin create NAME --role system_admin"


class Setup(Shape):
    """Whether the console has any user yet, and how the first administrator is made (on the server's host)."""

    users: bool
    first_user: str


def known_organisations(session: Session, with_deleted: bool = True) -> list[str]:
    return [row[0] for row in history.organisations(session) if with_deleted or not row[4]]
