"""What the HTTP layer knows of database failures: which exceptions are the database's, and what one means.

An unreachable database (down, restarting, a dropped connection, SQLite locked) is the server's state, for callers
to retry (503); a value the database refuses (NUL, too long) is the request's fault (400); anything else is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import exc as db

DatabaseError = db.SQLAlchemyError


@dataclass(frozen=True, slots=True)
class Failure:
    kind: Literal["unreachable", "refused", "other"]
    reason: str  # the database's first line of it


def failure_of(exc: DatabaseError) -> Failure:
    unreachable = isinstance(exc, (db.OperationalError, db.InterfaceError, db.TimeoutError)) or (
        isinstance(exc, db.DBAPIError) and exc.connection_invalidated
    )
    if unreachable:
        return Failure("unreachable", str(exc).split("\n", 1)[0])
    if isinstance(exc, db.DataError):
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else "a value cannot be stored"
        return Failure("refused", reason)
    return Failure("other", str(exc).split("\n", 1)[0])
