"""Checking organisation documents: every problem at once, each with its file and line.

`parse_organisation` is the one way text becomes an `Organisation`: YAML (with line numbers) →
JSON Schema (structure) → msgspec struct → semantic checks (references, cycles, windows, SoD).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any
from zoneinfo import available_timezones

import jsonschema
import msgspec

from dutyline.errors import Invalid, Issue, IssueCode, did_you_mean, nearest
from dutyline.expressions import ExpressionError, parse
from dutyline.orgmodel.document import Duty, Organisation, schema
from dutyline.orgmodel.salvage import salvage
from dutyline.orgmodel.shape import shape_issues
from dutyline.orgmodel.source import Path, SourceMap, check_numbers, load_yaml
from dutyline.orgmodel.windows import instant, zone

# The kind of thing an id names, as a token of the catalogues' `issue.param.what`.
_WHAT = {
    "resource or group": "resource_or_group",
    "department": "department",
    "post": "post",
    "person": "person",
    "separation-of-duties rule": "sod_rule",
}


@cache
def _validator() -> jsonschema.protocols.Validator:
    return jsonschema.Draft202012Validator(schema())


@dataclass(frozen=True, slots=True)
class Parsed:
    """A document that passed validation, with its warnings and where it came from."""

    organisation: Organisation
    source: SourceMap
    warnings: tuple[Issue, ...]


def parse_organisation(text: str, file: str) -> Parsed:
    """Parse and validate one organisation file. Raises `Invalid` listing every error found."""
    data, source = load_yaml(text, file)
    return check_data(data, source)


def check_data(data: Any, source: SourceMap) -> Parsed:
    """Validate already-loaded data (from YAML or JSON) against the format and the model's rules."""
    check_numbers(data, source)  # a NaN attribute would be stored as null (msgspec) and read back differently
    try:
        # The published schema is generated from these structs, so what msgspec accepts the schema accepts:
        # the fast path (jsonschema takes ~0.1 s for a 1,000-line organisation, and every admin write of
        # an entity validates its whole organisation). jsonschema runs to list every structural error, with
        # its path and line, of a document msgspec rejects.
        organisation = msgspec.convert(data, Organisation)
    except msgspec.ValidationError as exc:
        found = shape_issues(_validator(), data, source)
        if not found:
            params = {"field": "document", "detail": str(exc)}
            raise Invalid(str(exc), [source.issue((), str(exc), code=IssueCode.SCHEMA, params=params)]) from None
        issues = [issue for _, issue in found]
        rest = salvage(data, [cut for cut, _ in found], Organisation)
        if rest is not None:  # the meaning of what is left, in the same answer
            remapped = SourceMap(source.file, source.mapped(), remap=rest.original)
            issues += [
                i
                for i in semantic_issues(rest.value, remapped)
                if i.severity == "error" and not about_cut(i, rest.cut_ids)
            ]
        raise Invalid.of(sorted(issues, key=lambda i: (i.line, i.path, i.message))) from None
    issues = sorted(semantic_issues(organisation, source), key=lambda i: (i.line, i.path, i.message))
    errors = [i for i in issues if i.severity == "error"]
    if errors:
        raise Invalid.of(errors)
    return Parsed(organisation, source, tuple(issues))


def organisation_from_json(payload: bytes | str | dict, file: str = "<request>") -> Parsed:
    """Validate an organisation sent as JSON (the admin API). Lines are not known; paths are."""
    data = json.loads(payload) if isinstance(payload, (bytes, str)) else payload
    return check_data(data, SourceMap(file))


_REFERENCES = {
    IssueCode.UNKNOWN_DEPARTMENT,
    IssueCode.UNKNOWN_POST,
    IssueCode.UNKNOWN_PERSON,
    IssueCode.UNKNOWN_RESOURCE,
}


def about_cut(issue: Issue, cut_ids: frozenset[str]) -> bool:
    """Whether `issue` is a reference to an item cut out of a salvaged document (its own errors say what is wrong)."""
    return issue.code in _REFERENCES and issue.params.get("id") in cut_ids


