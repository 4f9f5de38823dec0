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
from dutyline.orgmodel.document import Organisation
from dutyline.orgmodel.validate import parse_organisation
from dutyline.orgmodel.windows import instant, zone
from tests.strategies import DAYS, organisations

REPO = Path(__file__).resolve().parents[2]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(org=organisations(), day=st.sampled_from(DAYS), hour=st.integers(0, 23), data=st.data())
def test_fast_path_agrees_with_plain_casbin_on_generated_organisations(
    org: Organisation, day: str, hour: int, data: st.DataObject
) -> None:
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
