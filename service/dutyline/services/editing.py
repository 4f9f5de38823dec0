"""Changing an organisation through the admin API: the whole document, one entity of it, or a rule pack.

Every change is validated exactly as `dutyline validate` validates files (the document, and every rule
pack against the changed document; a rule pack is also compiled as a refresh compiles it), guarded by If-Match
(optimistic concurrency: the object's ETag must be the one the caller read), stored as a new policy version with
its author and comment (the store checks that it reads back as given), and recorded in the audit trail in the
same transaction. A change can also wait: for a second person's approval (four-eyes on rule packs and, per
organisation, on org charts; `services.four_eyes`) or for the time it takes effect (scheduled); `apply_due`
applies those whose time has come. `preview` says what a change would do without making it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
from sqlalchemy.orm import Session, sessionmaker

from dutyline.engines.admin_policy import ORG_ID as ADMIN_ORG
from dutyline.engines.compiler import CompiledOrg, compile_org
from dutyline.engines.decision import Check
from dutyline.engines.impact import (
    LimitChange,
    TimedChange,
    chain_changes,
    limit_timeline,
    moments,
    permission_changes,
    permission_timeline,
    rule_changes,
    verdict_of,
    verdict_view,
)
from dutyline.engines.rulehost import RuleBackend, check_condition, new_backend
from dutyline.engines.rules import CompiledRules, compile_rules
from dutyline.errors import (
    Conflict,
    Forbidden,
    Invalid,
    Issue,
    IssueCode,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unreadable,
    in_words,
)
from dutyline.orgmodel.diff import ORG_COLLECTIONS, PACK_COLLECTIONS, summarise
from dutyline.orgmodel.document import Organisation
from dutyline.orgmodel.source import SourceMap, check_numbers, format_path
from dutyline.orgmodel.validate import Parsed, check_data
from dutyline.rulemodel.document import RulePack
from dutyline.rulemodel.validate import check_pack
from dutyline.services.four_eyes import FourEyes, Settings
from dutyline.services.policies import PolicyService
from dutyline.services.sources import engine_check
from dutyline.settings import Bounds
from dutyline.store import audit, changes, history
from dutyline.store import orgs as org_store
from dutyline.store import rule_packs as pack_store
from dutyline.store.audit import AuditEvent
from dutyline.store.tables import AdminChangeRow

log = logging.getLogger("dutyline.editing")
Method = Literal["create", "put", "patch", "delete"]
REQUEST = "<request>"
_canonical = msgspec.json.Encoder(order="deterministic")


def etag_of(value: Any) -> str:
    """The ETag of an editable object: a hash of its canonical JSON."""
    return '"' + hashlib.sha256(_canonical.encode(value)).hexdigest()[:32] + '"'


def org_etag(version: int, digest: str) -> str:
    """The ETag of a whole organisation document: its version and content."""
    return '"' + hashlib.sha256(f"{version}:{digest}".encode()).hexdigest()[:32] + '"'


def matches(if_match: str | None, etag: str | None) -> bool:
    if if_match is None or etag is None:
        return False
    for tag in if_match.split(","):
        tag = tag.strip().removeprefix("W/")
        if tag == "*" or tag == etag:
            return True
    return False


@dataclass(frozen=True, slots=True)
class Edit:
    """One change: `target` is `org`, `<collection>/<id>` (posts/teller) or `rules/<pack>`."""

    target: str
    method: Method
    value: Any = None
    source: SourceMap | None = None  # where the value's lines are
    # The YAML file the value was sent as (a whole document or rule pack, nothing else in it): kept with the
    # version it makes, so that an export gives the file back as written.
    text: str | None = None

    @property
    def collection(self) -> str:
        return self.target.split("/", 1)[0]

    @property
    def ident(self) -> str:
        return self.target.split("/", 1)[1] if "/" in self.target else ""

    def as_json(self) -> str:
        kept = {"target": self.target, "method": self.method, "value": self.value}
        if self.text is not None:
            kept["text"] = self.text
        return json.dumps(kept, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Edit:
        data = json.loads(text)
        return cls(data["target"], data["method"], data.get("value"), text=data.get("text"))

    def texts(self, key: str) -> dict[str, str] | None:
        """The file text to keep with the version this edit makes (`key`: the organisation's id or pack's name)."""
        return {key: self.text} if self.text is not None and self.method in ("create", "put") else None


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


@dataclass(frozen=True, slots=True)
class Read:
    """A document or one entity of it as read: `version` the policy version that made its current revision (the
    id of that history entry), `revision` the document's own counter, `policy_version` the global policy version
    now (what /v1/check answers carry), `source` the YAML text it was imported from (None once edited)."""

    value: Any
    etag: str | None
    version: int
    revision: int
    policy_version: int
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Held:
    """A change that was not applied but kept: until a second person approves it (four-eyes) or until its time
    (scheduled). `change` is its view (`change_view`)."""

    change: dict[str, Any]


@dataclass(slots=True)
class _Current:
    """What the target of an edit is now, under the organisation's lock."""

    document: dict[str, Any]
    version: int
    digest: str
    value: Any  # the entity, pack or document; None when it does not exist
    etag: str | None
    packs: dict[str, RulePack] = field(default_factory=dict)
    revision: int = 0  # the target document's own counter (the organisation's, or the rule pack's)
    target_version: int = 0  # the policy version that made the target's current revision
    source: str | None = None  # the target document's imported text, if it has one
    # rule packs this release cannot read, by name: why (an org chart change would not be served until fixed)
    unreadable: dict[str, str] = field(default_factory=dict)


