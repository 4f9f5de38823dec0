"""CaseService directly: opening a case of a type at its owner post, who may resolve it, and its escalation up the
reporting line (vacant posts skipped) until the last step. The organisation is the counter."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from dutyline.errors import Conflict, Forbidden, Invalid, NotFound
from dutyline.runtime import Runtime
from dutyline.services.cases import CaseRecord, duration
from dutyline.store import cases as store
from tests.services.conftest import COUNTER

pytestmark = pytest.mark.live


def escalate(runtime: Runtime, case_id: str) -> str | None:
    """One escalation step, as the scheduler takes it (in its own transaction)."""
    with runtime.sessions.begin() as session:
        row = store.get(session, case_id)
        assert row is not None
        return runtime.cases.escalate(session, row, dt.datetime.now(dt.UTC), "scheduler")


def opened(runtime: Runtime, case_type: str = "complaint", **data: Any) -> CaseRecord:
    return runtime.cases.open(COUNTER, case_type, "queue too long", "customer 42", data)


def test_a_case_opens_at_its_types_owner_post_with_its_first_steps_timer(runtime: Runtime) -> None:
    case = opened(runtime, note="at the window")
    assert (case.status, case.post, case.step, case.type) == ("open", "manager", 0, "complaint")
    assert case.data == {"note": "at the window"} and case.subject == "customer 42"
    assert case.due_at is not None
    due = dt.datetime.fromisoformat(case.due_at) - dt.datetime.fromisoformat(case.created_at)
    assert due == dt.timedelta(seconds=0.6), "the first step: after 0.01m"
    assert [e.kind for e in case.events] == ["opened"]
    assert runtime.cases.organisation_of(case.id) == COUNTER


def test_opening_names_the_unknown_organisation_or_case_type(runtime: Runtime) -> None:
    with pytest.raises(NotFound, match="organisation 'nowhere' not found"):
        runtime.cases.open("nowhere", "complaint", "t", None, {})
    with pytest.raises(
        Invalid, match="type: 'nope' is not a case type of 'test_counter' \\(known: complaint, slow, to_the_top\\)"
    ) as refused:
        runtime.cases.open(COUNTER, "nope", "t", None, {})
    assert [i.path for i in refused.value.issues] == ["type"]


def test_a_holder_of_the_post_resolves_it_once(runtime: Runtime) -> None:
    case = opened(runtime)
    resolved = runtime.cases.resolve(case.id, "mia@counter.example", "called the customer back")
    assert (resolved.status, resolved.resolved_by, resolved.resolution) == (
        "resolved",
        "mia",
        "called the customer back",
    )
    assert resolved.due_at is None and [e.kind for e in resolved.events] == ["opened", "resolved"]
    with pytest.raises(Conflict, match=f"case {case.id} is already resolved \\(by mia\\)"):
        runtime.cases.resolve(case.id, "rob", "")


@pytest.mark.parametrize(
    ("person", "error", "message"),
    [
        ("ann", Forbidden, "ann holds none of the posts this case has been assigned to (manager)"),
        ("tom", Forbidden, "tom holds none of the posts"),  # acting window over
        ("stranger", Forbidden, "'stranger' is not a person of 'test_counter'"),
    ],
)
def test_who_holds_none_of_its_posts_may_not_resolve_it(
    runtime: Runtime, person: str, error: type, message: str
) -> None:
    case = opened(runtime)
    with pytest.raises(error) as refused:
        runtime.cases.resolve(case.id, person, "")
    assert message in str(refused.value)
    assert runtime.cases.get(case.id).status == "open"


def test_an_unknown_case_is_not_found(runtime: Runtime) -> None:
    for call in (
        lambda: runtime.cases.get("case_nope"),
        lambda: runtime.cases.resolve("case_nope", "mia", ""),
        lambda: runtime.cases.organisation_of("case_nope"),
    ):
        with pytest.raises(NotFound, match="case 'case_nope' not found"):
            call()


def test_an_unresolved_case_skips_the_vacant_deputy_and_reaches_the_director(runtime: Runtime) -> None:
    case = opened(runtime)
    assert escalate(runtime, case.id) == "director", "to: superior is the nearest post above with a holder"
    after = runtime.cases.get(case.id)
    assert (after.status, after.post, after.step) == ("escalated", "director", 1)
    assert runtime.cases.resolve(case.id, "mia", "").status == "resolved", "a post it was assigned to before"


def test_after_the_last_step_a_case_stays_at_the_top_with_no_more_timer(runtime: Runtime) -> None:
    case = opened(runtime, "to_the_top")
    assert escalate(runtime, case.id) == "director"
    assert escalate(runtime, case.id) == "", "no post above the director: it stays"
    after = runtime.cases.get(case.id)
    assert (after.post, after.step, after.due_at) == ("director", 2, None)
    assert [e.kind for e in after.events] == ["opened", "escalated", "overdue"]


def test_the_case_list_filters_by_status_and_post_and_checks_the_status(runtime: Runtime) -> None:
    case = opened(runtime, "slow")
    listed = runtime.cases.list(COUNTER, "open", "teller")
    assert case.id in [c.id for c in listed] and all(c.post == "teller" for c in listed)
    assert case.id not in [c.id for c in runtime.cases.list(COUNTER, "resolved", None)]
    with pytest.raises(Invalid, match="status: 'closed' is not one of open, escalated, resolved") as refused:
        runtime.cases.list(COUNTER, "closed", None)
    assert [i.path for i in refused.value.issues] == ["status"]


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("4h", 14400), ("2d", 172800), ("0.5m", 30)])
def test_a_step_duration_is_minutes_hours_or_days(text: str, seconds: float) -> None:
    assert duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "5", "5s", "-1d", "1.d", "d"])
def test_anything_else_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        duration(text)


def test_a_subject_longer_than_256_characters_is_invalid_naming_it(runtime: Runtime) -> None:
    """The column holds 256 (the API took up to 1,024): PostgreSQL refused a longer one with a database error, a 500."""
    with pytest.raises(Invalid, match="subject: at most 256 characters") as refused:
        runtime.cases.open(COUNTER, "complaint", "t", "s" * 257, {})
    assert [i.path for i in refused.value.issues] == ["subject"]
    assert runtime.cases.open(COUNTER, "complaint", "t", "s" * 256, {}).subject == "s" * 256
