"""Properties of the compiler and the decision path that must hold for every organisation."""

from __future__ import annotations

import msgspec
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dutyline.engines.compiler import compile_org, policy_lines
from dutyline.engines.decision import decide_person
from dutyline.orgmodel.document import Organisation, Person
from dutyline.orgmodel.source import SourceMap
from dutyline.orgmodel.validate import parse_organisation, semantic_issues
from dutyline.orgmodel.windows import instant, zone
from dutyline.services.orgs import to_yaml
from tests.strategies import DAYS, organisations

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def allowed(org: Organisation, at: float) -> set[tuple[str, str, str]]:
    compiled = compile_org(org)
    return {
        (p.id, r.id, a)
        for p in org.people
        for r in org.catalogue.resources
        for a in r.actions
        if decide_person(compiled, p.id, r.id, a, at).allowed
    }


def moment(day: str, hour: int) -> float:
    return instant(f"{day}T{hour:02d}:00", zone("Asia/Shanghai"))


@SETTINGS
@given(org=organisations(), day=st.sampled_from(DAYS), hour=st.integers(0, 23), data=st.data())
def test_removing_an_assignment_adds_only_what_its_post_forbade(
    org: Organisation, day: str, hour: int, data: st.DataObject
) -> None:
    """A deny binds the person whatever else they hold (the cashier who is also a sales representative may not
    discount), so removing an assignment can only add back what that assignment's post itself denied."""
    holders = [p for p in org.people if p.assignments]
    if not holders:
        return
    person = data.draw(st.sampled_from(holders))
    index = data.draw(st.integers(0, len(person.assignments) - 1))
    smaller = Person(
        id=person.id, name=person.name, assignments=[a for i, a in enumerate(person.assignments) if i != index]
    )
    reduced = msgspec.structs.replace(org, people=[smaller if p.id == person.id else p for p in org.people])
    at = moment(day, hour)
    removed_post = compile_org(org).posts[person.assignments[index].post]
    forbidden = {(person.id, r, a) for (r, a) in removed_post.deny}
    assert allowed(reduced, at) <= allowed(org, at) | forbidden


@SETTINGS
@given(org=organisations(), day=st.sampled_from(DAYS), hour=st.integers(0, 23), data=st.data())
def test_removing_an_assignment_without_denies_never_adds_a_permission(
    org: Organisation, day: str, hour: int, data: st.DataObject
) -> None:
    compiled = compile_org(org)
    candidates = [(p, i) for p in org.people for i, a in enumerate(p.assignments) if not compiled.posts[a.post].deny]
    if not candidates:
        return
    person, index = data.draw(st.sampled_from(candidates))
    smaller = msgspec.structs.replace(person, assignments=[a for i, a in enumerate(person.assignments) if i != index])
    reduced = msgspec.structs.replace(org, people=[smaller if p.id == person.id else p for p in org.people])
    at = moment(day, hour)
    assert allowed(reduced, at) <= allowed(org, at)


@SETTINGS
@given(org=organisations(), data=st.data())
def test_an_acting_assignment_grants_nothing_outside_its_window(org: Organisation, data: st.DataObject) -> None:
    compiled = compile_org(org)
    for person in org.people:
        for index, window in enumerate(compiled.assignments[person.id]):
            if window.kind != "acting":
                continue
            outside = data.draw(st.sampled_from([window.start - 1, window.end, window.end + 86400 * 3]))
            without = msgspec.structs.replace(
                org,
                people=[
                    msgspec.structs.replace(p, assignments=[a for i, a in enumerate(p.assignments) if i != index])
                    if p.id == person.id
                    else p
                    for p in org.people
                ],
            )
            # outside its window, the acting assignment adds nothing to what the person could do without it
            assert {x for x in allowed(org, outside) if x[0] == person.id} == {
                x for x in allowed(without, outside) if x[0] == person.id
            }


@SETTINGS
@given(org=organisations(), day=st.sampled_from(DAYS))
def test_a_deny_always_beats_an_allow(org: Organisation, day: str) -> None:
    compiled = compile_org(org)
    at = moment(day, 12)
    for person in org.people:
        for resource in org.catalogue.resources:
            for action in resource.actions:
                decision = decide_person(compiled, person.id, resource.id, action, at)
                if decision.denied_by:
                    assert decision.outcome == "deny"
                if decision.allowed:
                    assert not decision.denied_by and decision.allowed_by


@SETTINGS
@given(org=organisations())
def test_compile_export_import_compile_is_the_identity(org: Organisation) -> None:
    # the generator also makes documents validation refuses (actions outside the catalogue): skip those
    assume(not [i for i in semantic_issues(org, SourceMap("generated")) if i.severity == "error"])
    exported = to_yaml(org)
    again = parse_organisation(exported, "exported.yaml").organisation
    assert again == org
    assert list(policy_lines(again)) == list(policy_lines(org))
    at = moment("2026-07-10", 10)
    assert allowed(again, at) == allowed(org, at)
