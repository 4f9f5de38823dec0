"""An organisation's history: its versions, what each changed (a unified diff of the YAML exports and an
entity-by-entity summary), the document in force at a moment, and compiled past versions (organisation and
rule packs) for point-in-time checks (`as_of`), kept in small LRU caches."""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import difflib
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from sqlalchemy.orm import Session, sessionmaker

from dutyline.engines.compiler import CompiledOrg, compile_org
from dutyline.engines.explain import Reason, from_logged, logged_approval
from dutyline.engines.rulehost import new_backend
from dutyline.engines.rules import compile_rules
from dutyline.errors import Invalid, Issue, NotFound, Unreadable
from dutyline.orgmodel.diff import ORG_COLLECTIONS, PACK_COLLECTIONS, summarise
from dutyline.services.decisions import PastPolicy
from dutyline.services.editing import Edit, Summary
from dutyline.services.orgs import pack_yaml, to_yaml
from dutyline.services.shapes import Shape, Texts
from dutyline.store import history
from dutyline.store import orgs as org_store
from dutyline.store import rule_packs as pack_store
from dutyline.store.tables import DecisionLogRow, OrgVersionRow

log = logging.getLogger("dutyline.versions")


class VersionInfo(Shape, kw_only=True):
    """One entry of the history: `version` the global policy version it made (its id), `revision` the revision of
    its document (the organisation's, or rule pack `name`'s own counter) it made."""

    version: int
    kind: Literal["org", "rules"]
    name: str | None
    deleted: bool
    author: str
    comment: str
    created_at: str
    revision: int


class Version(VersionInfo, kw_only=True):
    """A version and its document, as stored (plain data): the organisation's or a rule pack's (None: a deletion)."""

    document: Any


class VersionDiff(VersionInfo, kw_only=True):
    """What a version changed: a unified diff of the YAML exports, and the ids added, removed and changed per
    kind of entity (`fields`: the other top-level keys that changed)."""

    previous_version: int | None
    diff: str
    summary: Summary


class DocumentAsOf(VersionInfo, kw_only=True):
    """The organisation document in force at `at`, as stored (plain data)."""

    at: str
    document: Any


class OrgSummary(Shape):
    """`revision`: the document's own counter (one a save); `version`: the policy version that made that revision
    (the id of its history entry); the global policy version is `policy_version` of the list."""

    id: str
    name: Texts
    version: int
    revision: int


class Orgs(Shape):
    items: list[OrgSummary]
    policy_version: int  # the global policy version now (what /v1/check answers carry)


def _info(row: history.VersionInfo | OrgVersionRow) -> VersionInfo:
    deleted = row.deleted if isinstance(row, history.VersionInfo) else row.document is None
    return VersionInfo(
        version=row.version,
        kind="org" if row.kind == "org" else "rules",
        name=row.name or None,
        deleted=deleted,
        author=row.author,
        comment=row.comment,
        created_at=row.created_at.isoformat(),
        revision=row.revision,
    )


def _yaml(row: OrgVersionRow | None) -> str:
    """The YAML export of a stored version ("" for none or a deletion)."""
    if row is None or row.document is None:
        return ""
    if row.kind == "org":
        try:
            return to_yaml(org_store.decode(row.document, row.org_id, row.version))
        except Unreadable:  # written by another release: shown as stored
            pass
    return pack_yaml(json.loads(row.document))


def _plain(row: OrgVersionRow | None) -> Any:
    return json.loads(row.document) if row is not None and row.document is not None else None


class _Hosted:
    """A cached past policy and how many decisions are using its rule host right now."""

    __slots__ = ("evicted", "policy", "users")

    def __init__(self, policy: PastPolicy) -> None:
        self.policy = policy
        self.users = 0
        self.evicted = False


# (organisation version, ((pack name, pack version), ...)): what a past policy was compiled from
_PolicyKey = tuple[int, tuple[tuple[str, int], ...]]


@dataclass(frozen=True, slots=True)
class Logged:
    reasons: list[Reason]
    rules: list[str]  # the rules that fired, in the order the answer gave them
    approval: dict[str, Any] | None  # {id, approved_by, approved_at, uses, uses_left, expires_at}, as then