class _NeedsSecondPerson(Exception):
    """Four-eyes applies to the change and nobody else has approved it: it is to be held, not applied."""


class Editor:
    """Every change to an organisation's document and rule packs is made here, through `submit` (now, held for
    four-eyes, or scheduled) and `_apply_in`, the one function that writes: it asks `FourEyes.required` in the
    write's own transaction, so no path applies a change that needs a second person without one."""

    def __init__(
        self, sessions: sessionmaker[Session], policies: PolicyService, four_eyes: FourEyes | bool = False
    ) -> None:
        self._sessions = sessions
        self._policies = policies
        self._four_eyes = four_eyes if isinstance(four_eyes, FourEyes) else FourEyes(rules=four_eyes)

    def _applied(self) -> None:
        """Compile what was just committed, so that this process decides on it at once. The write has happened
        whatever this does: a failure is logged, and the refresh loop tries again."""
        try:
            self._policies.refresh()
        except Exception:
            log.exception("refresh after an admin change failed; the refresh loop will retry")

    # --- reading ---------------------------------------------------------------------------------------

    def document(self, org_id: str) -> tuple[Organisation, Read]:
        """The organisation's current document, and its versions and ETag (`Read.value` the same as plain data)."""
        with self._sessions() as session:
            head = org_store.head(session, org_id)
            policy = org_store.latest_version(session)
        assert head.document is not None
        etag = org_etag(head.version, org_store.digest(head.document))
        return head.document, Read(
            msgspec.to_builtins(head.document), etag, head.version, head.revision, policy, head.source
        )

    def current(self, org_id: str, target: str) -> Read:
        """An entity or rule pack as plain data, its ETag and versions (an entity's are its organisation's);
        NotFound if absent."""
        with self._sessions() as session:
            now = self._current(session, org_id, Edit(target, "put"), packs=False)
            policy = org_store.latest_version(session)
        if now.value is None:
            raise NotFound(f"{_describe(target)} not found in {org_id!r}")
        return Read(now.value, now.etag, now.target_version, now.revision, policy, now.source)

    def collection(self, org_id: str, name: str) -> tuple[list[Any], Read]:
        with self._sessions() as session:
            now = self._current(session, org_id, Edit("org", "put"), packs=False)
            policy = org_store.latest_version(session)
        return _entities(now.document, name), Read(None, now.etag, now.version, now.revision, policy)

    def packs(self, org_id: str) -> tuple[list[dict[str, Any]], int]:
        """The organisation's rule packs this release can read (one it cannot is read by name, as stored), and the
        global policy version now."""
        with self._sessions() as session:
            found = org_store.newest(session, org_id)
            if found is None or found.deleted:
                raise NotFound(f"organisation {org_id!r} not found")
            return [
                {
                    "name": p.name,
                    "version": p.version,
                    "revision": p.revision,
                    "etag": etag_of(msgspec.to_builtins(p.pack)),
                    "pack": msgspec.to_builtins(p.pack),
                }
                for p in pack_store.current(session, org_id)
                if p.pack is not None
            ], org_store.latest_version(session)

    def four_eyes(self, org_id: str) -> Settings:
        """The organisation's four-eyes switches as in force (its own, else the defaults)."""
        with self._sessions() as session:
            return self._four_eyes.settings(session, org_id)

    def set_four_eyes(self, org_id: str, by: str, rules: bool | None = None, org: bool | None = None) -> Settings:
        with self._sessions.begin() as session:
            if not history.lock(session, org_id):
                raise NotFound(f"organisation {org_id!r} not found")
            history.set_four_eyes(session, org_id, by, rules=rules, org=org)
            changed = {k: v for k, v in (("rules_four_eyes", rules), ("org_four_eyes", org)) if v is not None}
            audit.append(session, by, AuditEvent.SETTINGS_CHANGED, org_id, f"org:{org_id}", changed)
            return self._four_eyes.settings(session, org_id)

    # --- writing ---------------------------------------------------------------------------------------

    def create_org(
        self, data: Any, author: str, comment: str, source: SourceMap | None = None, text: str | None = None
    ) -> Written | Held:
        """Store a new organisation (409 if one with its id exists and is not deleted), or hold it for four-eyes;
        `text`: the YAML file it was sent as, kept for exports."""
        organisation = _validated(data, source or SourceMap(REQUEST))
        return self.submit(organisation.id, Edit("org", "create", data, source, text), None, author, comment)

    def submit(
        self,
        org_id: str,
        edit: Edit,
        if_match: str | None,
        author: str,
        comment: str,
        effective_at: dt.datetime | None = None,
    ) -> Written | Held:
        """Make a change: every write of the admin API comes here (immediate, scheduled with `effective_at`,
        a restore of a version, an import of a YAML document). It is applied now unless it is scheduled for
        later or four-eyes applies to it; then it is checked (precondition, validation) and held."""
        if effective_at is not None and effective_at > _utcnow():
            return self._hold(org_id, edit, if_match, author, comment, effective_at)
        try:
            with self._sessions.begin() as session:
                written = self._apply_in(session, org_id, edit, if_match, author, comment, approved_by=None)
        except _NeedsSecondPerson:  # rolled back: nothing was written
            return self._hold(org_id, edit, if_match, author, comment, None)
        self._applied()
        return written

    def _apply_in(
        self,
        session: Session,
        org_id: str,
        edit: Edit,
        if_match: str | None,
        author: str,
        comment: str,
        approved_by: str | None,
    ) -> Written:
        """Write one change in the caller's transaction: the only function that does. Raises `_NeedsSecondPerson`
        when four-eyes applies and `approved_by` (another person who approved it) is None."""
        if approved_by is not None and approved_by == author:
            raise Forbidden(f"{author} may not approve a change they made")
        if edit.target == "org" and edit.method == "create":
            return self._create_in(session, org_id, edit, author, comment, approved_by)
        if not history.lock(session, org_id):
            raise NotFound(f"organisation {org_id!r} not found")
        now = self._current(session, org_id, edit)
        _precondition(edit, now, if_match, org_id)
        if approved_by is None and self._four_eyes.required(session, org_id, edit.target):
            raise _NeedsSecondPerson
        if edit.collection == "rules":
            return self._write_pack(session, org_id, edit, now, author, comment)
        if edit.target == "org" and edit.method == "delete":
            version = history.delete_organisation(session, org_id, author, comment)
            audit.append(
                session,
                author,
                AuditEvent.ORG_DELETED,
                org_id,
                f"org:{org_id}",
                {"version": version, "comment": comment},
            )
            return Written(org_id, "org", version, True, None, None, now.revision + 1)
        organisation = self._proposed_organisation(org_id, edit, now)
        texts = edit.texts(org_id) if edit.target == "org" else None
        [result] = org_store.save(session, [organisation], author, comment, texts)
        after = msgspec.to_builtins(organisation)
        value = after if edit.target == "org" else _find(after, edit.collection, edit.ident)
        etag = (
            org_etag(result.version, org_store.digest(organisation))
            if edit.target == "org"
            else (etag_of(value) if value is not None else None)
        )
        if result.changed:
            audit.append(
                session,
                author,
                AuditEvent.of(edit.collection, _verb(edit.method)),
                org_id,
                f"{org_id}/{edit.target}",
                {
                    "version": result.version,
                    "comment": comment,
                    "summary": summarise(now.document, after, ORG_COLLECTIONS),
                },
            )
        return Written(org_id, edit.target, result.version, result.changed, value, etag, result.revision)

    def _create_in(
        self, session: Session, org_id: str, edit: Edit, author: str, comment: str, approved_by: str | None
    ) -> Written:
        organisation = _validated(edit.value, edit.source or SourceMap(REQUEST))
        if organisation.id == ADMIN_ORG:
            raise Invalid(
                f"{ADMIN_ORG!r} is reserved for Dutyline's own administration",
                [Issue(REQUEST, 0, "id", f"{ADMIN_ORG!r} is reserved")],
            )
        if organisation.id != org_id:
            raise Invalid(
                f"id: the document is {organisation.id!r}, not {org_id!r}",
                [Issue(REQUEST, 0, "id", f"must be {org_id!r}")],
            )
        history.lock(session, org_id)  # (False for a new organisation: nothing to lock yet)
        if _exists(session, org_id):  # deleted, it may be created again, and its history goes on
            raise Conflict(f"organisation {org_id!r} already exists")
        if approved_by is None and self._four_eyes.required(session, org_id, "org"):
            raise _NeedsSecondPerson
        [result] = org_store.save(session, [organisation], author, comment, edit.texts(org_id))
        audit.append(
            session,
            author,
            AuditEvent.ORG_CREATED,
            org_id,
            f"org:{org_id}",
            {"version": result.version, "comment": comment},
        )
        etag = org_etag(result.version, org_store.digest(organisation))
        return Written(org_id, "org", result.version, True, msgspec.to_builtins(organisation), etag, result.revision)

    def _proposed_organisation(self, org_id: str, edit: Edit, now: _Current) -> Organisation:
        """The document as the edit makes it, validated, with every rule pack still holding against it."""
        proposed = _proposed(now, edit, org_id)
        organisation = _checked(proposed, edit).organisation
        if organisation.id != org_id:
            raise Invalid(
                f"id: the document is {organisation.id!r} but the URL names {org_id!r}",
                [Issue(REQUEST, 0, "id", f"must be {org_id!r}")],
            )
        _refuse_unreadable(now)
        _check_packs(now.packs, organisation)
        return organisation

    def _write_pack(
        self, session: Session, org_id: str, edit: Edit, now: _Current, author: str, comment: str
    ) -> Written:
        name = edit.ident
        if edit.method == "delete":
            version = history.delete_pack(session, org_id, name, author, comment)
            audit.append(
                session,
                author,
                AuditEvent.RULES_DELETED,
                org_id,
                f"{org_id}/rules/{name}",
                {"version": version, "comment": comment},
            )
            return Written(org_id, edit.target, version, True, None, None, now.revision + 1)
        pack = self._proposed_pack(org_id, edit, now)
        [result] = pack_store.save(session, [(name, pack)], author, comment, edit.texts(name))
        value = msgspec.to_builtins(pack)
        if result.changed:
            audit.append(
                session,
                author,
                AuditEvent.of("rules", _verb(edit.method)),
                org_id,
                f"{org_id}/rules/{name}",
                {
                    "version": result.version,
                    "comment": comment,
                    "summary": summarise(now.value, value, PACK_COLLECTIONS),
                },
            )
        return Written(org_id, edit.target, result.version, result.changed, value, etag_of(value), result.revision)

    def _proposed_pack(self, org_id: str, edit: Edit, now: _Current) -> RulePack:
        """The pack as the edit makes it: validated against the organisation, and compiled against it as a
        refresh will compile it (its conditions taken by the rule host), so that what is stored can be served."""
        data = _merge(now.value, edit.value) if edit.method == "patch" else edit.value
        pack = _validated_pack(data, org_id, _organisation(now.document), _body_lines(edit))
        _compiles(pack, self._compiled(org_id, now), self._policies.bounds)
        return pack

    def _current(self, session: Session, org_id: str, edit: Edit, packs: bool = True) -> _Current:
        """The target now (and, for an org chart change unless `packs` is False, the rule packs to check)."""
        if edit.target == "org" and edit.method == "create":  # its value: whether it exists (the precondition asks)
            return _Current({}, 0, "", {} if _exists(session, org_id) else None, None)
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
        now = _Current(document, head.version, digest, None, None, revision=head.revision, target_version=head.version)
        if edit.target == "org":
            now.value, now.etag, now.source = document, org_etag(head.version, digest), head.source
        elif edit.collection == "rules":
            row = history.latest_pack(session, org_id, edit.ident)
            now.revision, now.target_version = (row.revision, row.version) if row is not None else (0, 0)
            if row is not None and row.document is not None:
                now.value = json.loads(row.document)
                now.etag = etag_of(now.value)
                now.source = row.source
        elif edit.collection in ORG_COLLECTIONS:
            now.value = _find(document, edit.collection, edit.ident)
            now.etag = etag_of(now.value) if now.value is not None else None
        else:
            raise NotFound(f"no such collection {edit.collection!r}")
        if packs and edit.collection != "rules":
            for stored in pack_store.current(session, org_id):
                if stored.pack is not None:
                    now.packs[stored.name] = stored.pack
                else:
                    now.unreadable[stored.name] = stored.error or "unreadable"
        return now

    # --- changes that wait: four-eyes and scheduled --------------------------------------------------------

    def _hold(
        self,
        org_id: str,
        edit: Edit,
        if_match: str | None,
        author: str,
        comment: str,
        effective_at: dt.datetime | None,
    ) -> Held:
        """Check the edit now (precondition and validation, nothing stored), then keep it: for a second person's
        approval when four-eyes applies (even if it is also scheduled: it cannot become due unapproved), else
        until its time. When it is applied, the object must still have the ETag it has now."""
        with self._sessions() as session:
            now = self._current(session, org_id, edit)
            _precondition(edit, now, if_match, org_id)
            if edit.target == "org" and edit.method == "create":
                _validated(edit.value, edit.source or SourceMap(REQUEST))
            elif edit.collection == "rules":
                if edit.method != "delete":
                    self._proposed_pack(org_id, edit, now)
            elif not (edit.target == "org" and edit.method == "delete"):
                self._proposed_organisation(org_id, edit, now)
            second = self._four_eyes.required(session, org_id, edit.target)
        row = AdminChangeRow(
            id=f"chg_{uuid.uuid4().hex[:24]}",
            organisation=org_id,
            target=edit.target,
            operation=edit.as_json(),
            base_etag=now.etag,
            reason="four_eyes" if second else "scheduled",
            status="pending" if second else "scheduled",
            author=author,
            comment=comment,
            created_at=_utcnow(),
            effective_at=effective_at,
            decided_by=None,
            decided_at=None,
            version=None,
            message="",
            revision=1,
        )
        with self._sessions.begin() as session:
            changes.add(session, row)
            audit.append(
                session,
                author,
                AuditEvent.of("change", row.status),
                org_id,
                f"{org_id}/{edit.target}",
                {
                    "change": row.id,
                    "comment": comment,
                    "effective_at": effective_at.isoformat() if effective_at else None,
                },
            )
        return Held(change_view(row))

    def change(self, change_id: str) -> dict[str, Any]:
        with self._sessions() as session:
            row = changes.get(session, change_id)
        if row is None:
            raise NotFound(f"change {change_id!r} not found")
        return change_view(row)

    def changes(
        self, status: str | None, organisations: frozenset[str] | None, organisation: str | None, limit: int
    ) -> list[dict[str, Any]]:
        with self._sessions() as session:
            return [change_view(r) for r in changes.query(session, status, organisations, organisation, limit)]

    def decide_change(self, change_id: str, approver: str, approve: bool, comment: str = "") -> dict[str, Any]:
        """Approve or reject a pending change. Approved, it is applied now as its author's change, or, if it is
        scheduled for later, waits for its time (approved). The approver's right to do so (another person who
        may make such changes) is the caller's to check first; that it is not the author is checked here too."""
        with self._sessions() as session:
            row = changes.get(session, change_id)
        if row is None:
            raise NotFound(f"change {change_id!r} not found")
        if row.status != "pending":
            raise Conflict(f"change {change_id} is {row.status}, not pending")
        if approve and approver == row.author:
            raise Forbidden(f"{approver} may not approve a change they made")
        now = _utcnow()
        if not approve:
            with self._sessions.begin() as session:
                if not changes.change(
                    session,
                    row.id,
                    row.revision,
                    status="rejected",
                    decided_by=approver,
                    decided_at=now,
                    message=comment,
                ):
                    raise _Decided(f"change {change_id} was decided meanwhile")
                audit.append(
                    session,
                    approver,
                    AuditEvent.CHANGE_REJECTED,
                    row.organisation,
                    f"{row.organisation}/{row.target}",
                    {"change": row.id, "comment": comment},
                )
            return self.change(change_id)
        if row.effective_at is not None and row.effective_at > now:
            with self._sessions.begin() as session:
                approved = {"decided_by": approver, "decided_at": now, "message": comment}
                if not changes.change(session, row.id, row.revision, status="scheduled", **approved):
                    raise _Decided(f"change {change_id} was decided meanwhile")
                audit.append(
                    session,
                    approver,
                    AuditEvent.CHANGE_APPROVED,
                    row.organisation,
                    f"{row.organisation}/{row.target}",
                    {"change": row.id, "comment": comment, "effective_at": row.effective_at.isoformat()},
                )
            return self.change(change_id)
        note = _approved_note(row.comment, approver, comment)
        self._run_deferred(row, approver, note, {"decided_by": approver, "decided_at": now}, approver)
        return self.change(change_id)

    def apply_due(self) -> int:
        """Apply every scheduled change whose time has come (the background job); returns how many were tried.
        One that four-eyes applies to and nobody approved goes back to waiting for a second person."""
        with self._sessions() as session:
            due = changes.due(session, _utcnow())
        for row in due:
            if row.decided_by is not None:  # approved before its time
                note = _approved_note(row.comment, row.decided_by, row.message)
                self._run_deferred(row, "scheduler", note, {}, row.decided_by)
            else:
                self._run_deferred(row, "scheduler", row.comment, {"decided_at": _utcnow()}, None)
        return len(due)

    def _run_deferred(
        self, row: AdminChangeRow, actor: str, comment: str, values: dict[str, Any], approved_by: str | None
    ) -> None:
        """Apply a waiting change as its author's, provided the object is still as it was when the change was
        made (its ETag then); otherwise mark it failed, with the reason."""
        edit = Edit.from_json(row.operation)
        try:
            with self._sessions.begin() as session:
                if not changes.change(session, row.id, row.revision, status="applied", **values):
                    raise _Decided(f"change {row.id} was decided meanwhile")
                written = self._apply_in(
                    session, row.organisation, edit, row.base_etag, row.author, comment, approved_by
                )
                changes.change(session, row.id, row.revision + 1, version=written.version)
                audit.append(
                    session,
                    actor,
                    AuditEvent.CHANGE_APPLIED,
                    row.organisation,
                    f"{row.organisation}/{row.target}",
                    {"change": row.id, "version": written.version},
                )
        except _Decided:
            raise
        except _NeedsSecondPerson:  # four-eyes applies now (it was turned on after the change was scheduled)
            message = "four-eyes applies to this change: it waits for a second person's approval"
            with self._sessions.begin() as session:
                if changes.change(session, row.id, row.revision, status="pending", reason="four_eyes", message=message):
                    audit.append(
                        session,
                        actor,
                        AuditEvent.CHANGE_PENDING,
                        row.organisation,
                        f"{row.organisation}/{row.target}",
                        {"change": row.id, "comment": message},
                    )
            log.info("scheduled change %s is due but needs a second person's approval first", row.id)
            return
        except (Invalid, PreconditionFailed, PreconditionRequired, NotFound, Conflict, Forbidden) as exc:
            # Every problem is kept, with the first in words: the change's view and its audit entry say what
            # failed (the separation-of-duties issue naming both posts), not only how many problems there were.
            issues = _issues(getattr(exc, "issues", []))
            with self._sessions.begin() as session:
                changes.change(
                    session,
                    row.id,
                    row.revision,
                    status="failed",
                    message=str(exc),
                    issues=json.dumps(issues, ensure_ascii=False),
                    **values,
                )
                audit.append(
                    session,
                    actor,
                    AuditEvent.CHANGE_FAILED,
                    row.organisation,
                    f"{row.organisation}/{row.target}",
                    {"change": row.id, "error": str(exc), "issues": issues},
                )
            if actor == "scheduler":
                log.warning("scheduled change %s failed: %s", row.id, exc)
                return
            failed = Conflict(f"change {row.id} could not be applied: {exc}")
            failed.issues = getattr(exc, "issues", [])  # type: ignore[attr-defined]  # (answered with the 409)
            raise failed from None
        self._applied()

    # --- preview -----------------------------------------------------------------------------------------

    def preview(
        self,
        org_id: str,
        edit: Edit,
        checks: Sequence[Check] = (),
        at: float | None = None,
        rules: Mapping[str, Any] | None = None,
        effective: float | None = None,
    ) -> dict[str, Any]:
        """What the edit would do, nothing stored: who gains and loses which permissions (at `at`, default
        now), whose approver chain changes, which separation-of-duties conflicts and other problems it brings,
        and each check decided (duty model, then business rules) under the current and the proposed policy.

        `rules` are draft rule packs by name (None: the pack deleted), put in place of the stored ones for the
        proposal. The proposal's rules run in a temporary rule host, never the live one.

        Over time: the change is also previewed at every moment it matters (`moments`: from `at`, or `effective`
        for a scheduled change, then each start and end of an acting or other windowed assignment), and gains and
        losses of permissions and of limits are given with the window they hold in (`timeline`, `limits`); a
        rule pack change lists each field before → after (`rule_changes`)."""
        moment = time.time() if at is None else at
        with self._sessions() as session:
            now = self._current(session, org_id, edit)
            stored = {p.name: p.pack for p in pack_store.current(session, org_id) if p.pack is not None}
        before = self._compiled(org_id, now)
        result: dict[str, Any] = {"organisation": org_id, "current_version": now.version, "target": edit.target}
        if edit.collection == "rules":
            data = (
                None
                if edit.method == "delete"
                else (_merge(now.value, edit.value) if edit.method == "patch" else edit.value)
            )
            if data is not None and not isinstance(data, dict):  # a merge patch that is not an object replaces the pack
                raise Invalid(
                    f"{_describe(edit.target)} must be an object", [Issue(REQUEST, 0, "", "expected an object")]
                )
            result["summary"] = summarise(now.value, data, PACK_COLLECTIONS)
            try:
                drafts = _draft_packs(
                    stored, {edit.ident: data}, _organisation(now.document), org_id, _body_lines(edit)
                )
            except Invalid as exc:
                return result | {"valid": False, "issues": _issues(exc.issues), "separation_of_duties": []}
            ahead = moments(before, before, moment, effective)
            return result | {
                "valid": True,
                "issues": [],
                "separation_of_duties": [],
                "at": moment,
                "note": "rule pack changes do not change duty permissions",
                "moments": [_iso(m) for m in ahead],
                "rule_changes": [
                    msgspec.to_builtins(c) for c in rule_changes(stored.get(edit.ident), drafts.get(edit.ident), before)
                ],
                "limits": _limits_view(
                    limit_timeline(
                        before, before, self._rules_of(stored, before), self._rules_of(drafts, before), ahead
                    )
                ),
                "checks": self._checks(org_id, before, before, stored, drafts, checks),
            }
        deleting = edit.target == "org" and edit.method == "delete"
        proposed = None if deleting else _proposed(now, edit, org_id)
        result["summary"] = summarise(now.document, proposed, ORG_COLLECTIONS)
        after: CompiledOrg | None = None
        drafts = stored
        warnings: list[Issue] = []
        if proposed is not None:
            try:
                parsed = _checked(proposed, edit)
                drafts = _draft_packs(stored, rules or {}, parsed.organisation, org_id, None)
            except Invalid as exc:
                return result | {
                    "valid": False,
                    "issues": _issues(exc.issues),
                    "separation_of_duties": _issues([i for i in exc.issues if i.code == IssueCode.SOD_CONFLICT]),
                }
            warnings = list(parsed.warnings)
            after = compile_org(parsed.organisation, 0)
        ahead = moments(before, after, moment, effective)
        before_rules = self._rules_of(stored, before)
        after_rules = self._rules_of(drafts, after) if after is not None else None
        return result | {
            "valid": True,
            "issues": _issues(warnings),
            "separation_of_duties": [],
            "at": moment,
            "moments": [_iso(m) for m in ahead],
            "timeline": _timeline_view(permission_timeline(before, after, ahead)),
            "limits": _limits_view(limit_timeline(before, after, before_rules, after_rules, ahead)),
            "permissions": [msgspec.to_builtins(c) for c in permission_changes(before, after, moment)],
            "approver_chains": [msgspec.to_builtins(c) for c in chain_changes(before, after)],
            "checks": self._checks(org_id, before, after, stored, drafts, checks),
        }

    def _rules_of(self, packs: Mapping[str, RulePack], org: CompiledOrg) -> CompiledRules | None:
        """The packs compiled against `org` (no rule host: only limits are read from them); None if they cannot be
        (they were validated already, so this is a backstop, and the preview says nothing about limits then)."""
        try:
            return compile_rules(packs.values(), org, self._policies.bounds)
        except (Invalid, ValueError):
            log.warning("preview: rule packs of %s do not compile; limits not previewed", org.document.id)
            return None

    def _checks(
        self,
        org_id: str,
        before: CompiledOrg,
        after: CompiledOrg | None,
        stored: dict[str, RulePack],
        proposed: dict[str, RulePack],
        checks: Sequence[Check],
    ) -> list[dict[str, Any]]:
        """Each check decided with business rules: now by the live policy's compiled rules and rule host (or, if
        this process has not compiled the current version yet, the stored packs in a temporary host), and under
        the proposal by the proposed packs compiled against the proposed organisation, in a temporary host."""
        if not checks:
            return []
        live = self._policies.current
        hosts: list[RuleBackend] = []
        try:
            if live.get(org_id) is before:
                now_rules, now_host = live.rules.get(org_id), self._policies.host
            else:
                now_rules, now_host = _hosted(compile_rules(stored.values(), before), hosts)
            if after is None:
                new_rules, new_host = None, now_host
            else:
                new_rules, new_host = _hosted(compile_rules(proposed.values(), after), hosts)
            out = []
            for check in checks:
                old = verdict_of(before, now_rules, now_host, check)
                new = verdict_of(after, new_rules, new_host, check)
                out.append(
                    {"current": verdict_view(old), "proposed": verdict_view(new), "changed": old.outcome != new.outcome}
                )
            return out
        finally:
            for host in hosts:
                host.close()

    def _compiled(self, org_id: str, now: _Current) -> CompiledOrg:
        compiled = self._policies.current.get(org_id)
        if compiled is not None and compiled.version == now.version:
            return compiled
        return compile_org(_organisation(now.document), now.version)


