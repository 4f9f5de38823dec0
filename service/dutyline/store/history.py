"""Reading an organisation's history (every version of its document and rule packs) and the few writes the
admin API needs beyond `orgs.save` and `rule_packs.save`: locking an organisation, deleting it or a pack."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dutyline.store import notify
from dutyline.store.db import rows_changed
from dutyline.store.tables import OrganisationRow, OrgSettingRow, OrgVersionRow


@dataclass(frozen=True, slots=True)
class VersionInfo:
    version: int
    org_id: str
    kind: str  # org, rules
    name: str  # the rule pack's name ("" for the organisation document)
    deleted: bool
    digest: str
    author: str
    comment: str
    created_at: dt.datetime
    revision: int = 0  # the document's own counter; `version` is the global policy version


def lock(session: Session, org_id: str) -> bool:
    """Serialise writers of policy, and of this organisation, until the caller's transaction ends; False if
    the organisation was never stored.

    PostgreSQL: the policy write lock (`notify.serialise`), then the organisation's row. SQLite: a write that
    changes nothing takes the database's write lock now, so that what the caller reads next (the head it
    checks If-Match against) cannot change before it commits.
    """
    notify.serialise(session)
    result = session.execute(
        update(OrganisationRow)
        .where(OrganisationRow.id == org_id)
        .values(head_version=OrganisationRow.head_version)
        .execution_options(synchronize_session=False)
    )
    return rows_changed(result) == 1


def organisations(session: Session) -> list[tuple[str, str, str, int, bool, int]]:
    """(id, name zh, name en, head version, deleted, the document's revision) of every organisation ever stored."""
    rows = session.execute(
        select(
            OrganisationRow.id,
            OrganisationRow.name_zh,
            OrganisationRow.name_en,
            OrganisationRow.head_version,
            OrgVersionRow.document.is_(None),
            OrgVersionRow.revision,
        )
        .join(OrgVersionRow, OrgVersionRow.version == OrganisationRow.head_version)
        .order_by(OrganisationRow.id)
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


def versions(session: Session, org_id: str, limit: int, before: int | None = None) -> list[VersionInfo]:
    """An organisation's versions (document and rule packs), newest first."""
    statement = select(OrgVersionRow).where(OrgVersionRow.org_id == org_id)
    if before is not None:
        statement = statement.where(OrgVersionRow.version < before)
    rows = session.execute(statement.order_by(OrgVersionRow.version.desc()).limit(limit)).scalars()
    return [_info(row) for row in rows]


def versions_after(
    session: Session, after: int, limit: int, organisations: frozenset[str] | None = None
) -> tuple[list[OrgVersionRow], int]:
    """Up to `limit` versions after global policy version `after`, oldest first, of every organisation or only of
    `organisations`; and the version the caller has seen everything up to: the last one given when the page is
    full, else the newest version in the store (every later one is someone else's, or not there yet)."""
    latest = session.execute(select(func.coalesce(func.max(OrgVersionRow.version), 0))).scalar_one()
    statement = select(OrgVersionRow).where(OrgVersionRow.version > after, OrgVersionRow.version <= latest)
    if organisations is not None:
        statement = statement.where(OrgVersionRow.org_id.in_(sorted(organisations)))
    rows = list(session.execute(statement.order_by(OrgVersionRow.version).limit(limit)).scalars())
    return rows, rows[-1].version if len(rows) == limit else max(after, latest)


def version(session: Session, org_id: str, number: int) -> OrgVersionRow | None:
    row = session.get(OrgVersionRow, number)
    return row if row is not None and row.org_id == org_id else None


def previous(session: Session, row: OrgVersionRow) -> OrgVersionRow | None:
    """The version of the same document (the organisation, or the same rule pack) just before `row`."""
    return session.execute(
        select(OrgVersionRow)
        .where(
            OrgVersionRow.org_id == row.org_id,
            OrgVersionRow.kind == row.kind,
            OrgVersionRow.name == row.name,
            OrgVersionRow.version < row.version,
        )
        .order_by(OrgVersionRow.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def effective_at(
    session: Session, org_id: str, at: dt.datetime, kind: str = "org", name: str = ""
) -> OrgVersionRow | None:
    """The version of a document in force at `at`: the newest one stored at or before it."""
    return session.execute(
        select(OrgVersionRow)
        .where(
            OrgVersionRow.org_id == org_id,
            OrgVersionRow.kind == kind,
            OrgVersionRow.name == name,
            OrgVersionRow.created_at <= at,
        )
        .order_by(OrgVersionRow.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def org_at_version(session: Session, org_id: str, version: int) -> OrgVersionRow | None:
    """The organisation's document as it was at global policy version `version`: its newest version up to it."""
    return session.execute(
        select(OrgVersionRow)
        .where(OrgVersionRow.org_id == org_id, OrgVersionRow.kind == "org", OrgVersionRow.version <= version)
        .order_by(OrgVersionRow.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def packs_effective_at(session: Session, org_id: str, at: dt.datetime) -> list[OrgVersionRow]:
    """Each rule pack of an organisation as it was at `at` (deleted ones left out)."""
    rows = session.execute(
        select(OrgVersionRow)
        .where(OrgVersionRow.org_id == org_id, OrgVersionRow.kind == "rules", OrgVersionRow.created_at <= at)
        .order_by(OrgVersionRow.name, OrgVersionRow.version.desc())
    ).scalars()
    newest: dict[str, OrgVersionRow] = {}
    for row in rows:
        newest.setdefault(row.name, row)
    return [row for row in newest.values() if row.document is not None]


def latest_pack(session: Session, org_id: str, name: str) -> OrgVersionRow | None:
    return latest_of(session, org_id, "rules", name)


def latest_of(session: Session, org_id: str, kind: str, name: str = "") -> OrgVersionRow | None:
    """The newest version of one document (the organisation's, or rule pack `name`), a deletion included."""
    return session.execute(
        select(OrgVersionRow)
        .where(OrgVersionRow.kind == kind, OrgVersionRow.org_id == org_id, OrgVersionRow.name == name)
        .order_by(OrgVersionRow.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def delete_organisation(session: Session, org_id: str, author: str, comment: str) -> int:
    """A version with no document: the organisation is deleted as of it (its history stays). Call `lock` first."""
    row = session.get(OrganisationRow, org_id)
    assert row is not None
    version = _tombstone(session, org_id, "org", "", author, comment)
    row.head_version = version
    notify.announce(session, version)
    return version


def delete_pack(session: Session, org_id: str, name: str, author: str, comment: str) -> int:
    """A version of the pack with no document: deleted as of it. Call `lock` first."""
    version = _tombstone(session, org_id, "rules", name, author, comment)
    notify.announce(session, version)
    return version


def _tombstone(session: Session, org_id: str, kind: str, name: str, author: str, comment: str) -> int:
    last = latest_of(session, org_id, kind, name)
    row = OrgVersionRow(
        org_id=org_id,
        kind=kind,
        name=name,
        document=None,
        digest=hashlib.sha256(b"").hexdigest(),
        author=author,
        comment=comment,
        created_at=dt.datetime.now(dt.UTC),
        revision=(last.revision if last else 0) + 1,
    )
    session.add(row)
    session.flush()
    return row.version


def four_eyes_settings(session: Session, org_id: str) -> tuple[bool | None, bool | None]:
    """The organisation's own four-eyes switches, for rule packs and for the org chart (None: not set; the
    system default applies)."""
    row = session.get(OrgSettingRow, org_id)
    return (row.rules_four_eyes, row.org_four_eyes) if row is not None else (None, None)


def set_four_eyes(session: Session, org_id: str, by: str, rules: bool | None = None, org: bool | None = None) -> None:
    """Set the switches given (None: leave it as it is)."""
    row = session.get(OrgSettingRow, org_id)
    now = dt.datetime.now(dt.UTC)
    if row is None:
        row = OrgSettingRow(org_id=org_id, rules_four_eyes=None, org_four_eyes=None, updated_by=by, updated_at=now)
        session.add(row)
    if rules is not None:
        row.rules_four_eyes = rules
    if org is not None:
        row.org_four_eyes = org
    row.updated_by, row.updated_at = by, now
    session.flush()


def _info(row: OrgVersionRow) -> VersionInfo:
    return VersionInfo(
        row.version,
        row.org_id,
        row.kind,
        row.name,
        row.document is None,
        row.digest,
        row.author,
        row.comment,
        row.created_at,
        row.revision,
    )
