"""The one writer of organisation documents and rule packs: a proposal checked, stored as a new policy version
with its author and comment (the store checks that it reads back as given), and recorded in the audit trail in the
same transaction. It asks `FourEyes.required` in the write's own transaction, so no path applies a change that
needs a second person without one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy.orm import Session

from dutyline.engines.admin_policy import ORG_ID as ADMIN_ORG
from dutyline.engines.compiler import CompiledOrg, compile_org
from dutyline.errors import Conflict, Forbidden, Invalid, Issue, NotFound
from dutyline.orgmodel.diff import ORG_COLLECTIONS, PACK_COLLECTIONS, summarise
from dutyline.orgmodel.document import Organisation
from dutyline.orgmodel.source import SourceMap
from dutyline.rulemodel.document import RulePack
from dutyline.services.editing.edits import (
    REQUEST,
    Current,
    Edit,
    EditKind,
    Proposal,
    etag_of,
    find,
    org_etag,
    plan,
    verb,
)
from dutyline.services.editing.validation import (
    body_lines,
    check_packs,
    checked,
    compiles,
    organisation_of,
    precondition,
    refuse_unreadable,
    validated,
    validated_pack,
)
from dutyline.services.four_eyes import FourEyes
from dutyline.services.policies import PolicyService
from dutyline.store import audit, history
from dutyline.store import orgs as org_store
from dutyline.store import rule_packs as pack_store
from dutyline.store.audit import AuditEvent


@dataclass(frozen=True, slots=True)
class Written:
    """A change that was applied: the policy version it created (`version`, global), the revision of the document
    it changed (the organisation's, or the rule pack's own counter), and the object's new state and ETag."""

    organisation: str
    target: str
    version: int
    changed: bool
    value: Any
    etag: str | None
    revision: int = 0


class NeedsSecondPerson(Exception):
    """Four-eyes applies to the change and nobody else has approved it: it is to be held, not applied."""


def exists(session: Session, org_id: str) -> bool:
    found = org_store.newest(session, org_id)
    return found is not None and not found.deleted


def read_current(session: Session, org_id: str, edit: Edit, packs: bool = True) -> Current:
    """The target now (and, for an org chart change unless `packs` is False, the rule packs to check)."""
    if edit.kind is EditKind.ORGANISATION and edit.method == "create":  # its value: whether it exists
        return Current(org_id, {}, 0, "", {} if exists(session, org_id) else None, None)
    head = org_store.newest(session, org_id)
    if head is None or head.deleted:
        raise NotFound(f"organisation {org_id!r} not found")
    if head.document is not None:
        document = msgspec.to_builtins(head.document)
        digest = org_store.digest(head.document)
    else:  # this release cannot read it: edited as stored, so that a change can repair it (validation says how)
        row = history.version(session, org_id, head.version)
        assert row is not None and row.document is not None
        document, digest = json.loads(row.document), row.digest
    now = Current(
        org_id, document, head.version, digest, None, None, revision=head.revision, target_version=head.version
    )
    if edit.kind is EditKind.ORGANISATION:
        now.value, now.etag, now.source = document, org_etag(head.version, digest), head.source
    elif edit.kind is EditKind.RULE_PACK:
        row = history.latest_pack(session, org_id, edit.ident)
        now.revision, now.target_version = (row.revision, row.version) if row is not None else (0, 0)
        if row is not None and row.document is not None:
            now.value = json.loads(row.document)
            now.etag = etag_of(now.value)
            now.source = row.source
    elif edit.collection in ORG_COLLECTIONS:
        now.value = find(document, edit.collection, edit.ident)
        now.etag = etag_of(now.value) if now.value is not None else None
    else:
        raise NotFound(f"no such collection {edit.collection!r}")
    if packs and edit.kind is not EditKind.RULE_PACK:
        for stored in pack_store.current(session, org_id):
            if stored.pack is not None:
                now.packs[stored.name] = stored.pack
            else:
                now.unreadable[stored.name] = stored.error or "unreadable"
    return now


