"""Users, their role grants, console sessions and API tokens in the database, and the login throttle's counts.
Secrets are stored hashed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import FromClause, case, delete, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dutyline.store.db import rows_changed
from dutyline.store.tables import (
    ApiTokenRow,
    ConsoleSessionRow,
    LoginAttemptRow,
    RoleGrantRow,
    ServerSecretRow,
    UserPersonRow,
    UserRow,
)


def user_by_name(session: Session, username: str) -> UserRow | None:
    return session.execute(select(UserRow).where(UserRow.username == username)).scalar_one_or_none()


def users(session: Session) -> list[UserRow]:
    return list(session.execute(select(UserRow).order_by(UserRow.username)).scalars())


def add_user(
    session: Session, username: str, display_name: str, password_hash: str | None, now: dt.datetime
) -> UserRow:
    row = UserRow(
        username=username,
        display_name=display_name,
        password_hash=password_hash,
        active=True,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def grants(session: Session, user_ids: Iterable[int] | None = None) -> list[RoleGrantRow]:
    statement = select(RoleGrantRow).order_by(RoleGrantRow.user_id, RoleGrantRow.role, RoleGrantRow.organisation)
    if user_ids is not None:
        statement = statement.where(RoleGrantRow.user_id.in_(list(user_ids)))
    return list(session.execute(statement).scalars())


def replace_grants(session: Session, user_id: int, roles: Iterable[tuple[str, str]], by: str, now: dt.datetime) -> None:
    """Make (role, organisation) pairs the user's whole set of grants."""
    session.execute(delete(RoleGrantRow).where(RoleGrantRow.user_id == user_id))
    for role, organisation in sorted(set(roles)):
        session.add(RoleGrantRow(user_id=user_id, role=role, organisation=organisation, granted_by=by, granted_at=now))
    session.flush()


def people(session: Session, user_ids: Iterable[int]) -> list[UserPersonRow]:
    """The persons the users are linked to, per organisation."""
    statement = select(UserPersonRow).where(UserPersonRow.user_id.in_(list(user_ids)))
    return list(session.execute(statement.order_by(UserPersonRow.user_id, UserPersonRow.organisation)).scalars())


def replace_people(session: Session, user_id: int, people: dict[str, str], by: str, now: dt.datetime) -> None:
    """Make {organisation: person} the user's whole set of links."""
    session.execute(delete(UserPersonRow).where(UserPersonRow.user_id == user_id))
    for organisation, person in sorted(people.items()):
        session.add(
            UserPersonRow(user_id=user_id, organisation=organisation, person=person, linked_by=by, linked_at=now)
        )
    session.flush()


def access_rows(session: Session) -> list[tuple[int, str, bool, str | None, str | None]]:
    """(user id, username, active, role, organisation) for every user (role None: no grants): what the
    admin policy is generated from."""
    rows = session.execute(
        select(UserRow.id, UserRow.username, UserRow.active, RoleGrantRow.role, RoleGrantRow.organisation)
        .outerjoin(RoleGrantRow, RoleGrantRow.user_id == UserRow.id)
        .order_by(UserRow.id, RoleGrantRow.role, RoleGrantRow.organisation)
    )
    return [tuple(row) for row in rows]  # type: ignore[misc]


# --- console sessions ----------------------------------------------------------------------------------


def add_session(
    session: Session, token_hash: str, user_id: int, csrf_token: str, now: dt.datetime, expires_at: dt.datetime, ip: str
) -> None:
    session.add(
        ConsoleSessionRow(
            token_hash=token_hash,
            user_id=user_id,
            csrf_token=csrf_token,
            created_at=now,
            expires_at=expires_at,
            ip=ip[:64],
        )
    )
    session.flush()


def session_of(session: Session, token_hash: str, now: dt.datetime) -> tuple[ConsoleSessionRow, UserRow] | None:
    """A live session and its (active) user."""
    row = session.execute(
        select(ConsoleSessionRow, UserRow)
        .join(UserRow, UserRow.id == ConsoleSessionRow.user_id)
        .where(ConsoleSessionRow.token_hash == token_hash, ConsoleSessionRow.expires_at > now, UserRow.active.is_(True))
    ).first()
    return (row[0], row[1]) if row is not None else None


def end_session(session: Session, token_hash: str) -> None:
    session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.token_hash == token_hash))


def end_sessions_of(session: Session, user_id: int) -> None:
    session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.user_id == user_id))


def delete_expired_sessions(session: Session, now: dt.datetime) -> int:
    return rows_changed(session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.expires_at <= now)))


# --- API tokens ------------------------------------------------------------------------------------------


def add_token(
    session: Session,
    token_id: str,
    token_hash: str,
    user_id: int,
    name: str,
    scopes: str,
    organisations: str,
    now: dt.datetime,
    expires_at: dt.datetime | None,
) -> ApiTokenRow:
    row = ApiTokenRow(
        id=token_id,
        token_hash=token_hash,
        user_id=user_id,
        name=name,
        scopes=scopes,
        organisations=organisations,
        created_at=now,
        expires_at=expires_at,
        revoked_at=None,
    )
    session.add(row)
    session.flush()
    return row


