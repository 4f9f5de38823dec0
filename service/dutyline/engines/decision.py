"""The decision: may this subject do this action on this resource in this organisation, at this instant?

Pure and in memory: a few dictionary look-ups in a `CompiledOrg`, no I/O, no scanning of policy lines.
Semantics are those of `policies/casbin/model.conf` (default deny, a deny beats an allow), plus the
catalogue check (an action the resource type does not have is never allowed), assignment windows, and
attribute conditions on permissions (evaluated only for grants that carry one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from dutyline.engines.compiler import AssignmentWindow, CompiledOrg, Grant

Outcome = Literal["allow", "deny"]
_EMPTY: Mapping[str, Any] = {}


@dataclass(frozen=True, slots=True)
class Check:
    """One question, with everything a decision may read."""

    subject_id: str
    resource_type: str
    action: str
    at: float
    subject_type: Literal["person", "post"] = "person"
    resource_id: str | None = None
    subject_properties: Mapping[str, Any] | None = None
    resource_properties: Mapping[str, Any] | None = None
    context: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Basis:
    """One grant or deny that applied: through which assignment (or the post itself) and which duty."""

    post: str
    assignment: AssignmentWindow | None
    grant: Grant


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    code: str  # machine-readable reason: granted, denied_by_duty, no_grant, unknown_* ...
    allowed_by: tuple[Basis, ...] = ()
    denied_by: tuple[Basis, ...] = ()
    version: int = 0
    subject: str = ""  # the person or post id the subject resolved to

    @property
    def allowed(self) -> bool:
        return self.outcome == "allow"


def decide(org: CompiledOrg, check: Check) -> Decision:
    """Decide one check against one compiled organisation."""
    actions = org.actions.get(check.resource_type)
    if actions is None:
        return Decision("deny", "unknown_resource", version=org.version)
    if check.action not in actions:
        return Decision("deny", "unknown_action", version=org.version)
    key = (check.resource_type, check.action)
    if check.subject_type == "post":
        permissions = org.posts.get(check.subject_id)
        if permissions is None:
            return Decision("deny", "unknown_subject", version=org.version)
        bases: list[tuple[str, AssignmentWindow | None]] = [(check.subject_id, None)]
        person = None
    else:
        person = org.identities.get(check.subject_id)
        if person is None:
            return Decision("deny", "unknown_subject", version=org.version)
        bases = [(a.post, a) for a in org.assignments[person] if a.active(check.at)]
        if not bases:
            return Decision("deny", "no_active_assignment", version=org.version, subject=person)
    subject = person or check.subject_id
    environment: list[Mapping[str, Any]] = []  # built on first use: most grants carry no condition

    def holds(grant: Grant) -> bool:
        if grant.condition is None:
            return True
        if not environment:
            environment.append(_environment(org, check, subject, [post for post, _ in bases]))
        return grant.condition.evaluate(environment[0])

    allowed: list[Basis] = []
    denied: list[Basis] = []
    for post, assignment in bases:
        permissions = org.posts[post]
        for grant in permissions.deny.get(key, ()):
            if holds(grant):
                denied.append(Basis(post, assignment, grant))
        for grant in permissions.allow.get(key, ()):
            if holds(grant):
                allowed.append(Basis(post, assignment, grant))
    if denied:
        return Decision("deny", "denied_by_duty", tuple(allowed), tuple(denied), org.version, subject)
    if allowed:
        return Decision("allow", "granted", tuple(allowed), (), org.version, subject)
    return Decision("deny", "no_grant", version=org.version, subject=subject)


def _environment(org: CompiledOrg, check: Check, subject: str, posts: list[str]) -> Mapping[str, Any]:
    """What conditions read. Stored attributes win over the caller's properties, which only fill gaps:
    the organisation's directory is the authority on who a person is and what a known resource is."""
    subject_attrs = {**(check.subject_properties or _EMPTY), **org.person_attributes.get(subject, _EMPTY)}
    subject_attrs["id"] = subject
    subject_attrs["posts"] = posts
    subject_attrs["departments"] = list(
        dict.fromkeys(org.post_departments[p] for p in posts if p in org.post_departments)
    )
    stored = org.instances.get((check.resource_type, check.resource_id or ""), _EMPTY)
    resource_attrs = {**(check.resource_properties or _EMPTY), **stored}
    resource_attrs["id"] = check.resource_id
    resource_attrs["type"] = check.resource_type
    return {
        "subject": subject_attrs,
        "resource": resource_attrs,
        "action": {"name": check.action},
        "context": check.context or _EMPTY,
    }


def decide_person(org: CompiledOrg, person: str, resource: str, action: str, at: float) -> Decision:
    """Decide for a person (by any of their identities) at an instant, with no attributes."""
    return decide(org, Check(person, resource, action, at))


def decide_post(org: CompiledOrg, post: str, resource: str, action: str) -> Decision:
    """Decide for a post as such: what its duties, inherited ones included, allow."""
    return decide(org, Check(post, resource, action, 0.0, subject_type="post"))