class _Decided(Conflict):
    """Someone else approved, rejected or applied the change first."""


def change_view(row: AdminChangeRow) -> dict[str, Any]:
    operation = json.loads(row.operation)
    return {
        "id": row.id,
        "organisation": row.organisation,
        "target": row.target,
        "method": operation["method"],
        "value": operation.get("value"),
        "reason": row.reason,
        "status": row.status,
        "author": row.author,
        "comment": row.comment,
        "created_at": row.created_at.isoformat(),
        "effective_at": row.effective_at.isoformat() if row.effective_at else None,
        "decided_by": row.decided_by,
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        "version": row.version,
        "message": row.message,
        "issues": json.loads(row.issues) if row.issues else [],
    }


# --- pure helpers ------------------------------------------------------------------------------------------


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _exists(session: Session, org_id: str) -> bool:
    found = org_store.newest(session, org_id)
    return found is not None and not found.deleted


def _approved_note(comment: str, approver: str, note: str) -> str:
    return f"{comment} (approved by {approver}{': ' + note if note else ''})".strip()


def _refuse_unreadable(now: _Current) -> None:
    """An org chart change is refused while a rule pack of the organisation cannot be read: the refresh would keep
    the whole organisation on its last good version, so the change would be stored but not served."""
    if now.unreadable:
        reasons = "; ".join(f"rules/{name}: {why}" for name, why in sorted(now.unreadable.items()))
        raise Unreadable(
            f"{reasons}; replace or delete the rule pack first (the organisation is not current until then)"
        )


