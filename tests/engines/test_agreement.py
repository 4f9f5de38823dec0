"""The fast decision path agrees with plain `casbin.Enforcer` on the same compiled policy.

Casbin is the reference semantics; the decision index is only an acceleration of it. Requests outside
the catalogue are denied by the catalogue check before either engine is asked.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dutyline.engines.compiler import compile_org
from dutyline.engines.decision import decide_person
from dutyline.engines.reference import reference_enforcer
from dutyline.orgmodel.document import (
    Assignment,
    Catalogue,
    Department,
    Duty,
    Names,
    Organisation,
    Permission,
    Person,
    Post,
    ResourceGroup,
    ResourceType,
)
from dutyline.orgmodel.validate import parse_organisation
from dutyline.orgmodel.windows import instant, zone

REPO = Path(__file__).resolve().parents[2]
N = Names(zh="名", en="name")
ACTIONS = ["view", "edit", "approve", "delete"]
DAYS = [f"2026-07-{d:02d}" for d in range(1, 29)]


@st.composite
def organisations(draw: st.DrawFn) -> Organisation:
    n_resources = draw(st.integers(1, 4))
    resources = [
        ResourceType(id=f"r{i}", name=N, actions=draw(st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=4, unique=True)))
        for i in range(n_resources)
    ]
    groups = []
    for i in range(draw(st.integers(0, 2))):
        # a group may contain earlier groups, never later ones: no cycles
        pool = [r.id for r in resources] + [g.id for g in groups]
        groups.append(ResourceGroup(id=f"g{i}", name=N, members=draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))))
    targets = [r.id for r in resources] + [g.id for g in groups]

    def permissions() -> list[Permission]:
        return [
            Permission(
                resource=draw(st.sampled_from(targets)),
                actions=draw(st.one_of(st.just("*"), st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=2, unique=True))),
                effect=draw(st.sampled_from(["allow", "allow", "allow", "deny"])),
            )
            for _ in range(draw(st.integers(0, 2)))
        ]

    def duties(depth: int = 0) -> list[Duty]:
        return [
            Duty(number=str(i + 1), text="职责", permissions=permissions(), duties=duties(depth + 1) if depth == 0 else [])
            for i in range(draw(st.integers(0, 2)))
        ]

    n_posts = draw(st.integers(1, 6))
    n_depts = draw(st.integers(1, 2))
    posts = [
        Post(
            id=f"p{i}",
            name=N,
            department=f"d{i % n_depts}",
            inherits=draw(st.lists(st.sampled_from([f"p{j}" for j in range(i)]), max_size=2, unique=True)) if i else [],
            duties=duties(),
        )
        for i in range(n_posts)
    ]
    departments = [
        Department(id=f"d{i}", name=N, head=f"p{i}" if i < n_posts and draw(st.booleans()) else None, duties=duties())
        for i in range(n_depts)
    ]
    departments = [d if d.head is None or posts[int(d.head[1:])].department == d.id else Department(id=d.id, name=N) for d in departments]
    people = []
    for i in range(draw(st.integers(1, 4))):
        assignments = []
        for post in draw(st.lists(st.sampled_from([p.id for p in posts]), min_size=0, max_size=3, unique=True)):
            if draw(st.booleans()):
                start, end = sorted(draw(st.lists(st.sampled_from(DAYS), min_size=2, max_size=2, unique=True)))
                assignments.append(Assignment(post=post, kind="acting", valid_from=start, valid_to=end))
            else:
                assignments.append(Assignment(post=post, kind="concurrent"))
        people.append(Person(id=f"u{i}", name=N, assignments=assignments))
    return Organisation(
        id="o",
        name=N,
        catalogue=Catalogue(resources=resources, groups=groups),
        common_duties=duties(),
        departments=departments,
        posts=posts,
        people=people,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(org=organisations(), day=st.sampled_from(DAYS), hour=st.integers(0, 23), data=st.data())
def test_fast_path_agrees_with_plain_casbin_on_generated_organisations(org: Organisation, day: str, hour: int, data: st.DataObject) -> None:
    at = instant(f"{day}T{hour:02d}:00", zone(org.timezone))
    compiled = compile_org(org)
    enforcer = reference_enforcer(org, at)
    for person in org.people:
        for resource in org.catalogue.resources:
            for action in resource.actions:
                fast = decide_person(compiled, person.id, resource.id, action, at).allowed
                reference = enforcer.enforce(f"person:{person.id}", org.id, resource.id, action)
                assert fast == reference, (person.id, resource.id, action, day, hour)


def _seed_orgs() -> list[Path]:
    return sorted((REPO / "policies" / "orgs").glob("*.yaml"))


@pytest.mark.parametrize("path", _seed_orgs(), ids=lambda p: p.stem)
def test_fast_path_agrees_with_plain_casbin_on_every_seed_organisation(path: Path) -> None:
    org = parse_organisation(path.read_text(encoding="utf-8"), str(path)).organisation
    tz = zone(org.timezone)
    compiled = compile_org(org)
    # a fixed day, and inside and just after every time-bounded assignment (the edges are the decision
    # tables' and the generated organisations' business; each moment here costs a plain-Casbin scan per request)
    moments = {dt.datetime(2026, 11, 27, 10, tzinfo=tz).timestamp()}
    for window in (w for ws in compiled.assignments.values() for w in ws if w.start is not None and w.end is not None):
        moments |= {(window.start + window.end) / 2, window.end}
    for at in sorted(moments):
        enforcer = reference_enforcer(org, at)
        for person in org.people:
            for resource in org.catalogue.resources:
                for action in resource.actions:
                    fast = decide_person(compiled, person.id, resource.id, action, at).allowed
                    reference = enforcer.enforce(f"person:{person.id}", org.id, resource.id, action)
                    assert fast == reference, (person.id, resource.id, action, at)
