"""Every call of both clients against the live server: one walk through the decision API that reaches every
operation of the document's decision API (checked: the operations sent are recorded by the conftest), run once
with `Client` and once with `AsyncClient`, so that the two answer alike.

The organisation is tests/data/workflow/test_counter.yaml: teller (ann, bob, tom) → manager (mia; kay and rob
acting) → deputy (vacant) → director (dan); a teller may enter up to 10000 without approval.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest

from dutyline_client import (
    OPERATIONS,
    Action,
    AsyncClient,
    CheckError,
    CheckResult,
    Client,
    EvaluationItem,
    PolicyChange,
    Resource,
    Retries,
    Subject,
    check_request,
)
from tests.aio import run_apart
from tests.clients.conftest import Dutyline, Sent

ORG = "test_counter"


def new_id() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


class Awaited:
    """A sync `Client` with its methods awaitable, so that one walk runs both clients."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self._client, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call


async def every_call(api: Any) -> None:

    # --- /v1/check, /v1/checks
    allowed = await api.check(ORG, "ann", "transaction", "enter", resource_id=new_id(), context={"amount": 5000})
    assert allowed.decision == "allow" and allowed.allowed and allowed.decision_id and allowed.policy_version > 0
    assert allowed.reasons and allowed.reasons[0].post == "teller" and allowed.reasons[0].duty is not None
    above = await api.check(ORG, "ann", "transaction", "enter", resource_id=new_id(), context={"amount": 20000})
    assert above.needs_approval and [r.rule for r in above.rules] == ["entry_limit"]
    assert [(s.post, s.people) for s in above.approvers] == [("manager", ["mia", "kay", "rob"]), ("director", ["dan"])]
    denied = await api.check(ORG, "ann", "transaction", "authorize", resource_id="t1")
    assert denied.decision == "deny" and denied.code
    counted = await api.check(ORG, "ann", "cash_box", "count", context={"discrepancy": 5})
    assert counted.allowed and [o.notify for o in counted.obligations] == ["manager"]
    batch = await api.checks(
        [
            check_request(ORG, "ann", "transaction", "enter", resource_id="t1", context={"amount": 5000}),
            check_request(ORG, "ann", "transaction", "enter", at="yesterday"),
        ],
        at_least_version=allowed.policy_version,
    )
    assert isinstance(batch.results[0], CheckResult) and batch.results[0].allowed
    assert isinstance(batch.results[1], CheckError) and batch.results[1].error.status == 400
    assert batch.policy_version >= allowed.policy_version

    # --- AuthZEN, at the top level and per organisation
    ann, enter = Subject(type="user", id="ann"), Action(name="enter")
    small = Resource(type="transaction", id="t1", properties={"organisation": ORG})
    decision = await api.evaluation(ann, enter, small, {"amount": 5000})
    assert decision.decision is True and decision.context is None
    explained = await api.evaluation(ann, enter, small, {"amount": 20000}, explain=True, organisation=ORG)
    assert explained.decision is False and explained.context is not None
    assert explained.context.dutyline is not None and explained.context.dutyline.outcome == "needs_approval"
    results = await api.evaluations(
        [EvaluationItem(context={"amount": 5000}), EvaluationItem(action=Action(name="authorize"))],
        subject=ann,
        action=enter,
        resource=small,
    )
    assert [d.decision for d in results.evaluations] == [True, False]
    stopped = await api.evaluations(
        [EvaluationItem(action=Action(name="authorize")), EvaluationItem(context={"amount": 5000})],
        subject=ann,
        action=enter,
        resource=small,
        semantic="deny_on_first_deny",
        organisation=ORG,
    )
    assert [d.decision for d in stopped.evaluations] == [False]
    view = Action(name="view")
    who_view = await api.search_subjects("user", view, Resource(type="transaction", id="t1"), {"organisation": ORG})
    assert {"ann", "mia", "dan"} <= {f.id for f in who_view.results} and who_view.page.next_token == ""
    first = await api.search_subjects("user", view, Resource(type="transaction", id="t1"), limit=2, organisation=ORG)
    assert len(first.results) == 2 and first.page.next_token
    rest = await api.search_subjects(
        "user", view, Resource(type="transaction", id="t1"), page_token=first.page.next_token, organisation=ORG
    )
    assert {f.id for f in first.results + rest.results} == {f.id for f in who_view.results}
    found = await api.search_resources(ann, view, "transaction", {"organisation": ORG})
    assert all(f.type == "transaction" for f in found.results)
    found_here = await api.search_resources(ann, view, "transaction", organisation=ORG)
    assert found_here.results == found.results
    actions = await api.search_actions(ann, Resource(type="transaction", id="t1"), {"organisation": ORG})
    assert "view" in {a.name for a in actions.results} and "authorize" not in {a.name for a in actions.results}
    actions_here = await api.search_actions(ann, Resource(type="transaction", id="t1"), organisation=ORG)
    assert actions_here.results == actions.results
    metadata = await api.configuration()
    assert metadata.access_evaluation_endpoint.endswith("/access/v1/evaluation")
    tenant = await api.configuration(ORG)
    assert tenant.policy_decision_point.endswith(f"/orgs/{ORG}")

    # --- queries
    held = await api.permissions(ORG, "ann")
    assert ("transaction", "enter") in {(p.resource, p.action) for p in held.permissions}
    may = await api.who(ORG, "transaction", "authorize", limit=1)
    assert may.total_people >= 2 and len(may.people) == 1 and may.next_token
    assert "manager" in {p.id for p in may.posts}
    line = await api.reporting_line(ORG, "teller")
    assert [s.post for s in line.line] == ["manager", "deputy", "director"] and line.line[1].vacant
    log = await api.decisions(organisation=ORG, limit=5)
    assert len(log.items) <= 5  # written in batches by a writer thread: what is there, typed

    # --- approvals: open, inbox, get, approve, present, reject
    resource_id = new_id()
    opened = await api.open_approval(
        ORG, "ann", "transaction", "enter", resource_id=resource_id, context={"amount": 20000}, comment="waiting"
    )
    assert opened.status == "pending" and opened.post == "manager" and opened.rules == ["entry_limit"]
    inbox = await api.approvals(organisation=ORG, approver="mia")
    assert opened.id in {a.id for a in inbox}
    assert (await api.approval(opened.id)).events[0].kind == "requested"
    approved = await api.approve(opened.id, "mia", comment="fine")
    assert approved.status == "approved" and approved.decided_by == "mia" and approved.uses_left == 1
    presented = await api.check(
        ORG, "ann", "transaction", "enter", resource_id=resource_id, context={"amount": 20000}, approval_id=opened.id
    )
    assert presented.allowed and presented.approval is not None and presented.approval.uses_left == 0
    other = await api.open_approval(ORG, "ann", "transaction", "enter", resource_id=new_id(), context={"amount": 30000})
    rejected = await api.reject(other.id, "mia", comment="no")
    assert rejected.status == "rejected"

    # --- the access request profile: requestable denial, access request, task, approval, re-evaluation, cancel
    ann, enter, asked = Subject(type="user", id="ann"), Action(name="enter"), Resource(type="transaction", id=new_id())
    denied = await api.evaluation(ann, enter, asked, {"amount": 20000}, organisation=ORG)
    assert not denied.decision and denied.context.access_request is not None
    assert (await api.access_request_schema())["type"] == "object"
    task = await api.submit_access_request(denied, ann, enter, asked, {"amount": 20000}, justification="waiting")
    assert (await api.task_status(task.task.id)).task.status == "pending"
    [waiting] = [a for a in await api.approvals(organisation=ORG, approver="mia") if a.resource.id == asked.id]
    await api.approve(waiting.id, "mia")
    done = await api.task_status(task.task.id)
    assert done.task.status == "approved" and done.result is not None
    again = await api.reevaluate(ann, enter, asked, done.result.approval, {"amount": 20000}, organisation=ORG)
    assert again.decision and again.context.approval.id == waiting.id
    withdrawn = Resource(type="transaction", id=new_id())
    second = await api.evaluation(ann, enter, withdrawn, {"amount": 20000}, organisation=ORG)
    pending = await api.submit_access_request(second, ann, enter, withdrawn, {"amount": 20000})
    assert (await api.cancel_access_request(pending.task.id)).task.status == "cancelled"

    # --- cases and notifications
    case = await api.open_case(ORG, "complaint", "a customer waited an hour", subject="ann", data={"desk": 3})
    assert case.status == "open" and case.post == "manager" and case.data == {"desk": 3}
    assert case.id in {c.id for c in await api.cases(organisation=ORG)}
    assert (await api.case(case.id)).events
    resolved = await api.resolve_case(case.id, "mia", comment="apologised")
    assert resolved.status == "resolved" and resolved.resolved_by == "mia"
    told = await api.notifications(organisation=ORG, post="manager")
    assert opened.id in {n.subject_id for n in told if n.kind == "approval_requested"}

    # --- usage, exact decimals both ways
    entry = await api.record_usage(ORG, "bob", "daily_cash", Decimal("100.10"))
    assert entry.amount == Decimal("100.10") and entry.total >= Decimal("100.10")
    total = await api.usage_total(ORG, "bob", "daily_cash")
    assert total.total == entry.total
    reversal = await api.reverse_usage(ORG, "bob", "daily_cash", entry.id)
    assert reversal.amount == Decimal("-100.10") and reversal.reverses == entry.id

    # --- the change stream, from the beginning: the counter's first version (tests/clients/test_changes.py goes on)
    first_change = await _first_change(api)
    assert isinstance(first_change, PolicyChange) and first_change.organisations == [ORG]
    assert first_change.documents[0].kind in ("org", "rules") and first_change.policy_version > 0


