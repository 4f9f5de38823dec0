"""Telling other replicas that a new policy version exists (PostgreSQL LISTEN/NOTIFY).

Writers call `serialise` before they allocate a version and `announce` after: both act inside the
caller's transaction, so the notification leaves only if the version commits (PostgreSQL delivers
NOTIFY at commit, and drops it on rollback). SQLite has neither; replicas on SQLite poll instead.

The channel is `dutyline_policy`, or `dutyline_policy.<schema>` when the tables live in another schema than
`public`: notification channels are per database, and deployments (or test runs) that share a database in
separate schemas must not hear each other's versions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

CHANNEL = "dutyline_policy"
# The channel of the schema the connection works in, computed by the server the same way for both ends.
_CHANNEL_SQL = f"'{CHANNEL}' || CASE WHEN current_schema() = 'public' THEN '' ELSE '.' || current_schema() END"

# Any fixed 64-bit number: the advisory lock that orders policy writes (see `serialise`).
_WRITE_LOCK = 0x6475_7479_6C69_6E65 & 0x7FFF_FFFF_FFFF_FFFF  # "dutyline"


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def serialise(session: Session) -> None:
    """Make policy writes commit in version order.

    Versions come from a sequence; two concurrent transactions could otherwise commit 10 before 9, and a
    replica that has applied 10 would never look below it again and miss 9. Holding one transaction-scoped
    advisory lock from before the version is allocated until commit rules that out. Writes are rare, so
    serialising them costs nothing that matters. (SQLite already allows one writer at a time.)
    """
    if _postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _WRITE_LOCK})


def announce(session: Session, version: int) -> None:
    """Queue `NOTIFY dutyline_policy, '<version>'`: sent when the caller's transaction commits."""
    if _postgres(session):
        session.execute(text(f"SELECT pg_notify({_CHANNEL_SQL}, :payload)"), {"payload": str(version)})


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


@contextlib.contextmanager
def listening(url: str) -> Iterator[psycopg.Connection]:
    """A dedicated autocommit connection LISTENing on the channel (not one from the pool: it stays open).

    TCP keepalives make a silently vanished server show up as an error within about half a minute.
    """
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = psycopg.connect(
        conninfo,
        autocommit=True,
        connect_timeout=5,
        keepalives=1,
        keepalives_idle=10,
        keepalives_interval=5,
        keepalives_count=3,
        application_name="dutyline-listener",
    )
    try:
        channel = connection.execute(f"SELECT {_CHANNEL_SQL}").fetchone()[0]  # type: ignore[index]
        connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        yield connection
    finally:
        connection.close()


def received(connection: psycopg.Connection, timeout: float) -> list[int]:
    """Versions announced on the channel: waits up to `timeout` for the first, then takes what else is queued.

    Raises psycopg.OperationalError when the connection is lost.
    """
    payloads = [n.payload for n in connection.notifies(timeout=timeout, stop_after=1)]
    if payloads:
        payloads += [n.payload for n in connection.notifies(timeout=0)]
    return [int(p) for p in payloads if p.isdigit()]