def _compiles(pack: RulePack, org: CompiledOrg, bounds: Bounds) -> None:
    """`Invalid` unless the pack compiles against `org` and the rule host would take every condition of it."""
    try:
        compiled = compile_rules([pack], org, bounds)
        for condition in compiled.rulesets.values():
            check_condition(condition)
    except Invalid:
        raise
    except Exception as exc:  # what a refresh would fail on: refused here, before it is stored
        issue = Issue(REQUEST, 0, "rules", f"cannot be compiled: {exc}")
        raise Invalid(f"rules: the pack cannot be compiled: {exc}", [issue]) from None


def _describe(target: str) -> str:
    if target == "org":
        return "the organisation"
    collection, _, ident = target.partition("/")
    return f"{_SINGULAR.get(collection, collection)} {ident!r}"


_SINGULAR = {
    "departments": "department",
    "posts": "post",
    "people": "person",
    "resources": "resource",
    "groups": "group",
    "separation_of_duties": "separation-of-duties rule",
    "rules": "rule pack",
}


def _verb(method: Method) -> str:
    return {"create": "created", "put": "replaced", "patch": "changed", "delete": "deleted"}[method]


def _precondition(edit: Edit, now: _Current, if_match: str | None, org_id: str) -> None:
    exists = now.value is not None
    if edit.method == "create":
        if exists:
            raise Conflict(f"{_describe(edit.target)} already exists in {org_id!r}")
        return
    if not exists:
        raise NotFound(f"{_describe(edit.target)} not found in {org_id!r}")
    if if_match is None:
        raise PreconditionRequired(
            f"If-Match is required to change {_describe(edit.target)}: send the ETag you read (GET it first)"
        )
    if not matches(if_match, now.etag):
        raise PreconditionFailed(
            f"{_describe(edit.target)} has changed since you read it (ETag {now.etag}, If-Match {if_match}); "
            "read it again and reapply your change"
        )