def semantic_issues(org: Organisation, source: SourceMap) -> Iterator[Issue]:
    """Every reference, cycle, window and separation-of-duties problem of a decoded document."""
    checker = _Checker(org, source)
    yield from checker.run()


class _Checker:
    def __init__(self, org: Organisation, source: SourceMap) -> None:
        self.org = org
        self.src = source
        self.resources = {r.id: r for r in org.catalogue.resources}
        self.groups = {g.id: g for g in org.catalogue.groups}
        self.departments = {d.id: d for d in org.departments}
        self.posts = {p.id: p for p in org.posts}
        self.people = {p.id: p for p in org.people}

    def issue(
        self,
        path: Path,
        message: str,
        severity: str = "error",
        code: IssueCode = IssueCode.INVALID,
        **params: str,
    ) -> Issue:
        return self.src.issue(path, message, severity, code, params)

    def unknown(
        self, path: Path, message: str, code: IssueCode, ident: str, known: Iterable[str], **params: str
    ) -> Issue:
        """An issue of a reference to nothing, with the known id nearest it."""
        suggestion = nearest(ident, known)
        return self.issue(
            path, message + did_you_mean(suggestion), code=code, id=ident, suggestion=suggestion, **params
        )

    def run(self) -> Iterator[Issue]:
        yield from self._timezone()
        yield from self._duplicates()
        yield from self._catalogue()
        yield from self._departments()
        yield from self._posts()
        yield from self._duty_lists()
        yield from self._separation()
        yield from self._people()

    def _timezone(self) -> Iterator[Issue]:
        try:
            zone(self.org.timezone)
        except ValueError as exc:
            yield self.unknown(
                ("timezone",), str(exc), IssueCode.UNKNOWN_TIMEZONE, self.org.timezone, available_timezones()
            )

    def _duplicates(self) -> Iterator[Issue]:
        lists: list[tuple[str, Iterable[tuple[Path, str]]]] = [
            (
                "resource or group",
                [(("catalogue", "resources", i, "id"), r.id) for i, r in enumerate(self.org.catalogue.resources)]
                + [(("catalogue", "groups", i, "id"), g.id) for i, g in enumerate(self.org.catalogue.groups)],
            ),
            ("department", [(("departments", i, "id"), d.id) for i, d in enumerate(self.org.departments)]),
            ("post", [(("posts", i, "id"), p.id) for i, p in enumerate(self.org.posts)]),
            ("person", [(("people", i, "id"), p.id) for i, p in enumerate(self.org.people)]),
            (
                "separation-of-duties rule",
                [(("separation_of_duties", i, "id"), s.id) for i, s in enumerate(self.org.separation_of_duties)],
            ),
        ]
        for kind, entries in lists:
            first: dict[str, Path] = {}
            for path, ident in entries:
                if ident in first:
                    line = str(self.src.line(first[ident]))
                    yield self.issue(
                        path,
                        f"duplicate {kind} id {ident!r} (first defined on line {line})",
                        code=IssueCode.DUPLICATE,
                        what=_WHAT[kind],
                        id=ident,
                        first_line=line,
                    )
                else:
                    first[ident] = path

    def _catalogue(self) -> Iterator[Issue]:
        for i, resource in enumerate(self.org.catalogue.resources):
            seen: dict[str, int] = {}
            for j, action in enumerate(resource.actions):
                if action in seen:
                    yield self.issue(
                        ("catalogue", "resources", i, "actions", j),
                        f"action {action!r} listed twice",
                        code=IssueCode.DUPLICATE,
                        case="list",
                        what="action",
                        id=action,
                        first_line=str(self.src.line(("catalogue", "resources", i, "actions", seen[action]))),
                    )
                seen.setdefault(action, j)
            instances: dict[str, int] = {}
            for j, instance in enumerate(resource.instances):
                if instance.id in instances:
                    first = ("catalogue", "resources", i, "instances", instances[instance.id])
                    yield self.issue(
                        ("catalogue", "resources", i, "instances", j, "id"),
                        f"instance {instance.id!r} of {resource.id!r} listed twice",
                        code=IssueCode.DUPLICATE,
                        case="instance",
                        what="instance",
                        id=instance.id,
                        resource=resource.id,
                        first_line=str(self.src.line(first)),
                    )
                instances.setdefault(instance.id, j)
        for i, group in enumerate(self.org.catalogue.groups):
            for j, member in enumerate(group.members):
                if member not in self.resources and member not in self.groups:
                    yield self.unknown(
                        ("catalogue", "groups", i, "members", j),
                        f"unknown resource or group {member!r}",
                        IssueCode.UNKNOWN_RESOURCE,
                        member,
                        [*self.resources, *self.groups],
                    )
        graph = {g.id: [m for m in g.members if m in self.groups] for g in self.org.catalogue.groups}
        index = {g.id: i for i, g in enumerate(self.org.catalogue.groups)}
        for cycle in _cycles(graph):
            shown = " → ".join([*cycle, cycle[0]])
            yield self.issue(
                ("catalogue", "groups", index[cycle[0]], "members"),
                "resource groups contain each other in a cycle: " + shown,
                code=IssueCode.CYCLE,
                what="groups",
                cycle=shown,
            )

    def _departments(self) -> Iterator[Issue]:
        for i, dept in enumerate(self.org.departments):
            if dept.parent is not None and dept.parent not in self.departments:
                yield self.unknown(
                    ("departments", i, "parent"),
                    f"unknown parent department {dept.parent!r}",
                    IssueCode.UNKNOWN_DEPARTMENT,
                    dept.parent,
                    self.departments,
                    case="parent",
                )
            if dept.head is not None:
                head = self.posts.get(dept.head)
                if head is None:
                    yield self.unknown(
                        ("departments", i, "head"),
                        f"unknown head post {dept.head!r}",
                        IssueCode.UNKNOWN_POST,
                        dept.head,
                        self.posts,
                        case="head",
                    )
                elif head.department != dept.id:
                    yield self.issue(
                        ("departments", i, "head"),
                        f"head post {dept.head!r} belongs to department {head.department!r}, not {dept.id!r}",
                        code=IssueCode.BAD_HEAD,
                        case="elsewhere",
                        post=dept.head,
                        department=head.department,
                        expected=dept.id,
                    )
            elif dept.duties:
                yield self.issue(
                    ("departments", i, "duties"),
                    "department duties need a `head` post to carry them; without one they grant nothing",
                    "warning",
                    code=IssueCode.BAD_HEAD,
                    case="no_head",
                    department=dept.id,
                )
            for j, ref in enumerate(dept.jurisdiction):
                if ref not in self.resources and ref not in self.groups:
                    yield self.unknown(
                        ("departments", i, "jurisdiction", j),
                        f"unknown resource or group {ref!r}",
                        IssueCode.UNKNOWN_RESOURCE,
                        ref,
                        [*self.resources, *self.groups],
                    )
        graph = {d.id: [d.parent] if d.parent in self.departments else [] for d in self.org.departments}
        index = {d.id: i for i, d in enumerate(self.org.departments)}
        for cycle in _cycles(graph):
            shown = " → ".join([*cycle, cycle[0]])
            yield self.issue(
                ("departments", index[cycle[0]], "parent"),
                "departments are each other's parents in a cycle: " + shown,
                code=IssueCode.CYCLE,
                what="departments",
                cycle=shown,
            )

    def _posts(self) -> Iterator[Issue]:
        for i, post in enumerate(self.org.posts):
            if post.department not in self.departments:
                yield self.unknown(
                    ("posts", i, "department"),
                    f"unknown department {post.department!r}",
                    IssueCode.UNKNOWN_DEPARTMENT,
                    post.department,
                    self.departments,
                )
            if post.reports_to is not None:
                if post.reports_to == post.id:
                    yield self.issue(
                        ("posts", i, "reports_to"),
                        f"post {post.id!r} reports to itself",
                        code=IssueCode.CYCLE,
                        case="self",
                        what="reporting",
                        id=post.id,
                        cycle=f"{post.id} → {post.id}",
                    )
                elif post.reports_to not in self.posts:
                    yield self.unknown(
                        ("posts", i, "reports_to"),
                        f"unknown superior post {post.reports_to!r}",
                        IssueCode.UNKNOWN_POST,
                        post.reports_to,
                        self.posts,
                        case="superior",
                    )
            for j, parent in enumerate(post.inherits):
                if parent not in self.posts:
                    yield self.unknown(
                        ("posts", i, "inherits", j),
                        f"unknown post {parent!r} to inherit from",
                        IssueCode.UNKNOWN_POST,
                        parent,
                        self.posts,
                        case="inherit",
                    )
        index = {p.id: i for i, p in enumerate(self.org.posts)}
        reports = {
            p.id: [p.reports_to] if p.reports_to in self.posts and p.reports_to != p.id else [] for p in self.org.posts
        }
        for cycle in _cycles(reports):
            shown = " → ".join([*cycle, cycle[0]])
            yield self.issue(
                ("posts", index[cycle[0]], "reports_to"),
                "reporting lines form a cycle: " + shown,
                code=IssueCode.CYCLE,
                what="reporting",
                cycle=shown,
            )
        inherits = {p.id: [q for q in p.inherits if q in self.posts] for p in self.org.posts}
        for cycle in _cycles(inherits):
            shown = " → ".join([*cycle, cycle[0]])
            yield self.issue(
                ("posts", index[cycle[0]], "inherits"),
                "posts inherit from each other in a cycle: " + shown,
                code=IssueCode.CYCLE,
                what="inheritance",
                cycle=shown,
            )

    def _duty_lists(self) -> Iterator[Issue]:
        yield from self._duties(self.org.common_duties, ("common_duties",))
        for i, dept in enumerate(self.org.departments):
            yield from self._duties(dept.duties, ("departments", i, "duties"))
        for i, post in enumerate(self.org.posts):
            yield from self._duties(post.duties, ("posts", i, "duties"))

    def _duties(self, duties: list[Duty], path: Path) -> Iterator[Issue]:
        seen: dict[str, int] = {}
        for i, duty in enumerate(duties):
            here = (*path, i)
            if duty.number in seen:
                line = str(self.src.line((*path, seen[duty.number])))
                yield self.issue(
                    (*here, "number"),
                    f"duty number {duty.number!r} used twice in the same list (first on line {line})",
                    code=IssueCode.DUPLICATE,
                    case="duty_number",
                    what="duty_number",
                    id=duty.number,
                    first_line=line,
                )
            else:
                seen[duty.number] = i
            for j, permission in enumerate(duty.permissions):
                yield from self._permission(permission.resource, permission.actions, (*here, "permissions", j))
                if permission.condition is not None:
                    try:
                        parse(permission.condition)
                    except ExpressionError as exc:
                        yield self.issue(
                            (*here, "permissions", j, "condition"),
                            f"condition: {exc}",
                            code=IssueCode.BAD_EXPRESSION,
                            field="condition",
                            detail=str(exc),
                        )
            yield from self._duties(duty.duties, (*here, "duties"))

    def _permission(self, resource: str, actions: list[str] | str, path: Path) -> Iterator[Issue]:
        available = self.actions_of(resource)
        if available is None:
            yield self.unknown(
                (*path, "resource"),
                f"unknown resource or group {resource!r}",
                IssueCode.UNKNOWN_RESOURCE,
                resource,
                [*self.resources, *self.groups],
            )
            return
        if actions == "*":
            return
        for k, action in enumerate(actions):
            if action not in available:
                known = ", ".join(sorted(available))
                suggestion = nearest(action, available)
                yield self.issue(
                    (*path, "actions", k),
                    f"action {action!r} is not in the catalogue for {resource!r} (it has: {known or 'no actions'})"
                    + did_you_mean(suggestion),
                    code=IssueCode.UNKNOWN_ACTION,
                    id=action,
                    resource=resource,
                    known=known or "no actions",
                    suggestion=suggestion,
                )

    def actions_of(self, ref: str, _seen: frozenset[str] = frozenset()) -> set[str] | None:
        """The actions of a resource type, or the union over a group's members; None if unknown."""
        if ref in self.resources:
            return set(self.resources[ref].actions)
        group = self.groups.get(ref)
        if group is None or ref in _seen:
            return None
        out: set[str] = set()
        for member in group.members:
            out |= self.actions_of(member, _seen | {ref}) or set()
        return out

    def _separation(self) -> Iterator[Issue]:
        for i, rule in enumerate(self.org.separation_of_duties):
            seen: dict[str, int] = {}
            for j, post in enumerate(rule.posts):
                here = ("separation_of_duties", i, "posts", j)
                if post not in self.posts:
                    yield self.unknown(here, f"unknown post {post!r}", IssueCode.UNKNOWN_POST, post, self.posts)
                if post in seen:
                    line = str(self.src.line(("separation_of_duties", i, "posts", seen[post])))
                    yield self.issue(
                        here,
                        f"post {post!r} listed twice",
                        code=IssueCode.DUPLICATE,
                        case="list",
                        what="post_in_list",
                        id=post,
                        first_line=line,
                    )
                seen.setdefault(post, j)

    def _people(self) -> Iterator[Issue]:
        try:
            tz = zone(self.org.timezone)
        except ValueError:
            return
        exclusive: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for rule in self.org.separation_of_duties:
            for post in rule.posts:
                exclusive[post] += [(other, rule.id) for other in rule.posts if other != post]
        holders: dict[str, set[str]] = defaultdict(set)
        known: dict[str, str] = {p.id: p.id for p in self.org.people}
        place = {p.id: i for i, p in enumerate(self.org.people)}
        for i, person in enumerate(self.org.people):
            for j, identity in enumerate(person.identities):
                owner = known.setdefault(identity, person.id)
                if owner != person.id or identity == person.id:
                    yield self.issue(
                        ("people", i, "identities", j),
                        f"identity {identity!r} already names person {owner!r}"
                        if owner != person.id
                        else f"identity {identity!r} repeats the person's own id",
                        code=IssueCode.DUPLICATE,
                        case="identity" if owner != person.id else "own_identity",
                        what="identity",
                        id=identity,
                        owner=owner,
                        first_line=str(self.src.line(("people", place.get(owner, i)))),
                    )
            spans: list[tuple[int, str, str, float, float]] = []
            for j, assignment in enumerate(person.assignments):
                path = ("people", i, "assignments", j)
                if assignment.post not in self.posts:
                    yield self.unknown(
                        (*path, "post"),
                        f"unknown post {assignment.post!r}",
                        IssueCode.UNKNOWN_POST,
                        assignment.post,
                        self.posts,
                    )
                if assignment.kind != "acting":
                    holders[assignment.post].add(person.id)
                start, end = float("-inf"), float("inf")
                try:
                    if assignment.valid_from is not None:
                        start = instant(assignment.valid_from, tz)
                    if assignment.valid_to is not None:
                        end = instant(assignment.valid_to, tz, end=True)
                except ValueError as exc:
                    yield self.issue(
                        path,
                        f"impossible date: {exc}",
                        code=IssueCode.BAD_WINDOW,
                        case="impossible_date",
                        detail=str(exc),
                        start=str(assignment.valid_from or ""),
                        end=str(assignment.valid_to or ""),
                    )
                    continue
                if assignment.kind == "acting" and (assignment.valid_from is None or assignment.valid_to is None):
                    yield self.issue(
                        path,
                        "an acting assignment needs both valid_from and valid_to",
                        code=IssueCode.BAD_WINDOW,
                        case="acting_without_end",
                        start=str(assignment.valid_from or ""),
                        end=str(assignment.valid_to or ""),
                    )
                if end <= start:
                    yield self.issue(
                        (*path, "valid_to"),
                        f"the assignment ends ({assignment.valid_to}) before it starts ({assignment.valid_from})",
                        code=IssueCode.BAD_WINDOW,
                        case="ends_before_start",
                        start=str(assignment.valid_from),
                        end=str(assignment.valid_to),
                    )
                if assignment.stands_in_for is not None:
                    if assignment.kind != "acting":
                        yield self.issue(
                            (*path, "stands_in_for"),
                            "only an acting assignment stands in for someone",
                            code=IssueCode.BAD_STAND_IN,
                            case="not_acting",
                        )
                    if assignment.stands_in_for == person.id:
                        yield self.issue(
                            (*path, "stands_in_for"),
                            "a person cannot stand in for themselves",
                            code=IssueCode.BAD_STAND_IN,
                            case="self",
                        )
                    elif assignment.stands_in_for not in self.people:
                        yield self.unknown(
                            (*path, "stands_in_for"),
                            f"unknown person {assignment.stands_in_for!r}",
                            IssueCode.UNKNOWN_PERSON,
                            assignment.stands_in_for,
                            self.people,
                        )
                    elif not any(
                        held.post == assignment.post and held.kind != "acting"
                        for held in self.people[assignment.stands_in_for].assignments
                    ):
                        # 顶替岗 stands in for the post's holder: naming someone who does not hold it is accepted
                        # (the assignment grants the post either way), but it is most likely a slip
                        yield self.issue(
                            (*path, "stands_in_for"),
                            f"{assignment.stands_in_for!r} does not hold post {assignment.post!r}: "
                            "an acting assignment stands in for one of the post's holders",
                            "warning",
                            code=IssueCode.BAD_STAND_IN,
                            case="not_holder",
                            person=assignment.stands_in_for,
                            post=assignment.post,
                        )
                spans.append((j, assignment.post, assignment.kind, start, end))
            yield from self._overlaps(i, spans, exclusive)
        for i, held in enumerate(self.org.posts):
            if len(holders[held.id]) > held.headcount:
                yield self.issue(
                    ("posts", i, "headcount"),
                    f"{len(holders[held.id])} people hold post {held.id!r} but its headcount is {held.headcount}",
                    "warning",
                    code=IssueCode.HEADCOUNT,
                    post=held.id,
                    holders=str(len(holders[held.id])),
                    headcount=str(held.headcount),
                )

    def _overlaps(
        self, i: int, spans: list[tuple[int, str, str, float, float]], exclusive: dict[str, list[tuple[str, str]]]
    ) -> Iterator[Issue]:
        for a in range(len(spans)):
            ja, post_a, kind_a, start_a, end_a = spans[a]
            for b in range(a + 1, len(spans)):
                jb, post_b, kind_b, start_b, end_b = spans[b]
                if not (start_a < end_b and start_b < end_a):
                    continue
                path = ("people", i, "assignments", jb)
                if post_a == post_b:
                    yield self.issue(
                        path,
                        f"post {post_b!r} is assigned twice at overlapping times",
                        code=IssueCode.DUPLICATE,
                        case="assignment",
                        what="assignment",
                        id=post_b,
                        first_line=str(self.src.line(("people", i, "assignments", ja))),
                    )
                elif kind_a == kind_b == "primary":
                    yield self.issue(
                        path,
                        f"two primary posts at overlapping times ({post_a!r} and {post_b!r}); use kind: concurrent",
                        code=IssueCode.OVERLAPPING_ASSIGNMENTS,
                        post=post_a,
                        other=post_b,
                    )
                for other, rule in exclusive.get(post_a, []):
                    if other == post_b:
                        yield self.issue(
                            path,
                            f"posts {post_a!r} and {post_b!r} may not be held by one person at the same time "
                            f"(separation of duties {rule!r})",
                            code=IssueCode.SOD_CONFLICT,
                            post=post_a,
                            other=post_b,
                            rule=rule,
                        )


def _cycles(graph: dict[str, list[str]]) -> Iterator[list[str]]:
    """Each cycle of a directed graph once, as the list of its nodes starting from its smallest id."""
    state: dict[str, int] = {}
    found: set[tuple[str, ...]] = set()
    for start in sorted(graph):
        if state.get(start):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(graph.get(start, [])))]
        trail = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                trail.pop()
                state[node] = 2
                continue
            if state.get(child) == 1:
                cycle = trail[trail.index(child) :]
                pivot = cycle.index(min(cycle))
                key = tuple(cycle[pivot:] + cycle[:pivot])
                if key not in found:
                    found.add(key)
                    yield list(key)
            elif not state.get(child):
                state[child] = 1
                trail.append(child)
                stack.append((child, iter(graph.get(child, []))))
