"""ApprovalService directly: opening from a decision, the inbox, who may decide and why not, escalation up the
chain, and the approval taken by the decision path. The organisation is the counter (tests/data/workflow)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from dutyline.errors import Conflict, Forbidden, Invalid, NotFound
from dutyline.runtime import Runtime
from dutyline.services.approvals import ApprovalRecord, ChainStep, NotApprovable
from dutyline.services.decisions import Answer, Question
from dutyline.store import approvals as store
from tests.services.conftest import COUNTER, new_id

pytestmark = pytest.mark.live


def entry(subject: str = "ann", amount: float = 20000, **context: Any) -> Question:
    return Question(
        subject,
        "transaction",
        "enter",
        organisation=COUNTER,
        resource_id=new_id(),
        context={"amount": amount, **context},
    )


def answered(runtime: Runtime, question: Question) -> Answer:
    return runtime.decisions.answer(question)


def open_for(runtime: Runtime, question: Question | None = None, uses: int = 1) -> ApprovalRecord:
    question = question or entry()
    answer = answered(runtime, question)
    request = {"organisation": COUNTER, "subject": {"id": question.subject_id}, "context": dict(question.context or {})}
    return runtime.approvals.open(answer, request, "customer is waiting", uses)


def test_a_request_above_the_limit_opens_an_approval_at_the_nearest_post_that_covers_it(runtime: Runtime) -> None:
    approval = open_for(runtime)
    assert (approval.status, approval.requester, approval.requester_posts) == ("pending", "ann", ["teller"])
    assert approval.rules == ["entry_limit"] and (approval.level, approval.post) == (0, "manager")
    assert approval.chain == [ChainStep("manager", ["mia", "kay", "rob"]), ChainStep("director", ["dan"])]
    assert [e.kind for e in approval.events] == ["requested"]
    assert runtime.approvals.get(approval.id) == approval
    assert runtime.approvals.organisation_of(approval.id) == COUNTER


def test_a_request_decided_needs_approval_opens_one_keeping_the_request_as_it_was_asked(runtime: Runtime) -> None:
    question = replace(entry(), subject_properties={"desk": 3}, resource_properties={"branch": "north"})
    approval = runtime.approvals.open_for(question, "customer is waiting", uses=2, at="2026-08-05T10:00")
    assert (approval.status, approval.requester, approval.post, approval.uses) == ("pending", "ann", "manager", 2)
    assert (approval.comment, [e.kind for e in approval.events]) == ("customer is waiting", ["requested"])
    assert approval.request == {
        "subject": {"id": "ann", "type": "person", "properties": {"desk": 3}},
        "resource": {"type": "transaction", "id": question.resource_id, "properties": {"branch": "north"}},
        "action": "enter",
        "at": "2026-08-05T10:00",
        "context": {"amount": 20000},
    }
    assert approval.digest is not None and approval.approved_amounts == {"context.amount": 20000}
    assert runtime.approvals.get(approval.id) == approval


@pytest.mark.parametrize(
    ("question", "outcome"),
    [
        (entry(amount=5000), "allow"),  # within the teller's limit
        (Question("ann", "transaction", "authorize", organisation=COUNTER), "deny"),  # no duty to authorise
    ],
)
def test_opening_for_a_request_decided_allow_or_deny_is_refused_with_its_answer(
    runtime: Runtime, question: Question, outcome: str
) -> None:
    with pytest.raises(NotApprovable, match=f"decided {outcome!r}") as refused:
        runtime.approvals.open_for(question, "")
    answer = refused.value.answer
    assert isinstance(refused.value, Conflict) and answer.outcome == outcome
    assert answer.question == question, "the answer is the decision of the request asked"
    mine = runtime.approvals.list(organisation=COUNTER, requester="ann", limit=1000)
    assert question.resource_id is None or question.resource_id not in [a.resource.id for a in mine]


def test_opening_for_a_request_with_uses_out_of_range_is_invalid_naming_uses(runtime: Runtime) -> None:
    with pytest.raises(Invalid, match="uses: must be a whole number") as refused:
        runtime.approvals.open_for(entry(), "", uses=0)
    assert [i.path for i in refused.value.issues] == ["uses"]


@pytest.mark.parametrize(
    ("question", "outcome"),
    [
        (entry(amount=5000), "allow"),  # within the teller's limit
        (Question("ann", "transaction", "authorize", organisation=COUNTER), "deny"),  # no duty to authorise
    ],
)
def test_only_a_needs_approval_decision_opens_an_approval(runtime: Runtime, question: Question, outcome: str) -> None:
    answer = answered(runtime, question)
    with pytest.raises(NotApprovable, match="nothing to approve") as refused:
        runtime.approvals.open(answer, {}, "")
    assert isinstance(refused.value, Conflict) and refused.value.answer.outcome == outcome


def test_an_approval_is_requested_by_a_person_not_a_post(runtime: Runtime) -> None:
    answer = answered(
        runtime,
        Question(
            "teller", "transaction", "enter", organisation=COUNTER, subject_type="post", context={"amount": 20000}
        ),
    )
    with pytest.raises(Invalid, match=r"subject\.type") as refused:
        runtime.approvals.open(answer, {}, "")
    assert [i.path for i in refused.value.issues] == ["subject.type"]


@pytest.mark.parametrize("uses", [0, -1, 101, True, 1.5, "2"])
def test_uses_outside_one_to_the_maximum_are_invalid_naming_uses(runtime: Runtime, uses: object) -> None:
    with pytest.raises(Invalid, match="uses: must be a whole number from 1 to 100") as refused:
        open_for(runtime, uses=uses)  # type: ignore[arg-type]
    assert [i.path for i in refused.value.issues] == ["uses"]


def test_the_inbox_lists_approvals_waiting_at_a_post_the_person_holds_now(runtime: Runtime) -> None:
    approval = open_for(runtime)

    def inbox(person: str) -> list[str]:
        return [a.id for a in runtime.approvals.list(organisation=COUNTER, approver=person)]

    assert approval.id in inbox("mia") and approval.id in inbox("mia@counter.example")
    assert approval.id in inbox("rob"), "an acting holder inside the window"
    for outside in ("tom", "dan", "ann"):  # window over; the next level; the requester
        assert approval.id not in inbox(outside), outside
    assert approval.id in [a.id for a in runtime.approvals.list(organisation=COUNTER, requester="ann")]


def test_inbox_filters_are_checked_and_name_what_is_wrong(runtime: Runtime) -> None:
    with pytest.raises(Invalid, match="status: 'maybe' is not one of pending, approved, rejected") as refused:
        runtime.approvals.list(organisation=COUNTER, status="maybe")
    assert [i.path for i in refused.value.issues] == ["status"]
    with pytest.raises(NotFound, match="person 'nobody' not found in 'test_counter'"):
        runtime.approvals.list(organisation=COUNTER, approver="nobody")
    with pytest.raises(NotFound, match="organisation 'nowhere' not found"):
        runtime.approvals.list(organisation="nowhere", approver="mia")


@pytest.mark.parametrize(
    ("person", "context", "reason"),
    [
        ("ann", {}, "ann requested this approval and may not decide it"),
        ("bob", {}, "bob does not hold manager now"),
        ("tom", {}, "tom does not hold manager now"),  # acting window over
        ("dan", {}, "dan does not hold manager now"),  # a higher post: the approval waits at the manager's level
        ("mia", {"maker": "mia"}, "mia is the maker of this request (context.maker)"),
        ("mia", {"requester": "mia@counter.example"}, "mia is the requester of this request (context.requester)"),
        ("kay", {}, "separation of duties reviewer_not_teller: kay holds reviewer"),
        ("stranger", {}, "'stranger' is not a person of 'test_counter'"),
    ],
)
def test_who_may_not_decide_is_forbidden_saying_why(runtime: Runtime, person: str, context: dict, reason: str) -> None:
    approval = open_for(runtime, entry(**context))
    for approve in (True, False):
        with pytest.raises(Forbidden) as refused:
            runtime.approvals.decide(approval.id, person, approve, "")
        assert reason in str(refused.value)
    assert runtime.approvals.get(approval.id).status == "pending"


def test_an_acting_holder_approves_once_and_a_second_decision_is_a_conflict(runtime: Runtime) -> None:
    approval = open_for(runtime)
    approved = runtime.approvals.decide(approval.id, "rob", True, "checked the customer")
    assert (approved.status, approved.decided_by, approved.decision_comment) == (
        "approved",
        "rob",
        "checked the customer",
    )
    assert approved.expires_at is not None and approved.due_at is None
    assert [e.kind for e in approved.events] == ["requested", "approved"]
    with pytest.raises(Conflict, match=f"approval {approval.id} is already approved \\(by rob\\)"):
        runtime.approvals.decide(approval.id, "mia", False, "")


def test_deciding_an_unknown_approval_is_not_found(runtime: Runtime) -> None:
    for call in (
        lambda: runtime.approvals.decide("apv_nope", "mia", True, ""),
        lambda: runtime.approvals.get("apv_nope"),
        lambda: runtime.approvals.organisation_of("apv_nope"),
    ):
        with pytest.raises(NotFound, match="approval 'apv_nope' not found"):
            call()


def test_an_overdue_approval_moves_up_its_chain_then_stays_at_the_top(runtime: Runtime) -> None:
    approval = open_for(runtime)
    now = dt.datetime.now(dt.UTC)
    for expected in ("director", None):
        with runtime.sessions.begin() as session:
            row = store.get(session, approval.id)
            assert row is not None
            moved = runtime.approvals.escalate(session, row, now, "scheduler")
        assert moved is not None and moved.to_post == expected
    after = runtime.approvals.get(approval.id)
    assert (after.post, after.level, after.due_at) == ("director", 1, None)
    assert [e.kind for e in after.events] == ["requested", "escalated", "overdue"]
    assert runtime.approvals.decide(approval.id, "dan", True, "").status == "approved"


def test_an_escalation_on_a_stale_revision_changes_nothing(runtime: Runtime) -> None:
    approval = open_for(runtime)
    with runtime.sessions() as session:
        stale = store.get(session, approval.id)
    runtime.approvals.decide(approval.id, "mia", False, "no")
    with runtime.sessions.begin() as session:
        assert stale is not None
        assert runtime.approvals.escalate(session, stale, dt.datetime.now(dt.UTC), "scheduler") is None
    assert runtime.approvals.get(approval.id).status == "rejected"


def test_an_approved_request_presented_with_its_approval_is_allowed_and_takes_its_use(runtime: Runtime) -> None:
    question = entry()
    approval = open_for(runtime, question)
    runtime.approvals.decide(approval.id, "mia", True, "")
    through = runtime.decisions.answer(replace(question, approval_id=approval.id))
    assert through.outcome == "allow" and through.used_approval is not None
    assert runtime.approvals.get(approval.id).uses_left == 0
    again = runtime.decisions.answer(replace(question, approval_id=approval.id))
    assert again.outcome == "needs_approval", "a single-use approval is used up"


def test_a_resource_id_longer_than_256_characters_cannot_be_approved_and_says_so(runtime: Runtime) -> None:
    """The column holds 256 (a check takes up to 1,024): PostgreSQL refused a longer one with a database error."""
    question = replace(entry(), resource_id="r" * 257)
    with pytest.raises(Invalid, match=r"resource\.id: at most 256 characters") as refused:
        open_for(runtime, question)
    assert [i.path for i in refused.value.issues] == ["resource.id"]
    assert open_for(runtime, replace(entry(), resource_id="r" * 256)).resource.id == "r" * 256