def _entities(document: dict[str, Any], collection: str) -> list[Any]:
    holder = document
    path = ORG_COLLECTIONS[collection]
    for key in path[:-1]:
        holder = holder.get(key) or {}
    return list(holder.get(path[-1]) or [])


def _find(document: dict[str, Any], collection: str, ident: str) -> Any:
    return next((e for e in _entities(document, collection) if isinstance(e, dict) and e.get("id") == ident), None)


def _proposed(now: _Current, edit: Edit, org_id: str) -> dict[str, Any]:
    """The whole document as it would be after the edit (plain data, not yet validated)."""
    if edit.target == "org":
        if not isinstance(edit.value, dict):
            raise Invalid("the organisation must be an object", [Issue(REQUEST, 0, "", "expected an object")])
        return {"id": org_id, **edit.value} if "id" not in edit.value else dict(edit.value)
    document = json.loads(json.dumps(now.document))
    path = ORG_COLLECTIONS[edit.collection]
    holder = document
    for key in path[:-1]:
        holder = holder.setdefault(key, {})
    items: list[Any] = holder.setdefault(path[-1], [])
    index = next((i for i, e in enumerate(items) if isinstance(e, dict) and e.get("id") == edit.ident), None)
    if edit.method == "delete":
        if index is not None:
            del items[index]
        return document
    value = _merge(items[index] if index is not None else {}, edit.value) if edit.method == "patch" else edit.value
    if not isinstance(value, dict):
        raise Invalid(f"{_describe(edit.target)} must be an object", [Issue(REQUEST, 0, "", "expected an object")])
    value = {"id": edit.ident, **value}
    if value["id"] != edit.ident:
        raise Invalid(
            f"id: the body's id {value['id']!r} differs from the URL's {edit.ident!r}; ids cannot be changed",
            [Issue(REQUEST, 0, "id", f"must be {edit.ident!r}")],
        )
    if index is None:
        items.append(value)
    else:
        items[index] = value
    return document


