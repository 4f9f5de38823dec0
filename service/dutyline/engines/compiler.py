"""Compiling an organisation document into the fixed artefact that decisions read.

Two outputs from one walk over the document:
- the Casbin policy (`policy_lines`): the reference semantics, printable with `dutyline compile`;
- the decision index (`CompiledOrg`): per post, the permissions it has after inheritance, group and
  department-head expansion, each with the duties that grant it; per person, the assignments with their
  windows as instants. A decision is then a handful of dictionary look-ups, whatever the policy's size.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from dutyline.expressions import Expression, parse
from dutyline.orgmodel.document import Duty, Names, Organisation, Permission, Person
from dutyline.orgmodel.windows import instant, zone

Effect = Literal["allow", "deny"]
COMMON = "common"


@dataclass(frozen=True, slots=True)
class DutyInfo:
    """A duty as the explanation shows it: whose list it is on, its number and its text."""

    owner: str  # "post:<id>", "department:<id>" or "common"
    number: str
    text: str
    en: str


@dataclass(frozen=True, slots=True)
class Grant:
    """Why a post has a permission: the duty, and the post that carries it (itself or one it inherits)."""

    effect: Effect
    via_post: str
    duty: DutyInfo
    condition: Expression | None = None


@dataclass(frozen=True, slots=True)
class AssignmentWindow:
    """One assignment of a person to a post, with its window as epoch seconds (None = open)."""

    post: str
    kind: Literal["primary", "concurrent", "acting"]
    start: float | None
    end: float | None
    valid_from: str | None
    valid_to: str | None
    stands_in_for: str | None

    def active(self, at: float) -> bool:
        return (self.start is None or at >= self.start) and (self.end is None or at < self.end)


Key = tuple[str, str]  # (resource type, action)


@dataclass(frozen=True, slots=True)
class PostPermissions:
    """A post's effective permissions: for each (resource type, action), the grants and the denies."""

    allow: dict[Key, tuple[Grant, ...]]
    deny: dict[Key, tuple[Grant, ...]]


