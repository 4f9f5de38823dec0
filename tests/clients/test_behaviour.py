"""What a production caller relies on, against the live server: typed errors with the server's message and issues,
the approval flow end to end, bearer tokens, retries (on a 503 and a connection error, never on a 4xx or a
deny), read-your-writes after the caller's own change, the decision cache, and the fail-closed answer when
Dutyline cannot be reached."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dutyline_client import (
    NO_RETRIES,
    Action,
    Client,
    Conflict,
    DecisionCache,
    Forbidden,
    InvalidRequest,
    NotFound,
    Resource,
    Retries,
    Subject,
    Unauthenticated,
    Unreachable,
    check_request,
)
from tests.clients.conftest import Dutyline, Sent
from tests.conftest import REPO

ORG = "test_counter"
CHECK = "POST /v1/check"


def new_id() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client(dutyline: Dutyline) -> Any:

    with Client(dutyline.url, token=dutyline.token, retries=Retries(attempts=3, backoff=0.01)) as made:
        yield made


def eventually(probe: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def tries(sent: list[Sent], operation: str = CHECK) -> list[int]:
    return [s.status for s in sent if s.operation == operation]


# --- errors ------------------------------------------------------------------------------------------------


def test_a_bad_request_is_an_invalid_request_naming_the_field(client: Any, sent: list[Sent]) -> None:

    with pytest.raises(InvalidRequest) as raised:
        client.check(ORG, "ann", "transaction", "enter", at="yesterday")
    assert raised.value.status == 400 and raised.value.error == "invalid"
    assert "at:" in raised.value.message and [i.path for i in raised.value.issues] == ["at"]
    assert tries(sent) == [400], "a 4xx is never retried"


def test_an_unknown_approval_is_not_found_and_a_decided_one_a_conflict(client: Any) -> None:

    with pytest.raises(NotFound) as missing:
        client.approval("apv_nothing")
    assert missing.value.status == 404 and "apv_nothing" in missing.value.message
    opened = client.open_approval(ORG, "ann", "transaction", "enter", resource_id=new_id(), context={"amount": 20000})
    client.reject(opened.id, "mia")
    with pytest.raises(Conflict) as late:
        client.approve(opened.id, "mia")
    assert late.value.status == 409 and late.value.decision is None


def test_opening_an_approval_for_an_allowed_request_is_a_conflict_carrying_the_decision(client: Any) -> None:

    with pytest.raises(Conflict) as raised:
        client.open_approval(ORG, "ann", "transaction", "enter", resource_id="t1", context={"amount": 5000})
    assert raised.value.decision is not None and raised.value.decision.decision == "allow"
    assert "nothing to approve" in raised.value.message


def test_the_requester_may_not_approve_their_own_request(client: Any) -> None:

    opened = client.open_approval(ORG, "ann", "transaction", "enter", resource_id=new_id(), context={"amount": 20000})
    with pytest.raises(Forbidden) as raised:
        client.approve(opened.id, "ann")
    assert raised.value.status == 403 and raised.value.message


def test_without_a_token_or_with_a_wrong_one_the_caller_is_unauthenticated(dutyline: Dutyline) -> None:

    for token in (None, "not-a-token"):
        with Client(dutyline.url, token=token) as anonymous, pytest.raises(Unauthenticated) as raised:
            anonymous.check(ORG, "ann", "transaction", "view")
        assert raised.value.status == 401 and "token" in raised.value.message


# --- the approval flow -------------------------------------------------------------------------------------


def test_a_needs_approval_is_opened_approved_and_presented_once(client: Any) -> None:
    resource_id, context = new_id(), {"amount": 20000}
    asked = client.check(ORG, "ann", "transaction", "enter", resource_id=resource_id, context=context)
    assert asked.needs_approval and asked.approvers[0].post == "manager" and "mia" in asked.approvers[0].people
    opened = client.open_approval(ORG, "ann", "transaction", "enter", resource_id=resource_id, context=context)
    assert opened.id in {a.id for a in client.approvals(organisation=ORG, approver="mia")}
    client.approve(opened.id, "mia")
    allowed = client.check(
        ORG, "ann", "transaction", "enter", resource_id=resource_id, context=context, approval_id=opened.id
    )
    assert allowed.allowed and allowed.approval is not None and allowed.approval.approved_by == "mia"
    again = client.check(
        ORG, "ann", "transaction", "enter", resource_id=resource_id, context=context, approval_id=opened.id
    )
    assert again.needs_approval and again.reasons[-1].code == "approval_not_applied"
    assert "used up" in again.reasons[-1].en


# --- retries and read-your-writes --------------------------------------------------------------------------


def _change_the_counter(database_url: str, folder: Path) -> int:
    """A change of the caller's own: the test counter imported with another name. The policy version it made."""
    from dutyline.services.orgs import import_paths
    from dutyline.store.db import make_engine, session_factory

    text = (REPO / "tests" / "data" / "workflow" / "test_counter.yaml").read_text(encoding="utf-8")
    path = folder / "test_counter.yaml"
    path.write_text(text.replace("en: Test counter}", f"en: Test counter {uuid.uuid4().hex[:6]}}}"), encoding="utf-8")
    engine = make_engine(database_url)
    try:
        [saved] = import_paths(session_factory(engine), [path], author="tests")
    finally:
        engine.dispose()
    assert saved.changed
    return saved.version