def _body_lines(edit: Edit) -> SourceMap | None:
    """The lines of a rule pack change's body. A merge patch's are only for what it gives: a problem in what it
    leaves as stored has no line in the request (not the line of the body's first brace)."""
    if edit.source is None or edit.method != "patch":
        return edit.source
    lines = dict(edit.source.mapped())
    lines.pop((), None)
    return SourceMap(edit.source.file, lines)


def _merge(target: Any, patch: Any) -> Any:
    """JSON Merge Patch (RFC 7386): objects merge key by key, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


def _validated(data: Any, source: SourceMap) -> Organisation:
    return check_data(data, source).organisation


ORGANISATION = "<organisation>"  # the file of an issue elsewhere in the document than the entity a request changes


def _checked(proposed: dict[str, Any], edit: Edit) -> Parsed:
    """The proposed document validated. For a change of one entity, each issue in the entity has the line of the
    request body and a path from the entity (`reports_to`, not `posts[12].reports_to`); an issue elsewhere in the
    document (a post the change leaves dangling) keeps its path in the document, with no line (`<organisation>`)."""
    if edit.target == "org":
        return check_data(proposed, edit.source or SourceMap(REQUEST))
    prefix = _entity_path(proposed, edit)
    source = edit.source.moved(prefix) if prefix is not None and edit.source is not None else SourceMap(REQUEST)
    try:
        parsed = check_data(proposed, source)
    except Invalid as exc:
        raise Invalid.of(_relative(exc.issues, prefix), _describe(edit.target)) from None
    return Parsed(parsed.organisation, parsed.source, tuple(_relative(parsed.warnings, prefix)))


def _entity_path(document: dict[str, Any], edit: Edit) -> tuple[str | int, ...] | None:
    """Where the edited entity is in `document` (None: not there, as after a delete)."""
    items = _entities(document, edit.collection)
    index = next((i for i, e in enumerate(items) if isinstance(e, dict) and e.get("id") == edit.ident), None)
    return None if index is None else (*ORG_COLLECTIONS[edit.collection], index)


def _relative(issues: Sequence[Issue], prefix: tuple[str | int, ...] | None) -> list[Issue]:
    """`issues` of a whole document as `_checked` gives them for an entity at `prefix`: the entity's first."""
    inside: list[Issue] = []
    outside: list[Issue] = []
    root = format_path(prefix) if prefix is not None else None
    for issue in issues:
        if root is not None and (issue.path == root or issue.path.startswith((root + ".", root + "["))):
            path = issue.path[len(root) :].removeprefix(".")
            inside.append(Issue(REQUEST, issue.line, path, issue.message, issue.severity, issue.code, issue.params))
        else:
            outside.append(Issue(ORGANISATION, 0, issue.path, issue.message, issue.severity, issue.code, issue.params))
    inside.sort(key=lambda i: (i.line, i.path, i.message))
    return inside + outside