def token_of(session: Session, token_hash: str, now: dt.datetime) -> tuple[ApiTokenRow, UserRow] | None:
    """A token that is neither revoked nor expired, and its (active) user."""
    row = session.execute(
        select(ApiTokenRow, UserRow)
        .join(UserRow, UserRow.id == ApiTokenRow.user_id)
        .where(ApiTokenRow.token_hash == token_hash, ApiTokenRow.revoked_at.is_(None), UserRow.active.is_(True))
    ).first()
    if row is None or (row[0].expires_at is not None and row[0].expires_at <= now):
        return None
    return row[0], row[1]


def tokens(session: Session, user_id: int | None = None) -> list[tuple[ApiTokenRow, str]]:
    statement = select(ApiTokenRow, UserRow.username).join(UserRow, UserRow.id == ApiTokenRow.user_id)
    if user_id is not None:
        statement = statement.where(ApiTokenRow.user_id == user_id)
    return [(row[0], row[1]) for row in session.execute(statement.order_by(ApiTokenRow.created_at))]


def revoke_token(session: Session, token_id: str, now: dt.datetime) -> bool:
    result = session.execute(
        update(ApiTokenRow).where(ApiTokenRow.id == token_id, ApiTokenRow.revoked_at.is_(None)).values(revoked_at=now)
    )
    return rows_changed(result) == 1


def revoke_tokens_of(session: Session, user_id: int, now: dt.datetime) -> list[str]:
    """Revoke every live token of a user; their ids."""
    ids = list(
        session.execute(
            select(ApiTokenRow.id).where(ApiTokenRow.user_id == user_id, ApiTokenRow.revoked_at.is_(None))
        ).scalars()
    )
    if ids:
        session.execute(update(ApiTokenRow).where(ApiTokenRow.id.in_(ids)).values(revoked_at=now))
    return ids


def end_other_sessions_of(session: Session, user_id: int, keep_token_hash: str | None) -> None:
    """End a user's console sessions but the one `keep_token_hash` stands for (None: all of them)."""
    statement = delete(ConsoleSessionRow).where(ConsoleSessionRow.user_id == user_id)
    if keep_token_hash is not None:
        statement = statement.where(ConsoleSessionRow.token_hash != keep_token_hash)
    session.execute(statement)


# --- the login throttle, and secrets shared by the replicas ----------------------------------------------------


def count_login_attempt(session: Session, key: str, now: dt.datetime, window: dt.timedelta) -> tuple[int, dt.datetime]:
    """One more try for `key`: (tries in its window, counting this one; when the window began). One statement, an
    upsert that starts a new window when the last has ended; concurrent tries, from any process, queue on the row
    and each gets a count of its own."""
    table = LoginAttemptRow.__table__
    ended = table.c.window_start <= now - window
    statement = (
        _insert(session, table)
        .values(key=key, window_start=now, attempts=1)
        .on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "attempts": case((ended, 1), else_=table.c.attempts + 1),
                "window_start": case((ended, literal(now, table.c.window_start.type)), else_=table.c.window_start),
            },
        )
        .returning(table.c.attempts, table.c.window_start)
    )
    tries, started = session.execute(statement).one()
    return tries, started


def give_back_login_attempt(session: Session, key: str, started: dt.datetime) -> None:
    """Take one try off `key`'s count, if its window is still the one that began at `started`."""
    session.execute(
        update(LoginAttemptRow)
        .where(LoginAttemptRow.key == key, LoginAttemptRow.window_start == started, LoginAttemptRow.attempts > 0)
        .values(attempts=LoginAttemptRow.attempts - 1)
    )


def clear_login_attempts(session: Session, key: str) -> None:
    session.execute(delete(LoginAttemptRow).where(LoginAttemptRow.key == key))


def prune_login_attempts(session: Session, ended_before: dt.datetime) -> None:
    """Forget windows that began at or before `ended_before` (they count for nothing any more)."""
    session.execute(delete(LoginAttemptRow).where(LoginAttemptRow.window_start <= ended_before))


def server_secret(session: Session, name: str, fresh: str, now: dt.datetime) -> str:
    """The secret stored as `name`; `fresh` becomes it if there is none (the first process to ask wins)."""
    table = ServerSecretRow.__table__
    made = _insert(session, table).values(name=name, value=fresh, created_at=now)
    session.execute(made.on_conflict_do_nothing(index_elements=[table.c.name]))
    return session.execute(select(ServerSecretRow.value).where(ServerSecretRow.name == name)).scalar_one()


def _insert(session: Session, table: FromClause) -> postgresql.Insert | sqlite.Insert:
    """INSERT with ON CONFLICT, which both databases have, each in its own dialect."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table)
