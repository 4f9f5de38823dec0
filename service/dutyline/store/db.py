"""Engines, sessions and schema migration for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import CursorResult, Engine, Result, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE touched (its result is a cursor result; `Session.execute` is typed wider)."""
    return cast("CursorResult[Any]", result).rowcount or 0


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL and a busy timeout so that readers and a writer can coexist."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # A database host that stops answering (rather than refusing) must not hold requests for the OS's TCP
    # timeout of minutes: give up connecting after 5 s (a connect_timeout in the URL wins).
    connect_args = {} if "connect_timeout=" in url else {"connect_timeout": 5}
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, connect_args=connect_args)


def session_factory(engine: Engine, secret_key: str = "") -> sessionmaker[Session]:
    """Sessions on `engine`. `secret_key` (the settings' DUTYLINE_SECRET_KEY) keys the audit trail's head anchor
    (`store.audit`); empty: a key kept in the database."""
    return sessionmaker(engine, expire_on_commit=False, info={"secret_key": secret_key})


def alembic_config(engine: Engine, secret_key: str = "") -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["engine"] = engine
    config.attributes["secret_key"] = secret_key
    return config


def upgrade(engine: Engine, revision: str = "head", secret_key: str = "") -> None:
    """Bring the schema to `revision` (all migrations by default); `secret_key` as for `session_factory`."""
    command.upgrade(alembic_config(engine, secret_key), revision)


_STARTUP_LOCK = 0x6475_7479_7374_6172  # "dutystar": any fixed number, distinct from the other advisory locks


@contextlib.contextmanager
def exclusive(engine: Engine) -> Iterator[None]:
    """One process at a time through the block, across processes and machines: for migrating and seeding,
    which replicas and workers that start together would otherwise race at.

    PostgreSQL: a session advisory lock held on one pooled connection. SQLite: an OS lock on a file beside
    the database (every process using it is on this machine).
    """
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _STARTUP_LOCK})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _STARTUP_LOCK})
                connection.commit()
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    import fcntl

    with open(f"{database}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