async def _first_change(api: Any) -> Any:
    """The first event of `changes(since=0)`, then hung up: an iterator of the sync client (awaited through
    `Awaited`), an async one of the async client."""
    stream = api.changes(since=0, organisations=[ORG])
    if inspect.iscoroutine(stream):
        stream = await stream
    if hasattr(stream, "__anext__"):
        item = await anext(stream)
        await stream.aclose()
        return item
    item = next(stream)
    stream.close()
    return item


def _operations_sent(sent: list[Sent]) -> set[str]:
    return {s.operation for s in sent if 200 <= s.status < 300}


def test_the_sync_client_makes_every_call_of_the_decision_api(dutyline: Dutyline, sent: list[Sent]) -> None:

    with Client(dutyline.url, token=dutyline.token) as client:
        run_apart(every_call(Awaited(client)))
    missing = sorted(OPERATIONS.keys() - _operations_sent(sent))
    assert not missing, f"the walk did not reach {missing}"


def test_the_async_client_makes_every_call_of_the_decision_api(dutyline: Dutyline, sent: list[Sent]) -> None:

    async def walk() -> None:
        async with AsyncClient(dutyline.url, token=dutyline.token) as client:
            await every_call(client)

    run_apart(walk())
    missing = sorted(OPERATIONS.keys() - _operations_sent(sent))
    assert not missing, f"the walk did not reach {missing}"


