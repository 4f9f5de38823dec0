"""Questions about the whole policy: what may a person do, who may do something, who is above a post."""

from __future__ import annotations

from dataclasses import dataclass, replace

from dutyline.engines.compiler import AssignmentWindow, CompiledOrg, Key
from dutyline.engines.decision import Check, decide


@dataclass(frozen=True, slots=True)
class HeldPermission:
    resource: str
    action: str
    posts: tuple[str, ...]
    duties: tuple[str, ...]  # "<owner> <number>"
    conditional: bool  # some grant holds only under a condition: the answer depends on the request


def permissions_of(org: CompiledOrg, person: str, at: float) -> list[HeldPermission]:
    """Everything a person may do at `at`, from their active assignments, minus what a deny forbids.

    A permission whose grants are all conditional, or that a conditional deny may remove, is listed as
    conditional: only a check with the request's attributes can settle it.
    """
    active = [a for a in org.assignments.get(person, ()) if a.active(at)]
    allow: dict[Key, list[tuple[str, str, bool]]] = {}
    deny: dict[Key, bool] = {}  # key → some deny is unconditional
    for assignment in active:
        permissions = org.posts[assignment.post]
        for key, grants in permissions.allow.items():
            for grant in grants:
                allow.setdefault(key, []).append(
                    (assignment.post, f"{grant.duty.owner} {grant.duty.number}", grant.condition is not None)
                )
        for key, grants in permissions.deny.items():
            unconditional = any(g.condition is None for g in grants)
            deny[key] = deny.get(key, False) or unconditional
    out = []
    for (resource, action), held in sorted(allow.items()):
        if deny.get((resource, action)):
            continue
        conditional = all(c for _, _, c in held) or (resource, action) in deny
        posts = tuple(dict.fromkeys(p for p, _, _ in held))
        duties = tuple(dict.fromkeys(d for _, d, _ in held))
        out.append(HeldPermission(resource, action, posts, duties, conditional))
    return out


def posts_allowed(org: CompiledOrg, resource: str, action: str) -> list[str]:
    """Posts whose duties (inherited included) allow the action with no condition and no deny."""
    check = Check("", resource, action, 0.0, subject_type="post")
    return [p for p in org.grantees.get((resource, action), ()) if decide(org, replace(check, subject_id=p)).allowed]


@dataclass(frozen=True, slots=True)
class Holder:
    person: str
    assignment: AssignmentWindow


@dataclass(frozen=True, slots=True)
class LineStep:
    post: str
    holders: tuple[Holder, ...]  # active at the moment asked, acting holders included


def reporting_line(org: CompiledOrg, post: str, at: float) -> list[LineStep]:
    """The chain of superior posts above `post` (直接上级, then theirs …), each with its holders at `at`."""
    chain: list[LineStep] = []
    seen = {post}
    current = org.superiors.get(post)
    while current is not None and current not in seen:
        seen.add(current)
        chain.append(LineStep(current, holders_of(org, current, at)))
        current = org.superiors.get(current)
    return chain


def holders_of(org: CompiledOrg, post: str, at: float) -> tuple[Holder, ...]:
    """People holding `post` at `at`, acting holders included."""
    out = []
    for person in org.holders.get(post, ()):
        for assignment in org.assignments[person]:
            if assignment.post == post and assignment.active(at):
                out.append(Holder(person, assignment))
    return tuple(out)
