"""What a change would do, nothing stored: who gains and loses which permissions, whose approver chain changes,
which separation-of-duties conflicts and other problems it brings, and given checks decided under the current and
the proposed policy. It previews the proposal `plan` makes, the same one the writer would store."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType
from sqlalchemy.orm import Session, sessionmaker

from dutyline.engines import impact
from dutyline.engines.compiler import CompiledOrg, compile_org
from dutyline.engines.decision import Check
from dutyline.engines.impact import ChainChange, RuleFieldChange
from dutyline.engines.queries import HeldPermission
from dutyline.engines.rulehost import RuleBackend, new_backend
from dutyline.engines.rules import CompiledRules, compile_rules
from dutyline.errors import Invalid, Issue, IssueCode
from dutyline.orgmodel.diff import ORG_COLLECTIONS, PACK_COLLECTIONS, summarise
from dutyline.rulemodel.document import RulePack
from dutyline.services.editing.edits import REQUEST, Edit, EditKind, describe, plan
from dutyline.services.editing.validation import body_lines, checked, draft_packs, organisation_of
from dutyline.services.editing.writer import Writer, read_current
from dutyline.services.policies import PolicyService
from dutyline.services.shapes import Shape
from dutyline.services.verdicts import VerdictView, verdict_view
from dutyline.store import rule_packs as pack_store

log = logging.getLogger("dutyline.editing")


_View = Shape


class ChangedIds(_View):
    added: list[str]
    removed: list[str]
    changed: list[str]


# {kind: ChangedIds} for each collection, and `fields`: the other top-level keys that changed (`orgmodel.diff`)
Summary = dict[str, ChangedIds | list[str]]


class PermissionChange(_View):
    person: str
    gained: list[HeldPermission]
    lost: list[HeldPermission]


class TimedPermissionChange(_View):
    """A permission someone gains or loses under the change, from `since` until `until` (None: from then on)."""

    person: str
    change: Literal["gained", "lost"]
    permission: HeldPermission
    since: str
    until: str | None


class LimitChange(_View):
    """A limit that binds someone differently under the change: the most they may do without approval, before
    and after (None: no limit), from `since` until `until`."""

    person: str
    rule: str
    before: float | None
    after: float | None
    since: str
    until: str | None


class CheckCompared(_View):
    current: VerdictView
    proposed: VerdictView
    changed: bool


class Preview(_View):
    """What a proposed change would do (nothing stored). An invalid proposal has its `issues` and nothing else;
    a valid one the permissions people gain and lose, changed approver chains and the checks decided both ways."""

    organisation: str
    current_version: int
    target: str
    summary: Summary
    valid: bool
    issues: list[Issue]
    separation_of_duties: list[Issue]
    at: float | UnsetType = UNSET
    note: str | UnsetType = UNSET
    # the moments previewed at: `at` (or the effective date), then each window start and end after it
    moments: list[str] | UnsetType = UNSET
    timeline: list[TimedPermissionChange] | UnsetType = UNSET  # gains and losses over those moments
    limits: list[LimitChange] | UnsetType = UNSET
    rule_changes: list[RuleFieldChange] | UnsetType = UNSET  # a rule pack change, field by field
    permissions: list[PermissionChange] | UnsetType = UNSET  # at `at`
    approver_chains: list[ChainChange] | UnsetType = UNSET
    checks: list[CheckCompared] | UnsetType = UNSET


class Previewer:
    def __init__(self, sessions: sessionmaker[Session], policies: PolicyService, writer: Writer) -> None:
        self._sessions = sessions
        self._policies = policies
        self._writer = writer

    def preview(
        self,
        org_id: str,
        edit: Edit,
        checks: Sequence[Check] = (),
        at: float | None = None,
        rules: Mapping[str, Any] | None = None,
        effective: float | None = None,
    ) -> Preview:
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
            now = read_current(session, org_id, edit)
            stored = {p.name: p.pack for p in pack_store.current(session, org_id) if p.pack is not None}
        before = self._writer.compiled(now)
        proposal = plan(now, edit)
        if proposal.kind is EditKind.RULE_PACK:
            data = proposal.pack
            if data is not None and not isinstance(data, dict):  # a merge patch that is not an object replaces the pack
                raise Invalid(
                    f"{describe(edit.target)} must be an object", [Issue(REQUEST, 0, "", "expected an object")]
                )
            summary = summarise(now.value, data, PACK_COLLECTIONS)
            try:
                drafts = draft_packs(
                    stored, {edit.ident: data}, organisation_of(now.document), org_id, body_lines(edit)
                )
            except Invalid as exc:
                return Preview(
                    organisation=org_id,
                    current_version=now.version,
                    target=edit.target,
                    summary=summary,
                    valid=False,
                    issues=list(exc.issues),
                    separation_of_duties=[],
                )
            ahead = impact.moments(before, before, moment, effective)
            return Preview(
                organisation=org_id,
                current_version=now.version,
                target=edit.target,
                summary=summary,
                valid=True,
                issues=[],
                separation_of_duties=[],
                at=moment,
                note="rule pack changes do not change duty permissions",
                moments=[_iso(m) for m in ahead],
                rule_changes=impact.rule_changes(stored.get(edit.ident), drafts.get(edit.ident), before),
                limits=_limits(
                    impact.limit_timeline(
                        before, before, self._rules_of(stored, before), self._rules_of(drafts, before), ahead
                    )
                ),
                checks=self._checks(org_id, before, before, stored, drafts, checks),
            )
        proposed = proposal.document
        summary = summarise(now.document, proposed, ORG_COLLECTIONS)
        after: CompiledOrg | None = None
        drafts = stored
        warnings: list[Issue] = []
        if proposed is not None:
            try:
                parsed = checked(proposed, edit)
                drafts = draft_packs(stored, rules or {}, parsed.organisation, org_id, None)
            except Invalid as exc:
                return Preview(
                    organisation=org_id,
                    current_version=now.version,
                    target=edit.target,
                    summary=summary,
                    valid=False,
                    issues=list(exc.issues),
                    separation_of_duties=[i for i in exc.issues if i.code == IssueCode.SOD_CONFLICT],
                )
            warnings = list(parsed.warnings)
            after = compile_org(parsed.organisation, 0)
        ahead = impact.moments(before, after, moment, effective)
        before_rules = self._rules_of(stored, before)
        after_rules = self._rules_of(drafts, after) if after is not None else None
        return Preview(
            organisation=org_id,
            current_version=now.version,
            target=edit.target,
            summary=summary,
            valid=True,
            issues=warnings,
            separation_of_duties=[],
            at=moment,
            moments=[_iso(m) for m in ahead],
            timeline=_timeline(impact.permission_timeline(before, after, ahead)),
            limits=_limits(impact.limit_timeline(before, after, before_rules, after_rules, ahead)),
            permissions=[
                PermissionChange(c.person, _held(c.gained), _held(c.lost))
                for c in impact.permission_changes(before, after, moment)
            ],
            approver_chains=impact.chain_changes(before, after),
            checks=self._checks(org_id, before, after, stored, drafts, checks),
        )

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
    ) -> list[CheckCompared]:
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
                old = impact.verdict_of(before, now_rules, now_host, check)
                new = impact.verdict_of(after, new_rules, new_host, check)
                out.append(CheckCompared(verdict_view(old), verdict_view(new), old.outcome != new.outcome))
            return out
        finally:
            for host in hosts:
                host.close()


def _iso(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat()


def _held(permissions: Sequence[Mapping[str, Any]]) -> list[HeldPermission]:
    return [msgspec.convert(p, HeldPermission) for p in permissions]


def _timeline(changes: list[impact.TimedChange]) -> list[TimedPermissionChange]:
    return [
        TimedPermissionChange(
            c.person,
            "gained" if c.change == "gained" else "lost",
            msgspec.convert(c.permission, HeldPermission),
            _iso(c.since),
            _iso(c.until) if c.until is not None else None,
        )
        for c in changes
    ]


def _limits(changes: list[impact.LimitChange]) -> list[LimitChange]:
    return [
        LimitChange(c.person, c.rule, c.before, c.after, _iso(c.since), _iso(c.until) if c.until is not None else None)
        for c in changes
    ]


def _hosted(rules: CompiledRules, hosts: list[RuleBackend]) -> tuple[CompiledRules, RuleBackend]:
    """`rules` loaded in a new, temporary rule host (added to `hosts`, for the caller to close)."""
    host = new_backend()
    hosts.append(host)
    try:
        host.load(dict(rules.rulesets))
    except ValueError as exc:  # validation compiles every condition; this is a backstop
        raise Invalid(f"rules: {exc}", [Issue(REQUEST, 0, "rules", str(exc))]) from None
    return rules, host
