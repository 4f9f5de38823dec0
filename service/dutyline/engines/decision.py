"""The decision: may this subject do this action on this resource in this organisation, at this instant?

Pure and in memory: a few dictionary look-ups in a `CompiledOrg`, no I/O, no scanning of policy lines.
Semantics are those of `policies/casbin/model.conf` (default deny, a deny beats an allow), plus the
catalogue check (an action the resource type does not have is never allowed) and assignment windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dutyline.engines.compiler import AssignmentWindow, CompiledOrg, Grant

Outcome = Literal["allow", "deny"]


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

    @property
    def allowed(self) -> bool:
        return self.outcome == "allow"


def decide_person(org: CompiledOrg, person: str, resource: str, action: str, at: float) -> Decision:
    """Decide for a person: the union of what their assignments active at `at` grant, denies first."""
    actions = org.actions.get(resource)
    if actions is None:
        return Decision("deny", "unknown_resource", version=org.version)
    if action not in actions:
        return Decision("deny", "unknown_action", version=org.version)
    assignments = org.assignments.get(person)
    if assignments is None:
        return Decision("deny", "unknown_subject", version=org.version)
    key = (resource, action)
    allowed: list[Basis] = []
    denied: list[Basis] = []
    any_active = False
    for assignment in assignments:
        if not assignment.active(at):
            continue
        any_active = True
        permissions = org.posts[assignment.post]
        for grant in permissions.deny.get(key, ()):
            denied.append(Basis(assignment.post, assignment, grant))
        for grant in permissions.allow.get(key, ()):
            allowed.append(Basis(assignment.post, assignment, grant))
    if denied:
        return Decision("deny", "denied_by_duty", tuple(allowed), tuple(denied), org.version)
    if allowed:
        return Decision("allow", "granted", tuple(allowed), (), org.version)
    return Decision("deny", "no_grant" if any_active else "no_active_assignment", version=org.version)


def decide_post(org: CompiledOrg, post: str, resource: str, action: str) -> Decision:
    """Decide for a post as such (a subject of type post): what its duties, inherited ones included, allow."""
    actions = org.actions.get(resource)
    if actions is None:
        return Decision("deny", "unknown_resource", version=org.version)
    if action not in actions:
        return Decision("deny", "unknown_action", version=org.version)
    permissions = org.posts.get(post)
    if permissions is None:
        return Decision("deny", "unknown_subject", version=org.version)
    key = (resource, action)
    denied = tuple(Basis(post, None, g) for g in permissions.deny.get(key, ()))
    allowed = tuple(Basis(post, None, g) for g in permissions.allow.get(key, ()))
    if denied:
        return Decision("deny", "denied_by_duty", allowed, denied, org.version)
    if allowed:
        return Decision("allow", "granted", allowed, (), org.version)
    return Decision("deny", "no_grant", version=org.version)
