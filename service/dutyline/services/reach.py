"""Which organisations the caller of the current request may see and act on: its reach.

A token reaches the organisations it was issued for (`*`: all, issued so by a system administrator); a console
session those its user holds a role in or is linked to a person of. The API works it out once per request to the
decision API and sets `CURRENT` for the request (`api/auth.py`); `api/scopes.py` checks every organisation the
request names (path, query, body, or the record it is about), and the decision service checks the organisation a
question resolves to (`services/decisions.py`), so one inferred from the subject (AuthZEN) is checked too.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from dutyline.errors import Forbidden


@dataclass(frozen=True, slots=True)
class Reach:
    """`organisations`: the ones reached (None: every organisation). `holder` names the caller in refusals."""

    organisations: frozenset[str] | None
    holder: str

    def admits(self, organisation: str) -> bool:
        return self.organisations is None or organisation in self.organisations

    def require(self, organisation: str, where: str) -> None:
        """Forbidden, naming the field and the organisations reached, unless `organisation` is one of them."""
        if not self.admits(organisation):
            raise Forbidden(f"{where}: {organisation!r} is outside what {self.holder} may reach ({self.shown()})")

    def shown(self) -> str:
        if self.organisations is None:
            return "every organisation"
        return ", ".join(sorted(self.organisations)) or "no organisation"


EVERYWHERE = Reach(None, "anyone")
# The reach of the request being served. Outside a request (the CLI, background threads, tests of services):
# everywhere, as before reach existed.
CURRENT: ContextVar[Reach] = ContextVar("dutyline_reach", default=EVERYWHERE)