class Writer:
    def __init__(self, policies: PolicyService, four_eyes: FourEyes) -> None:
        self._policies = policies
        self._four_eyes = four_eyes

    def check(self, now: Current, proposal: Proposal) -> Organisation | RulePack | None:
        """The proposal as it would be stored, validated (None: a deletion, nothing to validate). The same checks
        whether it is applied now, held for approval or scheduled."""
        edit, org_id = proposal.edit, now.organisation
        if proposal.deletes:
            return None
        if proposal.kind is EditKind.RULE_PACK:
            # validated against the organisation, and compiled against it as a refresh will compile it (its
            # conditions taken by the rule host), so that what is stored can be served
            pack = validated_pack(proposal.pack, org_id, organisation_of(now.document), body_lines(edit))
            compiles(pack, self.compiled(now), self._policies.bounds)
            return pack
        assert proposal.document is not None
        if edit.kind is EditKind.ORGANISATION and edit.method == "create":
            return _new_organisation(proposal.document, edit, org_id)
        organisation = checked(proposal.document, edit).organisation
        if organisation.id != org_id:
            raise Invalid(
                f"id: the document is {organisation.id!r} but the URL names {org_id!r}",
                [Issue(REQUEST, 0, "id", f"must be {org_id!r}")],
            )
        refuse_unreadable(now)
        check_packs(now.packs, organisation)
        return organisation

    def apply_in(
        self,
        session: Session,
        org_id: str,
        edit: Edit,
        if_match: str | None,
        author: str,
        comment: str,
        approved_by: str | None,
    ) -> Written:
        """Write one change in the caller's transaction: the only function that does. Raises `NeedsSecondPerson`
        when four-eyes applies and `approved_by` (another person who approved it) is None."""
        if approved_by is not None and approved_by == author:
            raise Forbidden(f"{author} may not approve a change they made")
        if edit.kind is EditKind.ORGANISATION and edit.method == "create":
            return self._create_in(session, org_id, edit, author, comment, approved_by)
        if not history.lock(session, org_id):
            raise NotFound(f"organisation {org_id!r} not found")
        now = read_current(session, org_id, edit)
        precondition(edit, now, if_match)
        if approved_by is None and self._four_eyes.required(session, org_id, edit.target):
            raise NeedsSecondPerson
        proposal = plan(now, edit)
        if proposal.kind is EditKind.RULE_PACK:
            return self._write_pack(session, now, proposal, author, comment)
        if proposal.deletes:
            version = history.delete_organisation(session, org_id, author, comment)
            detail = {"version": version, "comment": comment}
            audit.append(session, author, AuditEvent.ORG_DELETED, org_id, f"org:{org_id}", detail)
            return Written(org_id, "org", version, True, None, None, now.revision + 1)
        organisation = self.check(now, proposal)
        assert isinstance(organisation, Organisation)
        texts = edit.texts(org_id) if edit.kind is EditKind.ORGANISATION else None
        [result] = org_store.save(session, [organisation], author, comment, texts)
        after = msgspec.to_builtins(organisation)
        whole = edit.kind is EditKind.ORGANISATION
        value = after if whole else find(after, edit.collection, edit.ident)
        if whole:
            etag: str | None = org_etag(result.version, org_store.digest(organisation))
        else:
            etag = etag_of(value) if value is not None else None
        if result.changed:
            summary = summarise(now.document, after, ORG_COLLECTIONS)
            audit.append(
                session,
                author,
                AuditEvent.of(edit.collection, verb(edit.method)),
                org_id,
                f"{org_id}/{edit.target}",
                {"version": result.version, "comment": comment, "summary": summary},
            )
        return Written(org_id, edit.target, result.version, result.changed, value, etag, result.revision)

    def _create_in(
        self, session: Session, org_id: str, edit: Edit, author: str, comment: str, approved_by: str | None
    ) -> Written:
        organisation = _new_organisation(edit.value, edit, org_id)
        history.lock(session, org_id)  # (False for a new organisation: nothing to lock yet)
        if exists(session, org_id):  # deleted, it may be created again, and its history goes on
            raise Conflict(f"organisation {org_id!r} already exists")
        if approved_by is None and self._four_eyes.required(session, org_id, "org"):
            raise NeedsSecondPerson
        [result] = org_store.save(session, [organisation], author, comment, edit.texts(org_id))
        detail = {"version": result.version, "comment": comment}
        audit.append(session, author, AuditEvent.ORG_CREATED, org_id, f"org:{org_id}", detail)
        etag = org_etag(result.version, org_store.digest(organisation))
        return Written(org_id, "org", result.version, True, msgspec.to_builtins(organisation), etag, result.revision)

    def _write_pack(self, session: Session, now: Current, proposal: Proposal, author: str, comment: str) -> Written:
        edit, org_id, name = proposal.edit, now.organisation, proposal.edit.ident
        if proposal.deletes:
            version = history.delete_pack(session, org_id, name, author, comment)
            detail = {"version": version, "comment": comment}
            audit.append(session, author, AuditEvent.RULES_DELETED, org_id, f"{org_id}/rules/{name}", detail)
            return Written(org_id, edit.target, version, True, None, None, now.revision + 1)
        pack = self.check(now, proposal)
        assert isinstance(pack, RulePack)
        [result] = pack_store.save(session, [(name, pack)], author, comment, edit.texts(name))
        value = msgspec.to_builtins(pack)
        if result.changed:
            summary = summarise(now.value, value, PACK_COLLECTIONS)
            audit.append(
                session,
                author,
                AuditEvent.of("rules", verb(edit.method)),
                org_id,
                f"{org_id}/rules/{name}",
                {"version": result.version, "comment": comment, "summary": summary},
            )
        return Written(org_id, edit.target, result.version, result.changed, value, etag_of(value), result.revision)

    def compiled(self, now: Current) -> CompiledOrg:
        """The organisation as it is now, compiled: the live one if this process has compiled that version."""
        compiled = self._policies.current.get(now.organisation)
        if compiled is not None and compiled.version == now.version:
            return compiled
        return compile_org(organisation_of(now.document), now.version)


def _new_organisation(data: Any, edit: Edit, org_id: str) -> Organisation:
    organisation = validated(data, edit.source or SourceMap(REQUEST))
    if organisation.id == ADMIN_ORG:
        raise Invalid(
            f"{ADMIN_ORG!r} is reserved for Dutyline's own administration",
            [Issue(REQUEST, 0, "id", f"{ADMIN_ORG!r} is reserved")],
        )
    if organisation.id != org_id:
        raise Invalid(
            f"id: the document is {organisation.id!r}, not {org_id!r}", [Issue(REQUEST, 0, "id", f"must be {org_id!r}")]
        )
    return organisation