class Versions:
    """History reads, and past versions compiled for `as_of` checks.

    Past rules are loaded in a rule host of their own per cached policy, never in the process's host: its
    `load` replaces the whole set it holds, so past rules loaded there would unload the current ones. Hosts share
    the engine (content-addressed ruleset names each get their own registration), and each costs ≈180 KB per
    distinct rule condition (8 or fewer in each seed organisation), so at most `cache_size` are kept. An evicted
    host is closed (its rulesets unregistered) as soon as no decision is using it.
    """

    def __init__(self, sessions: sessionmaker[Session], cache_size: int = 16) -> None:
        self._sessions = sessions
        self._cache: collections.OrderedDict[int, CompiledOrg] = collections.OrderedDict()
        self._policies: collections.OrderedDict[_PolicyKey, _Hosted] = collections.OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def organisations(self, readable: Callable[[str], bool]) -> Orgs:
        """The organisations stored now (not deleted) that `readable` admits, and the global policy version."""
        with self._sessions() as session:
            found, policy_version = history.organisations(session), org_store.latest_version(session)
        items = [
            OrgSummary(org_id, Texts(zh, en), version, revision)
            for org_id, zh, en, version, deleted, revision in found
            if not deleted and readable(org_id)
        ]
        return Orgs(items, policy_version)

    def history(self, org_id: str, limit: int = 100, before: int | None = None) -> list[VersionInfo]:
        with self._sessions() as session:
            rows = history.versions(session, org_id, limit, before)
        if not rows and before is None:
            raise NotFound(f"organisation {org_id!r} not found")
        return [_info(r) for r in rows]

    def get(self, org_id: str, number: int) -> Version:
        with self._sessions() as session:
            row = self._row(session, org_id, number)
        return Version(**msgspec.structs.asdict(_info(row)), document=_plain(row))

    def diff(self, org_id: str, number: int) -> VersionDiff:
        """What version `number` changed against the version of the same document before it."""
        with self._sessions() as session:
            row = self._row(session, org_id, number)
            before = history.previous(session, row)
        old_text, new_text = _yaml(before), _yaml(row)
        label = org_id if row.kind == "org" else f"{org_id}/rules/{row.name}"
        unified = "".join(
            difflib.unified_diff(
                old_text.splitlines(keepends=True),
                new_text.splitlines(keepends=True),
                fromfile=f"{label}@{before.version}" if before is not None else "/dev/null",
                tofile=f"{label}@{row.version}",
            )
        )
        collections_ = ORG_COLLECTIONS if row.kind == "org" else PACK_COLLECTIONS
        return VersionDiff(
            **msgspec.structs.asdict(_info(row)),
            previous_version=before.version if before is not None else None,
            diff=unified,
            summary=summarise(_plain(before), _plain(row), collections_),
        )

    def restore_edit(self, org_id: str, number: int) -> Edit:
        """The edit that makes a new version equal to version `number` (of the organisation or its rule pack)."""
        with self._sessions() as session:
            row = self._row(session, org_id, number)
            if row.document is None:
                raise Invalid(
                    f"version {number} deleted the {'organisation' if row.kind == 'org' else 'rule pack'}; there is nothing to restore",
                    [Issue("<request>", 0, "version", "a deletion")],
                )
            # (a version imported from a file is restored with its text: an export gives that file again)
            if row.kind == "org":
                return Edit("org", "put", json.loads(row.document), text=row.source)
            latest = history.latest_pack(session, org_id, row.name)
            exists = latest is not None and latest.document is not None
            return Edit(f"rules/{row.name}", "put" if exists else "create", json.loads(row.document), text=row.source)

    def as_of(self, org_id: str, at: dt.datetime) -> DocumentAsOf:
        """The organisation document in force at `at`."""
        with self._sessions() as session:
            row = history.effective_at(session, org_id, at)
        if row is None or row.document is None:
            raise NotFound(f"organisation {org_id!r} did not exist at {at.isoformat()}")
        return DocumentAsOf(**msgspec.structs.asdict(_info(row)), at=at.isoformat(), document=_plain(row))

    def compiled_at(self, org_id: str, at: dt.datetime) -> CompiledOrg | None:
        """The organisation as in force at `at`, compiled (None if it did not exist then); LRU-cached by version."""
        with self._sessions() as session:
            row = history.effective_at(session, org_id, at)
        if row is None or row.document is None:
            return None
        return self._compiled(row)

    @contextlib.contextmanager
    def policy_at(self, org_id: str, at: dt.datetime) -> Iterator[PastPolicy | None]:
        """The organisation and its rule packs as in force at `at`, compiled, their rules loaded in a rule host
        (None if the organisation did not exist then). LRU-cached by the versions it is made of; the host stays
        loaded until the `with` block ends even if the entry is evicted meanwhile."""
        with self._sessions() as session:
            row = history.effective_at(session, org_id, at)
            packs = history.packs_effective_at(session, org_id, at)
        if row is None or row.document is None:
            yield None
            return
        key = (row.version, tuple((pack.name, pack.version) for pack in packs))
        with self._lock:
            entry = self._policies.get(key)
            if entry is not None:
                entry.users += 1
                self._policies.move_to_end(key)
        if entry is None:
            entry = self._hosted(key, self._compiled(row), packs)
        try:
            yield entry.policy
        finally:
            with self._lock:
                entry.users -= 1
                done = entry.evicted and entry.users == 0
            if done and entry.policy.host is not None:
                entry.policy.host.close()

    def logged_reasons(self, rows: list[DecisionLogRow]) -> list[list[Reason]]:
        """The reasons of logged decisions, rendered from the facts kept against the organisation as it was at each
        one's policy version (compiled once per version, LRU-cached)."""
        return [entry.reasons for entry in self.logged(rows)]

    def logged(self, rows: list[DecisionLogRow]) -> list[Logged]:
        """What the log read back says of each decision: its reasons (rendered as `logged_reasons` does), the rules
        that fired, and the approval it was allowed through."""
        orgs: dict[tuple[str, int], CompiledOrg | None] = {}
        out = []
        for row in rows:
            key = (row.organisation or "", row.policy_version)
            if key not in orgs:
                with self._sessions() as session:
                    found = history.org_at_version(session, *key) if row.organisation else None
                try:
                    orgs[key] = self._compiled(found) if found is not None and found.document is not None else None
                except Unreadable:  # that version cannot be read by this release: the facts are given as kept
                    orgs[key] = None
            stored = json.loads(row.reasons)
            reasons = from_logged(orgs[key], stored, row.subject, row.resource_type, row.action)
            rules = list(dict.fromkeys(r.rule for r in reasons if r.rule))
            out.append(Logged(reasons, rules, logged_approval(stored)))
        return out

    def close(self) -> None:
        """Unload every cached past policy's rules (those in use are unloaded when their decision ends)."""
        with self._lock:
            entries = list(self._policies.values())
            self._policies.clear()
            idle = [e for e in entries if e.users == 0]
            for entry in entries:
                entry.evicted = True
        for entry in idle:
            if entry.policy.host is not None:
                entry.policy.host.close()

    def _compiled(self, row: OrgVersionRow) -> CompiledOrg:
        assert row.document is not None
        with self._lock:
            cached = self._cache.get(row.version)
            if cached is not None:
                self._cache.move_to_end(row.version)
                return cached
        compiled = compile_org(org_store.decode(row.document, row.org_id, row.version), row.version)
        with self._lock:
            self._cache[row.version] = compiled
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return compiled

    def _hosted(self, key: _PolicyKey, org: CompiledOrg, packs: list[OrgVersionRow]) -> _Hosted:
        """Compile and load a past policy, cache it and take one use of it (another thread may have cached the
        same one meanwhile: then that one is used and ours unloaded)."""
        versions = {p.name: p.version for p in packs}
        host = new_backend()
        try:
            documents = [
                pack_store.decode(p.document, p.org_id, p.name, p.version) for p in packs if p.document is not None
            ]
            rules = compile_rules(documents, org)
            host.load(rules.rulesets)
        except Exception as exc:  # decided as an internal error (a deny); not cached, so a fix takes effect
            log.exception("the rule packs of %s in force at version %s cannot be used", org.id, org.version)
            host.close()
            broken = _Hosted(PastPolicy(org, None, None, versions, f"rule packs {versions} cannot be used: {exc}"))
            broken.users += 1
            return broken
        entry = _Hosted(PastPolicy(org, rules, host, versions))
        unload = [host]
        with self._lock:
            existing = self._policies.get(key)
            if existing is not None:
                entry = existing
                self._policies.move_to_end(key)
            else:
                unload.clear()
                self._policies[key] = entry
            entry.users += 1
            while len(self._policies) > self._cache_size:
                _, old = self._policies.popitem(last=False)
                old.evicted = True
                if old.users == 0 and old.policy.host is not None:
                    unload.append(old.policy.host)
        for idle in unload:
            idle.close()
        return entry

    def _row(self, session: Session, org_id: str, number: int) -> OrgVersionRow:
        row = history.version(session, org_id, number)
        if row is None:
            raise NotFound(f"version {number} of {org_id!r} not found")
        return row
