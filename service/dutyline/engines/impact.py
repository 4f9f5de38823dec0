"""What a proposed change to an organisation would do: who gains or loses which permissions, whose approver
chain (reporting line) changes, and how given checks would be decided before and after (by the duty model
alone, or with business rules too). Pure: compiled organisations and rules in, plain data out."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import msgspec

from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.decision import Check, Decision, decide
from dutyline.engines.queries import HeldPermission, permissions_of
from dutyline.engines.rulehost import RuleHost
from dutyline.engines.rules import NO_FACTS, CompiledRules, Verdict, apply_rules

log = logging.getLogger("dutyline.impact")


@dataclass(frozen=True, slots=True)
class PermissionChange:
    person: str
    gained: tuple[dict[str, Any], ...]
    lost: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class ChainChange:
    post: str
    before: tuple[str, ...]  # the superior posts, nearest first (() : the post is not there)
    after: tuple[str, ...]


def _held(org: CompiledOrg | None, person: str, at: float) -> dict[tuple[str, str], HeldPermission]:
    if org is None or person not in org.assignments:
        return {}
    return {(h.resource, h.action): h for h in permissions_of(org, person, at)}


def _shown(held: HeldPermission) -> dict[str, Any]:
    return {
        "resource": held.resource,
        "action": held.action,
        "posts": list(held.posts),
        "duties": list(held.duties),
        "conditional": held.conditional,
    }


def permission_changes(before: CompiledOrg | None, after: CompiledOrg | None, at: float) -> list[PermissionChange]:
    """For every person in either version, the permissions held at `at` only after, and only before.

    A permission that stays but turns conditional (or unconditional) counts as lost and gained."""
    people = sorted(set(before.assignments if before else ()) | set(after.assignments if after else ()))
    out = []
    for person in people:
        old, new = _held(before, person, at), _held(after, person, at)
        gained = [_shown(h) for k, h in sorted(new.items()) if k not in old or old[k].conditional != h.conditional]
        lost = [_shown(h) for k, h in sorted(old.items()) if k not in new or new[k].conditional != h.conditional]
        if gained or lost:
            out.append(PermissionChange(person, tuple(gained), tuple(lost)))
    return out


def _chain(org: CompiledOrg | None, post: str) -> tuple[str, ...]:
    if org is None or post not in org.superiors:
        return ()
    chain: list[str] = []
    current = org.superiors.get(post)
    while current is not None and current not in chain and current != post:
        chain.append(current)
        current = org.superiors.get(current)
    return tuple(chain)


def chain_changes(before: CompiledOrg | None, after: CompiledOrg | None) -> list[ChainChange]:
    """Posts whose line of superiors (the approver chain of their requests) differs between the versions."""
    posts = sorted(set(before.superiors if before else ()) | set(after.superiors if after else ()))
    out = []
    for post in posts:
        old, new = _chain(before, post), _chain(after, post)
        if old != new:
            out.append(ChainChange(post, old, new))
    return out


def verdict_of(org: CompiledOrg | None, rules: CompiledRules | None, host: RuleHost, check: Check) -> Verdict:
    """A check decided by the duty model and then the business rules (`rules`, loaded in `host`), as
    `DecisionService.answer` decides it but without facts (usage totals, approval history): a preview compares
    policies, not ledgers. Fails closed, as decisions do."""
    if org is None:
        return Verdict("deny", Decision("deny", "unknown_organisation"))
    try:
        return apply_rules(host, org, rules, check, decide(org, check), NO_FACTS)
    except Exception:  # a broken draft must not break the preview: the check is a deny, as a decision would be
        log.exception("preview decision failed in %s for %s %s %s", org.id, check.subject_id, check.resource_type, check.action)
        return Verdict("deny", Decision("deny", "internal_error", version=org.version))


def verdict_view(verdict: Verdict) -> dict[str, Any]:
    """A verdict as the preview shows it: the decision and code (as `/v1/check` gives them), the rules that
    fired and the approver chain."""
    return {
        "decision": verdict.outcome,
        "code": verdict.code,
        "rules": [
            {"rule": h.rule, "kind": h.kind, "effect": h.effect, "message": msgspec.to_builtins(h.message), "detail": dict(h.detail)}
            for h in verdict.hits
        ],
        "approvers": [{"post": s.post, "people": list(s.people)} for s in verdict.approvers],
    }