@dataclass(slots=True)
class CompiledOrg:
    """Everything a decision in one organisation needs, with no reference back to the document."""

    id: str
    version: int
    document: Organisation
    actions: dict[str, frozenset[str]]  # resource type → its actions (the catalogue check)
    posts: dict[str, PostPermissions]
    assignments: dict[str, tuple[AssignmentWindow, ...]]
    superiors: dict[str, str | None]
    post_departments: dict[str, str] = field(default_factory=dict)
    # Who holds what, for queries: post → people (any window).
    holders: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # (resource type, action) → posts with an allow for it: "who may do X" starts from these.
    grantees: dict[Key, tuple[str, ...]] = field(default_factory=dict)
    # Every id a person is known by (their own id, e-mail, IdP subject …) → the person's id.
    identities: dict[str, str] = field(default_factory=dict)
    # The same, keyed by the identity stripped and case-folded, for comparing parties a caller names (maker,
    # requester, second person); None where two people's identities fold to the same text (ambiguous).
    folded_identities: dict[str, str | None] = field(default_factory=dict)
    person_attributes: dict[str, dict[str, object]] = field(default_factory=dict)
    people_by_id: dict[str, Person] = field(default_factory=dict)  # for names in rendered reasons
    # (resource type, instance id) → the instance's attributes; resource type → its instance ids, sorted.
    instances: dict[Key, dict[str, object]] = field(default_factory=dict)
    instance_ids: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # resource type → its actions in catalogue order (for listing; `actions` is for membership)
    action_order: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Catalogue entry → the resource types it reaches (a type itself; a group its members', transitively).
    group_leaves: dict[str, frozenset[str]] = field(default_factory=dict)
    # "owner#number" → every duty the organisation's grants cite (a logged decision keeps only the reference).
    duties: dict[str, DutyInfo] = field(default_factory=dict)
    # Post and department → its names (zh, en), for rendering reasons without walking the document: explaining a
    # decision reads only the compiled organisation, and writes nothing into it (it is shared between threads).
    post_names: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Each duty a grant cites → how a reason names it, zh ("岗位「…」第 2 条「…」") and en ("duty 2 of post …").
    duty_phrases: dict[DutyInfo, tuple[str, str]] = field(default_factory=dict)


def compile_org(org: Organisation, version: int = 0) -> CompiledOrg:
    """Compile a validated document into its decision index."""
    tz = zone(org.timezone)
    leaves = _group_leaves(org)
    # Per post, its own grants with the (resource type, action) pairs each covers. One Grant per duty
    # permission, shared by every key it covers and every post that inherits it: a 1M-line family makes
    # millions of keys but far fewer grants (compile time and memory).
    own: dict[str, list[tuple[Grant, list[Key]]]] = {p.id: [] for p in org.posts}
    conditions: dict[str, Expression] = {}

    def entries(owner: str, duties: list[Duty]) -> list[tuple[DutyInfo, Effect, Expression | None, list[Key]]]:
        out = []
        for number, duty, permission in _walk(duties):
            condition = None
            if permission.condition is not None:
                condition = conditions.setdefault(permission.condition, parse(permission.condition))
            keys = list(_expand(org, permission, leaves))
            out.append((DutyInfo(owner, number, duty.text, duty.en), permission.effect, condition, keys))
        return out

    def add(post: str, items: list[tuple[DutyInfo, Effect, Expression | None, list[Key]]]) -> None:
        for ref, effect, condition, keys in items:
            own[post].append((Grant(effect, post, ref, condition), keys))

    common = entries(COMMON, org.common_duties)
    for post in org.posts:
        add(post.id, entries(f"post:{post.id}", post.duties))
        add(post.id, common)
    for dept in org.departments:
        if dept.head in own:
            add(dept.head, entries(f"department:{dept.id}", dept.duties))

    inherits = {p.id: list(p.inherits) for p in org.posts}
    posts: dict[str, PostPermissions] = {}
    for post in org.posts:
        allow: dict[Key, list[Grant]] = {}
        deny: dict[Key, list[Grant]] = {}
        for via in _closure(post.id, inherits):
            for grant, keys in own[via]:
                if via != post.id and grant.duty.owner == COMMON:
                    continue  # every post carries the common duties itself; inheriting them again adds nothing
                target = allow if grant.effect == "allow" else deny
                for key in keys:
                    target.setdefault(key, []).append(grant)
        posts[post.id] = PostPermissions(
            {k: tuple(v) for k, v in allow.items()}, {k: tuple(v) for k, v in deny.items()}
        )
    grantees: dict[Key, list[str]] = {}
    for post_id, permissions in posts.items():
        for key in permissions.allow:
            grantees.setdefault(key, []).append(post_id)

    assignments: dict[str, tuple[AssignmentWindow, ...]] = {}
    holders: dict[str, list[str]] = {}
    identities: dict[str, str] = {}
    for person in org.people:
        identities[person.id] = person.id
        for identity in person.identities:
            identities.setdefault(identity, person.id)
        windows = []
        for a in person.assignments:
            windows.append(
                AssignmentWindow(
                    post=a.post,
                    kind=a.kind,
                    start=instant(a.valid_from, tz) if a.valid_from else None,
                    end=instant(a.valid_to, tz, end=True) if a.valid_to else None,
                    valid_from=a.valid_from,
                    valid_to=a.valid_to,
                    stands_in_for=a.stands_in_for,
                )
            )
            holders.setdefault(a.post, [])
            if person.id not in holders[a.post]:
                holders[a.post].append(person.id)
        assignments[person.id] = tuple(windows)

    return CompiledOrg(
        id=org.id,
        version=version,
        document=org,
        actions={r.id: frozenset(r.actions) for r in org.catalogue.resources},
        posts=posts,
        assignments=assignments,
        superiors={p.id: p.reports_to for p in org.posts},
        post_departments={p.id: p.department for p in org.posts},
        holders={k: tuple(v) for k, v in holders.items()},
        grantees={k: tuple(v) for k, v in grantees.items()},
        identities=identities,
        folded_identities=_folded(identities),
        person_attributes={p.id: dict(p.attributes) for p in org.people if p.attributes},
        people_by_id={p.id: p for p in org.people},
        instances={(r.id, i.id): dict(i.attributes) for r in org.catalogue.resources for i in r.instances},
        instance_ids={r.id: tuple(sorted(i.id for i in r.instances)) for r in org.catalogue.resources},
        action_order={r.id: tuple(r.actions) for r in org.catalogue.resources},
        group_leaves=leaves,
        duties=_duty_index(posts),
        post_names={p.id: (p.name.zh, p.name.en) for p in org.posts},
        duty_phrases=_duty_phrases(org, posts),
    )


def _duty_phrases(org: Organisation, posts: Mapping[str, PostPermissions]) -> dict[DutyInfo, tuple[str, str]]:
    departments = {d.id: d.name for d in org.departments}
    post_names = {p.id: p.name for p in org.posts}
    return {duty: duty_phrase(duty, departments, post_names) for duty in _duty_index(posts).values()}


def duty_phrase(duty: DutyInfo, departments: Mapping[str, Names], posts: Mapping[str, Names]) -> tuple[str, str]:
    """How a reason names a duty: zh ("岗位「…」第 2 条「…」") and en ("duty 2 of post …")."""
    kind, _, ident = duty.owner.partition(":")
    if kind == "department" and ident in departments:
        owner_zh, owner_en = f"部门「{departments[ident].zh}」", f"department {departments[ident].en}"
    elif kind == "post":
        name = posts.get(ident)
        owner_zh, owner_en = f"岗位「{name.zh if name else ident}」", f"post {name.en if name else ident}"
    else:
        owner_zh, owner_en = "岗位共同职责", "the duties common to all posts"
    return f"{owner_zh}第 {duty.number} 条「{duty.text}」", f"duty {duty.number} of {owner_en}"


def _duty_index(posts: Mapping[str, PostPermissions]) -> dict[str, DutyInfo]:
    index: dict[str, DutyInfo] = {}
    for permissions in posts.values():
        for grants in (*permissions.allow.values(), *permissions.deny.values()):
            for grant in grants:
                index.setdefault(f"{grant.duty.owner}#{grant.duty.number}", grant.duty)
    return index


def fold(identity: str) -> str:
    """An identity as parties are compared: without surrounding space, case-folded."""
    return identity.strip().casefold()


def _folded(identities: dict[str, str]) -> dict[str, str | None]:
    folded: dict[str, str | None] = {}
    for identity, person in identities.items():
        key = fold(identity)
        folded[key] = person if folded.get(key, person) == person else None
    return folded


def full_number(parent: str, number: str) -> str:
    """A nested duty's number in full: `2.1` under `2` stays `2.1`; `3` under `二` becomes `二.3`."""
    if not parent or number.startswith((parent + ".", parent + "(")):
        return number
    return f"{parent}.{number}"


def _walk(duties: list[Duty], parent: str = "") -> Iterator[tuple[str, Duty, Permission]]:
    for duty in duties:
        number = full_number(parent, duty.number)
        for permission in duty.permissions:
            yield number, duty, permission
        yield from _walk(duty.duties, number)


def _group_leaves(org: Organisation) -> dict[str, frozenset[str]]:
    """Resource types reached from each catalogue entry (a type reaches itself; a group its members')."""
    groups = {g.id: g.members for g in org.catalogue.groups}
    out: dict[str, frozenset[str]] = {r.id: frozenset([r.id]) for r in org.catalogue.resources}

    def leaves(ref: str, seen: frozenset[str]) -> frozenset[str]:
        if ref in out:
            return out[ref]
        if ref not in groups or ref in seen:
            return frozenset()
        result = frozenset().union(*(leaves(m, seen | {ref}) for m in groups[ref]))
        out[ref] = result
        return result

    for group in groups:
        leaves(group, frozenset())
    return out


def _expand(org: Organisation, permission: Permission, leaves: dict[str, frozenset[str]]) -> Iterator[Key]:
    """(resource type, action) pairs a permission covers: a group covers every member type, as Casbin's g2 does."""
    actions = _actions(org, permission, leaves)
    for resource in sorted(leaves.get(permission.resource, ())):
        for action in actions:
            yield resource, action


def _actions(org: Organisation, permission: Permission, leaves: dict[str, frozenset[str]]) -> list[str]:
    if permission.actions != "*":
        return list(permission.actions)
    catalogue = {r.id: r.actions for r in org.catalogue.resources}
    out: list[str] = []
    for resource in sorted(leaves.get(permission.resource, ())):
        out += [a for a in catalogue[resource] if a not in out]
    return out


def _closure(post: str, inherits: dict[str, list[str]]) -> list[str]:
    """The post itself and every post it inherits from, transitively, in breadth-first order."""
    order, queue = [post], [post]
    while queue:
        for parent in inherits.get(queue.pop(0), []):
            if parent not in order:
                order.append(parent)
                queue.append(parent)
    return order


def policy_lines(org: Organisation, at: float | None = None) -> Iterator[list[str]]:
    """The organisation as Casbin policy rules, each line once (see `_policy_lines`)."""
    seen: set[tuple[str, ...]] = set()
    for line in _policy_lines(org, at):
        key = tuple(line)
        if key not in seen:
            seen.add(key)
            yield line


def _policy_lines(org: Organisation, at: float | None) -> Iterator[list[str]]:
    """The organisation as Casbin policy rules (`policies/casbin/model.conf`), one list per line.

    Assignments enter as `g` lines only when active at `at` (all of them when `at` is None): Casbin's
    own time-conditioned links read the wall clock, so `--at` questions are answered by materialising
    the policy of that moment instead.
    """
    tz = zone(org.timezone)
    dom = org.id

    leaves = _group_leaves(org)

    def permission_lines(subject: str, duties: list[Duty]) -> Iterator[list[str]]:
        for _, _, permission in _walk(duties):
            if permission.condition is not None:
                continue  # attribute conditions are outside plain RBAC: see conditional_lines
            for action in _actions(org, permission, leaves):
                yield ["p", subject, dom, permission.resource, action, permission.effect]

    yield from permission_lines(COMMON, org.common_duties)
    for dept in org.departments:
        if dept.head is not None:
            yield from permission_lines(f"department:{dept.id}", dept.duties)
    for post in org.posts:
        yield from permission_lines(f"post:{post.id}", post.duties)
    for post in org.posts:
        yield ["g", f"post:{post.id}", COMMON, dom]
        for parent in post.inherits:
            yield ["g", f"post:{post.id}", f"post:{parent}", dom]
    for dept in org.departments:
        if dept.head is not None:
            yield ["g", f"post:{dept.head}", f"department:{dept.id}", dom]
    for person in org.people:
        for a in person.assignments:
            if at is not None:
                start = instant(a.valid_from, tz) if a.valid_from else None
                end = instant(a.valid_to, tz, end=True) if a.valid_to else None
                if (start is not None and at < start) or (end is not None and at >= end):
                    continue
            yield ["g", f"person:{person.id}", f"post:{a.post}", dom]
    for group in org.catalogue.groups:
        for member in group.members:
            yield ["g2", member, group.id, dom]


def conditional_lines(org: Organisation) -> Iterator[str]:
    """Permissions that hold only under a condition, as comments beside the Casbin policy.

    Plain Casbin RBAC cannot express them; Dutyline evaluates them on top of the RBAC grant, with the
    subject's, resource's and request's attributes.
    """
    leaves = _group_leaves(org)
    owners = [("common", org.common_duties)]
    owners += [(f"department:{d.id}", d.duties) for d in org.departments if d.head is not None]
    owners += [(f"post:{p.id}", p.duties) for p in org.posts]
    for subject, duties in owners:
        for _, _, permission in _walk(duties):
            if permission.condition is None:
                continue
            for action in _actions(org, permission, leaves):
                yield (
                    f"# p, {subject}, {org.id}, {permission.resource}, {action}, {permission.effect}"
                    f"  when {permission.condition}"
                )
