"""Organisation documents in the database: every change is a new immutable version."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dutyline.errors import NotFound, Unreadable
from dutyline.orgmodel.document import Organisation
from dutyline.store import codec, notify
from dutyline.store.tables import OrganisationRow, OrgVersionRow


def encode(org: Organisation) -> str:
    return codec.encode(org).decode()


def digest(org: Organisation) -> str:
    return hashlib.sha256(codec.encode(org)).hexdigest()


def decode(text: str | bytes, org_id: str, version: int) -> Organisation:
    """A stored document, read exactly as a refresh reads it; `Unreadable` if this release cannot."""
    return codec.decode(text, Organisation, f"version {version} of organisation {org_id!r}")


@dataclass(frozen=True, slots=True)
class StoredOrg:
    """One organisation as of one version (`document` None: deleted at that version, or unreadable: `error`)."""

    org_id: str
    version: int
    document: Organisation | None
    author: str
    comment: str
    created_at: dt.datetime
    error: str | None = None  # why this release cannot read the stored document
    revision: int = 0  # the document's own counter (`version` is the global policy version)
    source: str | None = None  # the YAML text it was imported from, if it came from a file

    @property
    def deleted(self) -> bool:
        return self.document is None and self.error is None


@dataclass(frozen=True, slots=True)
class SaveResult:
    """`version`: the global policy version the document is at (the one this save made, if it `changed`);
    `revision`: the document's own counter at it."""

    org_id: str
    version: int
    changed: bool
    revision: int = 0
    name: str = ""  # a rule pack's name ("" for the organisation document)


def save(
    session: Session,
    documents: Sequence[Organisation],
    author: str,
    comment: str = "",
    sources: Mapping[str, str] | None = None,
) -> list[SaveResult]:
    """Store each document as a new version unless it is identical to its organisation's newest one.

    `sources` is the YAML text each document (by id) was read from, when it came from a file: kept with the
    version, so that an export gives the file back as written.

    Runs inside the caller's transaction: the caller commits all or nothing. The organisation row is
    locked (FOR UPDATE on PostgreSQL) so that concurrent writers of one organisation serialise; policy
    writes as a whole commit in version order, and other replicas are notified on commit (`notify`).
    Each document is stored only if it reads back as given (`codec.encode_checked`): `Invalid` otherwise.
    """
    notify.serialise(session)
    now = dt.datetime.now(dt.UTC)
    results = []
    for org in documents:
        row = session.execute(
            select(OrganisationRow).where(OrganisationRow.id == org.id).with_for_update()
        ).scalar_one_or_none()
        encoded = codec.encode_checked(org, Organisation, f"organisation {org.id!r}")
        new_digest = hashlib.sha256(encoded).hexdigest()
        revision = 1
        if row is not None:
            head = session.get(OrgVersionRow, row.head_version)
            if head is not None and head.document is not None and head.digest == new_digest:
                results.append(SaveResult(org.id, row.head_version, False, head.revision))
                continue
            revision = (head.revision if head is not None else 0) + 1
        else:
            row = OrganisationRow(id=org.id, name_zh=org.name.zh, name_en=org.name.en, head_version=0, created_at=now)
            session.add(row)
            session.flush()
        version = OrgVersionRow(
            org_id=org.id,
            kind="org",
            name="",
            document=encoded.decode(),
            digest=new_digest,
            author=author,
            comment=comment,
            created_at=now,
            revision=revision,
            source=(sources or {}).get(org.id),
        )
        session.add(version)
        session.flush()
        row.head_version = version.version
        row.name_zh, row.name_en = org.name.zh, org.name.en
        results.append(SaveResult(org.id, version.version, True, revision))
    if any(r.changed for r in results):
        notify.announce(session, max(r.version for r in results if r.changed))
    return results


def latest_version(session: Session) -> int:
    """The newest policy version in the store (0 when empty)."""
    return session.execute(select(func.coalesce(func.max(OrgVersionRow.version), 0))).scalar_one()


def heads(session: Session, after: int = 0) -> list[StoredOrg]:
    """The newest version of every organisation whose newest version is above `after`; one this release cannot
    read comes with its `error` (the others are unaffected)."""
    rows = session.execute(
        select(OrgVersionRow)
        .join(OrganisationRow, OrganisationRow.head_version == OrgVersionRow.version)
        .where(OrgVersionRow.version > after)
        .order_by(OrgVersionRow.version)
    ).scalars()
    return [_stored(row) for row in rows]


def head(session: Session, org_id: str) -> StoredOrg:
    """The newest version of one organisation; NotFound if it was never stored or is deleted, `Unreadable` if
    this release cannot read it."""
    stored = newest(session, org_id)
    if stored is None or stored.deleted:
        raise NotFound(f"organisation {org_id!r} not found")
    if stored.error is not None:
        raise Unreadable(stored.error)
    return stored


def newest(session: Session, org_id: str) -> StoredOrg | None:
    """The newest version of one organisation whatever it is (deleted, unreadable); None if never stored."""
    row = session.execute(
        select(OrgVersionRow)
        .join(OrganisationRow, OrganisationRow.head_version == OrgVersionRow.version)
        .where(OrganisationRow.id == org_id)
    ).scalar_one_or_none()
    return _stored(row) if row is not None else None


def _stored(row: OrgVersionRow) -> StoredOrg:
    document, error = None, None
    if row.document is not None:
        try:
            document = decode(row.document, row.org_id, row.version)
        except Unreadable as exc:
            error = str(exc)
    return StoredOrg(
        row.org_id, row.version, document, row.author, row.comment, row.created_at, error, row.revision, row.source
    )