def test_one_async_client_answers_many_checks_at_once_over_its_pool(dutyline: Dutyline) -> None:

    async def many() -> list[str]:
        async with AsyncClient(dutyline.url, token=dutyline.token) as client:
            results = await asyncio.gather(
                *(
                    client.check(ORG, "ann", "transaction", "enter", resource_id=f"t{i}", context={"amount": 200 * i})
                    for i in range(1, 101)
                )
            )
        return [r.decision for r in results]

    decisions = run_apart(many())
    assert decisions == ["allow"] * 50 + ["needs_approval"] * 50  # above 10000 from i = 51


@pytest.mark.parametrize("fail_open", [False, True])
def test_the_async_client_answers_itself_when_dutyline_cannot_be_reached(fail_open: bool, unused_port: int) -> None:

    async def ask() -> tuple[bool, bool]:
        async with AsyncClient(
            f"http://127.0.0.1:{unused_port}", retries=Retries(attempts=1, backoff=0.01), fail_open=fail_open
        ) as client:
            result = await client.check(ORG, "ann", "transaction", "enter")
            decision = await client.evaluation(
                Subject(type="user", id="ann"), Action(name="enter"), Resource(type="transaction", id="t1")
            )
        return result.allowed, decision.decision

    assert run_apart(ask()) == (fail_open, fail_open)
