"""Rule packs in the database: versioned like organisations, in the same version sequence."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dutyline.errors import NotFound, Unreadable
from dutyline.rulemodel.document import RulePack
from dutyline.store import codec, notify
from dutyline.store.orgs import SaveResult
from dutyline.store.tables import OrganisationRow, OrgVersionRow

KIND = "rules"


def decode(text: str | bytes, org_id: str, name: str, version: int) -> RulePack:
    """A stored rule pack, read exactly as a refresh reads it; `Unreadable` if this release cannot (a rule kind
    or a field it does not know: a newer release wrote it)."""
    return codec.decode(text, RulePack, f"version {version} of rule pack {name!r} of {org_id!r}")


@dataclass(frozen=True, slots=True)
class StoredPack:
    """A rule pack's newest version; `pack` None and `error` set when this release cannot read it."""

    org_id: str
    name: str
    version: int  # the global policy version it was stored at
    pack: RulePack | None
    error: str | None = None
    revision: int = 0  # the pack's own counter
    source: str | None = None  # the YAML text it was imported from, if it came from a file


def save(
    session: Session,
    packs: Sequence[tuple[str, RulePack]],
    author: str,
    comment: str = "",
    sources: Mapping[str, str] | None = None,
) -> list[SaveResult]:
    """Store each (name, pack) as a new version unless identical to that pack's newest version; `sources` is the
    YAML text of each (by name) that came from a file, kept for exports.

    The organisation row is locked, as for organisation changes, so that writers of one organisation
    serialise; policy writes commit in version order and notify other replicas on commit (`notify`).
    Each pack is stored only if it reads back as given (`codec.encode_checked`): `Invalid` otherwise.
    """
    notify.serialise(session)
    now = dt.datetime.now(dt.UTC)
    results = []
    for name, pack in packs:
        org = session.execute(
            select(OrganisationRow).where(OrganisationRow.id == pack.org).with_for_update()
        ).scalar_one_or_none()
        if org is None:
            raise NotFound(f"organisation {pack.org!r} not found: import it before its rule packs")
        encoded = codec.encode_checked(pack, RulePack, f"rule pack {name!r}")
        digest = hashlib.sha256(encoded).hexdigest()
        latest = _latest(session, pack.org, name)
        if latest is not None and latest.document is not None and latest.digest == digest:
            results.append(SaveResult(pack.org, latest.version, False, latest.revision, name))
            continue
        revision = (latest.revision if latest is not None else 0) + 1
        row = OrgVersionRow(
            org_id=pack.org,
            kind=KIND,
            name=name,
            document=encoded.decode(),
            digest=digest,
            author=author,
            comment=comment,
            created_at=now,
            revision=revision,
            source=(sources or {}).get(name),
        )
        session.add(row)
        session.flush()
        results.append(SaveResult(pack.org, row.version, True, revision, name))
    if any(r.changed for r in results):
        notify.announce(session, max(r.version for r in results if r.changed))
    return results


def differs(session: Session, name: str, pack: RulePack) -> bool:
    """Whether saving `pack` as `name` would store a new version (it differs from the newest one)."""
    latest = _latest(session, pack.org, name)
    return latest is None or latest.document is None or latest.digest != hashlib.sha256(codec.encode(pack)).hexdigest()


def _latest(session: Session, org_id: str, name: str) -> OrgVersionRow | None:
    return session.execute(
        select(OrgVersionRow)
        .where(OrgVersionRow.kind == KIND, OrgVersionRow.org_id == org_id, OrgVersionRow.name == name)
        .order_by(OrgVersionRow.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def orgs_changed_since(session: Session, after: int) -> set[str]:
    """Organisations with a rule pack version newer than `after`."""
    rows = session.execute(
        select(OrgVersionRow.org_id).where(OrgVersionRow.kind == KIND, OrgVersionRow.version > after).distinct()
    )
    return {row[0] for row in rows}


def current(session: Session, org_id: str) -> list[StoredPack]:
    """The newest version of each of an organisation's rule packs (deleted packs left out), by name; one this
    release cannot read comes with its `error`, the others are unaffected."""
    newest = (
        select(OrgVersionRow.name, func.max(OrgVersionRow.version).label("version"))
        .where(OrgVersionRow.kind == KIND, OrgVersionRow.org_id == org_id)
        .group_by(OrgVersionRow.name)
        .subquery()
    )
    rows = session.execute(
        select(OrgVersionRow).join(newest, OrgVersionRow.version == newest.c.version).order_by(OrgVersionRow.name)
    ).scalars()
    return [_stored(row) for row in rows if row.document is not None]


def _stored(row: OrgVersionRow) -> StoredPack:
    assert row.document is not None
    try:
        pack = decode(row.document, row.org_id, row.name, row.version)
        return StoredPack(row.org_id, row.name, row.version, pack, None, row.revision, row.source)
    except Unreadable as exc:
        return StoredPack(row.org_id, row.name, row.version, None, str(exc), row.revision, row.source)
