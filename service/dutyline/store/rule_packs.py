"""Rule packs in the database: versioned like organisations, in the same version sequence."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dutyline.errors import NotFound
from dutyline.rulemodel.document import RulePack
from dutyline.store import notify
from dutyline.store.orgs import SaveResult
from dutyline.store.tables import OrganisationRow, OrgVersionRow

_encoder = msgspec.json.Encoder(order="deterministic")
_decoder = msgspec.json.Decoder(RulePack)
KIND = "rules"


@dataclass(frozen=True, slots=True)
class StoredPack:
    org_id: str
    name: str
    version: int
    pack: RulePack | None


def save(session: Session, packs: Sequence[tuple[str, RulePack]], author: str, comment: str = "") -> list[SaveResult]:
    """Store each (name, pack) as a new version unless identical to that pack's newest version.

    The organisation row is locked, as for organisation changes, so that writers of one organisation
    serialise; policy writes commit in version order and notify other replicas on commit (`notify`).
    """
    notify.serialise(session)
    now = dt.datetime.now(dt.timezone.utc)
    results = []
    for name, pack in packs:
        org = session.execute(select(OrganisationRow).where(OrganisationRow.id == pack.org).with_for_update()).scalar_one_or_none()
        if org is None:
            raise NotFound(f"organisation {pack.org!r} not found: import it before its rule packs")
        encoded = _encoder.encode(pack)
        digest = hashlib.sha256(encoded).hexdigest()
        latest = _latest(session, pack.org, name)
        if latest is not None and latest.document is not None and latest.digest == digest:
            results.append(SaveResult(pack.org, latest.version, False))
            continue
        row = OrgVersionRow(
            org_id=pack.org, kind=KIND, name=name, document=encoded.decode(), digest=digest,
            author=author, comment=comment, created_at=now,
        )
        session.add(row)
        session.flush()
        results.append(SaveResult(pack.org, row.version, True))
    if any(r.changed for r in results):
        notify.announce(session, max(r.version for r in results if r.changed))
    return results


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
    """The newest version of each of an organisation's rule packs (deleted packs left out), by name."""
    newest = (
        select(OrgVersionRow.name, func.max(OrgVersionRow.version).label("version"))
        .where(OrgVersionRow.kind == KIND, OrgVersionRow.org_id == org_id)
        .group_by(OrgVersionRow.name)
        .subquery()
    )
    rows = session.execute(
        select(OrgVersionRow).join(newest, OrgVersionRow.version == newest.c.version).order_by(OrgVersionRow.name)
    ).scalars()
    return [
        StoredPack(row.org_id, row.name, row.version, _decoder.decode(row.document))
        for row in rows
        if row.document is not None
    ]