def test_a_check_waiting_for_the_callers_change_retries_503s_until_it_is_applied(
    client: Any, dutyline: Dutyline, sent: list[Sent], tmp_path: Path
) -> None:

    now = client.check(ORG, "ann", "transaction", "view").policy_version
    patient = Client(dutyline.url, token=dutyline.token, retries=Retries(attempts=50, backoff=0.05, max_backoff=0.2))
    answers: list[Any] = []
    waiting = threading.Thread(
        target=lambda: answers.append(patient.check(ORG, "ann", "transaction", "view", at_least_version=now + 1))
    )
    waiting.start()
    try:
        assert eventually(lambda: 503 in tries(sent)), "the server never said it was not at that version yet"
        made = _change_the_counter(dutyline.server.database_url, tmp_path)
    finally:
        waiting.join(timeout=60)
        patient.close()
    [answer] = answers
    assert made >= now + 1 and not answer.answered_locally and answer.policy_version >= now + 1
    assert tries(sent)[-1] == 200 and set(tries(sent)[1:-1]) == {503}


def test_after_change_makes_every_check_wait_for_that_version(client: Any, dutyline: Dutyline, tmp_path: Path) -> None:
    made = _change_the_counter(dutyline.server.database_url, tmp_path)
    client.after_change(made)
    answer = client.check(ORG, "ann", "transaction", "view")
    assert answer.policy_version >= made and client.policy_version >= made


def test_a_version_never_applied_is_answered_fail_closed_after_the_retries(
    dutyline: Dutyline, sent: list[Sent], caplog: pytest.LogCaptureFixture
) -> None:

    with Client(dutyline.url, token=dutyline.token, retries=Retries(attempts=1, backoff=0.01)) as client:
        with caplog.at_level(logging.WARNING, logger="dutyline_client"):
            answer = client.check(ORG, "ann", "transaction", "view", at_least_version=2**31 - 1)
        assert tries(sent) == [503, 503], "one try and one retry"
        assert answer.decision == "deny" and answer.code == "dutyline_unavailable" and answer.answered_locally
        assert "not applied here yet" in answer.reasons[0].en and "fail closed" in answer.reasons[0].en
        assert "fail closed" in caplog.text


def test_a_deny_is_an_answer_never_retried(client: Any, sent: list[Sent]) -> None:
    denied = client.check(ORG, "ann", "transaction", "authorize", resource_id="t1")
    assert denied.decision == "deny" and tries(sent) == [200]


# --- fail closed -------------------------------------------------------------------------------------------