def _validated_pack(data: Any, org_id: str, org: Organisation, source: SourceMap | None) -> RulePack:
    if isinstance(data, dict) and "org" not in data:
        data = {"org": org_id, **data}
    check_numbers(data, source or SourceMap(REQUEST))  # (a NaN limit was once stored as null, unreadable)
    pack = check_pack(data, source or SourceMap(REQUEST), org, engine_check).pack
    if pack.org != org_id:
        raise Invalid(
            f"org: the pack is for {pack.org!r} but the URL names {org_id!r}",
            [Issue(REQUEST, 0, "org", f"must be {org_id!r}")],
        )
    return pack


def _check_packs(packs: dict[str, RulePack], organisation: Organisation) -> None:
    """Every rule pack of the organisation must still hold against the changed document (as `validate` checks)."""
    issues: list[Issue] = []
    for name, pack in sorted(packs.items()):
        try:
            check_pack(msgspec.to_builtins(pack), SourceMap(f"rules/{name}"), organisation, engine_check)
        except Invalid as exc:
            issues += exc.issues
    if issues:
        raise Invalid(f"a rule pack that depends on this organisation would break: {in_words(issues)}", issues)


def _iso(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat()


def _timeline_view(changes: list[TimedChange]) -> list[dict[str, Any]]:
    return [
        {
            "person": c.person,
            "change": c.change,
            "permission": c.permission,
            "since": _iso(c.since),
            "until": _iso(c.until) if c.until is not None else None,
        }
        for c in changes
    ]


def _limits_view(changes: list[LimitChange]) -> list[dict[str, Any]]:
    return [
        {
            "person": c.person,
            "rule": c.rule,
            "before": c.before,
            "after": c.after,
            "since": _iso(c.since),
            "until": _iso(c.until) if c.until is not None else None,
        }
        for c in changes
    ]


def _draft_packs(
    stored: dict[str, RulePack],
    drafts: Mapping[str, Any],
    organisation: Organisation,
    org_id: str,
    source: SourceMap | None,
) -> dict[str, RulePack]:
    """The rule packs as proposed: the stored ones re-checked against `organisation`, with each draft (plain data;
    None deletes the pack) validated and put in place of the stored pack of its name."""
    issues: list[Issue] = []
    try:
        _check_packs({n: p for n, p in stored.items() if n not in drafts}, organisation)
    except Invalid as exc:
        issues += exc.issues
    out = {n: p for n, p in stored.items() if n not in drafts}
    for name, data in sorted(drafts.items()):
        if data is None:
            continue
        try:
            out[name] = _validated_pack(data, org_id, organisation, source or SourceMap(f"rules/{name}"))
        except Invalid as exc:
            issues += exc.issues
    if issues:
        raise Invalid(f"in the rule packs: {in_words(issues)}", issues)
    return dict(sorted(out.items()))


def _hosted(rules: CompiledRules, hosts: list[RuleBackend]) -> tuple[CompiledRules, RuleBackend]:
    """`rules` loaded in a new, temporary rule host (added to `hosts`, for the caller to close)."""
    host = new_backend()
    hosts.append(host)
    try:
        host.load(dict(rules.rulesets))
    except ValueError as exc:  # validation compiles every condition; this is a backstop
        raise Invalid(f"rules: {exc}", [Issue(REQUEST, 0, "rules", str(exc))]) from None
    return rules, host


def _organisation(document: dict[str, Any]) -> Organisation:
    """The stored document (plain data) as its struct again; it passed validation when it was stored (unless
    another release stored it: then `Unreadable`)."""
    try:
        return msgspec.convert(document, Organisation)
    except msgspec.ValidationError as exc:
        raise Unreadable(f"the organisation's stored document cannot be read by this release: {exc}") from None


def _issues(issues: Sequence[Issue]) -> list[dict[str, Any]]:
    return [
        {"file": i.file, "line": i.line, "path": i.path, "message": i.message, "severity": i.severity, "code": i.code}
        | ({"params": i.params} if i.params else {})
        for i in issues
    ]
