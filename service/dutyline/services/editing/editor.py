"""`Editor`: the one entry point for changing an organisation through the admin API (the runtime builds it as
`runtime.editor`). Reads give a document, an entity or a rule pack with its ETag and versions; `submit` applies a
change now through the writer, or holds it (four-eyes, scheduled) through `pending`; `preview` says what one would
do. Every change is validated exactly as `dutyline validate` validates files and guarded by If-Match (optimistic
concurrency: the object's ETag must be the one the caller read)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy.orm import Session, sessionmaker

from dutyline.engines.decision import Check
from dutyline.errors import NotFound
from dutyline.orgmodel.document import Organisation
from dutyline.orgmodel.source import SourceMap
from dutyline.rulemodel.document import RulePack
from dutyline.services.editing.edits import REQUEST, Edit, describe, entities, etag_of, org_etag
from dutyline.services.editing.pending import Change, Held, Pending, utcnow
from dutyline.services.editing.preview import Preview, Previewer
from dutyline.services.editing.validation import validated
from dutyline.services.editing.writer import NeedsSecondPerson, Writer, Written, read_current
from dutyline.services.four_eyes import FourEyes, Settings
from dutyline.services.policies import PolicyService
from dutyline.services.shapes import Shape
from dutyline.store import audit, history
from dutyline.store import orgs as org_store
from dutyline.store import rule_packs as pack_store
from dutyline.store.audit import AuditEvent

log = logging.getLogger("dutyline.editing")


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


class StoredPack(Shape):
    """`revision`: the pack's own counter; `version`: the policy version that made that revision."""

    name: str
    version: int
    etag: str
    pack: RulePack
    revision: int


class Editor:
    """Every change to an organisation's document and rule packs is made here, through `submit` (now, held for
    four-eyes, or scheduled); the writer (`Writer.apply_in`) is the one function that writes."""

    def __init__(
        self, sessions: sessionmaker[Session], policies: PolicyService, four_eyes: FourEyes | bool = False
    ) -> None:
        self._sessions = sessions
        self._policies = policies
        self._four_eyes = four_eyes if isinstance(four_eyes, FourEyes) else FourEyes(rules=four_eyes)
        self._writer = Writer(policies, self._four_eyes)
        self._pending = Pending(sessions, self._writer, self._four_eyes, self._applied)
        self._previewer = Previewer(sessions, policies, self._writer)

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
            now = read_current(session, org_id, Edit(target, "put"), packs=False)
            policy = org_store.latest_version(session)
        if now.value is None:
            raise NotFound(f"{describe(target)} not found in {org_id!r}")
        return Read(now.value, now.etag, now.target_version, now.revision, policy, now.source)

    def collection(self, org_id: str, name: str) -> tuple[list[Any], Read]:
        with self._sessions() as session:
            now = read_current(session, org_id, Edit("org", "put"), packs=False)
            policy = org_store.latest_version(session)
        return entities(now.document, name), Read(None, now.etag, now.version, now.revision, policy)

    def packs(self, org_id: str) -> tuple[list[StoredPack], int]:
        """The organisation's rule packs this release can read (one it cannot is read by name, as stored), and the
        global policy version now."""
        with self._sessions() as session:
            found = org_store.newest(session, org_id)
            if found is None or found.deleted:
                raise NotFound(f"organisation {org_id!r} not found")
            return [
                StoredPack(p.name, p.version, etag_of(msgspec.to_builtins(p.pack)), p.pack, p.revision)
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
        organisation = validated(data, source or SourceMap(REQUEST))
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
        if effective_at is not None and effective_at > utcnow():
            return self._pending.hold(org_id, edit, if_match, author, comment, effective_at)
        try:
            with self._sessions.begin() as session:
                written = self._writer.apply_in(session, org_id, edit, if_match, author, comment, approved_by=None)
        except NeedsSecondPerson:  # rolled back: nothing was written
            return self._pending.hold(org_id, edit, if_match, author, comment, None)
        self._applied()
        return written

    # --- changes that wait: four-eyes and scheduled --------------------------------------------------------

    def change(self, change_id: str) -> Change:
        return self._pending.change(change_id)

    def changes(
        self, status: str | None, organisations: frozenset[str] | None, organisation: str | None, limit: int
    ) -> list[Change]:
        return self._pending.changes(status, organisations, organisation, limit)

    def decide_change(self, change_id: str, approver: str, approve: bool, comment: str = "") -> Change:
        """Approve or reject a pending change (see `Pending.decide`)."""
        return self._pending.decide(change_id, approver, approve, comment)

    def apply_due(self) -> int:
        """Apply every scheduled change whose time has come (the background job); returns how many were tried."""
        return self._pending.apply_due()

    # --- preview -----------------------------------------------------------------------------------------

    def preview(
        self,
        org_id: str,
        edit: Edit,
        checks: Sequence[Check] = (),
        at: float | None = None,
        rules: Mapping[str, Any] | None = None,
        effective: float | None = None,
    ) -> Preview:
        """What the edit would do, nothing stored (see `Previewer.preview`)."""
        return self._previewer.preview(org_id, edit, checks, at, rules, effective)