def test_an_unreachable_dutyline_is_a_deny_saying_so_after_the_retries(
    unused_port: int, sent: list[Sent], caplog: pytest.LogCaptureFixture
) -> None:

    with Client(f"http://127.0.0.1:{unused_port}", retries=Retries(attempts=2, backoff=0.01)) as client:
        with caplog.at_level(logging.WARNING, logger="dutyline_client"):
            answer = client.check(ORG, "ann", "transaction", "enter", context={"amount": 5})
        assert tries(sent) == [0, 0, 0], "the first try and two retries"
        assert answer.decision == "deny" and answer.code == "dutyline_unreachable" and answer.decision_id == ""
        assert "could not be reached" in answer.reasons[0].en and "fail closed" in answer.reasons[0].en
        assert answer.reasons[0].zh.startswith("无法连接")
        assert "could not be reached" in caplog.text and caplog.records[0].levelno == logging.WARNING
        batch = client.checks([check_request(ORG, "ann", "transaction", "view")] * 2)
        assert [r.decision for r in batch.results] == ["deny", "deny"]  # type: ignore[union-attr]
        decision = client.evaluation(Subject(type="user", id="ann"), Action(name="view"), Resource(type="t", id="1"))
        assert decision.decision is False and decision.context is not None and decision.context.reason_admin
        with pytest.raises(Unreachable):  # not a decision: nothing to fail closed to
            client.approvals(organisation=ORG)


def test_fail_open_allows_when_dutyline_cannot_be_reached_and_says_so(unused_port: int) -> None:

    with Client(f"http://127.0.0.1:{unused_port}", retries=NO_RETRIES, fail_open=True) as client:
        answer = client.check(ORG, "ann", "transaction", "enter")
    assert answer.allowed and "fail open" in answer.reasons[0].en


# --- the decision cache ------------------------------------------------------------------------------------


def test_the_cache_answers_a_repeated_check_until_a_newer_policy_version(
    dutyline: Dutyline, sent: list[Sent], tmp_path: Path
) -> None:

    with Client(dutyline.url, token=dutyline.token, cache=DecisionCache(maxsize=100, max_age=60)) as client:
        first = client.check(ORG, "ann", "transaction", "enter", resource_id="t1", context={"amount": 5000})
        second = client.check(ORG, "ann", "transaction", "enter", resource_id="t1", context={"amount": 5000})
        assert second == first and tries(sent) == [200], "the second answer came from the cache"
        client.check(ORG, "ann", "transaction", "enter", resource_id="t1", context={"amount": 5001})
        assert len(tries(sent)) == 2, "another request is another key"
        client.after_change(_change_the_counter(dutyline.server.database_url, tmp_path))
        third = client.check(ORG, "ann", "transaction", "enter", resource_id="t1", context={"amount": 5000})
        assert tries(sent).count(200) == 3 and third.policy_version > first.policy_version  # (a 503 while it applies)


def test_the_cache_keeps_no_answer_with_effects(dutyline: Dutyline, sent: list[Sent]) -> None:

    with Client(dutyline.url, token=dutyline.token, cache=True) as client:
        for _ in range(2):  # an allow with obligations: the server notifies on each decision
            client.check(ORG, "ann", "cash_box", "count", context={"discrepancy": 5})
        for _ in range(2):  # simulated: the console's simulator asks the server every time
            client.check(ORG, "ann", "transaction", "view", simulated=True)
        for _ in range(2):  # an approval presented takes a use
            client.check(ORG, "ann", "transaction", "view", approval_id="apv_unknown")
    assert len(tries(sent)) == 6


def test_the_cache_is_bounded(dutyline: Dutyline, sent: list[Sent]) -> None:

    cache = DecisionCache(maxsize=2, max_age=60)
    with Client(dutyline.url, token=dutyline.token, cache=cache) as client:
        for amount in (1, 2, 3, 1):
            client.check(ORG, "ann", "transaction", "enter", resource_id="t1", context={"amount": amount})
    assert len(cache) == 2 and len(tries(sent)) == 4, "the oldest answer (amount 1) was dropped for the third"
