"""Issue 11 item 6: an approval allows only the request it was opened for, a limited number of times, for a limited
time. Real servers on SQLite and PostgreSQL, the seed organisations and rule packs, real HTTP.

Attacks as the issue tried them: an approval opened for a +5 % contract price change presented for +50 % and -30 %
on the same contract; one approval presented for repeat claims, and after the budget it was given against ran out;
one opened without a resource id presented for other id-less requests; an approval presented after it expired; two
presentations of a single-use approval at the same moment, on two server processes sharing the database.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import POSTGRES_URL, _backends, fresh_database
from tests.hardening.conftest import Stack, load_content
from tests.live import LiveServer

AT = "2026-07-06T10:00"  # a Monday morning: inside every seed's business hours


@pytest.fixture(scope="module", params=_backends())
def database(request: pytest.FixtureRequest, stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database holding the seeds, of each backend (the shared stack's where it is that backend)."""
    if request.param == ("postgresql" if POSTGRES_URL else "sqlite"):
        yield stack.database_url
        return
    with fresh_database(request.param, tmp_path_factory.mktemp("approvals")) as url:
        load_content(url)
        yield url


@pytest.fixture(scope="module")
def server(database: str, stack: Stack) -> Iterator[LiveServer]:
    if database == stack.database_url:
        yield stack.server
        return
    started = LiveServer(database)
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def replica(database: str) -> Iterator[LiveServer]:
    """A second server process on the same database, as a second replica would be."""
    started = LiveServer(database)
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


def _post(server: LiveServer, path: str, body: object) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body, timeout=30)


def request(org: str, person: str, resource: str, action: str, resource_id: str | None = None, **context: Any) -> dict:
    body: dict[str, Any] = {
        "organisation": org,
        "subject": {"id": person},
        "resource": {"type": resource},
        "action": action,
        "at": AT,
        "context": context,
    }
    if resource_id is not None:
        body["resource"]["id"] = resource_id
    return body


def check(server: LiveServer, body: dict, approval: dict | None = None) -> dict:
    response = _post(server, "/v1/check", body | ({"approval_id": approval["id"]} if approval else {}))
    assert response.status_code == 200, response.text
    return response.json()


def approved(server: LiveServer, body: dict, approver: str, uses: int = 1) -> dict:
    """Open an approval for `body` (which must need one) and have `approver` approve it."""
    opened = _post(server, "/v1/approvals", body | {"uses": uses})
    assert opened.status_code == 201, opened.text
    decided = _post(server, f"/v1/approvals/{opened.json()['id']}/approve", {"person": approver})
    assert decided.status_code == 200, decided.text
    return decided.json()


def why(answer: dict) -> str:
    """The reason the answer gives about the approval it was presented with."""
    return next(r["en"] for r in answer["reasons"] if r["code"] in ("approved", "approval_not_applied"))


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def price_change(contract: str | None, pct: float, currency: str = "CNY") -> dict:
    return request(
        "logistics",
        "zhang_min",
        "contract",
        "renew",
        contract,
        annual_value=300000,
        currency=currency,
        price_change_pct=pct,
    )


# --- bound to the request -----------------------------------------------------------------------------------------


def test_an_approval_of_a_5_percent_price_change_covers_neither_50_nor_minus_30_percent(server: LiveServer) -> None:
    contract = new_id("c")
    assert check(server, price_change(contract, 5))["decision"] == "needs_approval"
    approval = approved(server, price_change(contract, 5), "lin_guoqiang", uses=2)
    for pct in (50, -30, 0.5, 6):
        answer = check(server, price_change(contract, pct), approval)
        assert answer["decision"] == "needs_approval", pct
        assert (
            why(answer) == f"approval {approval['id']} was for a different request (context.price_change_pct differs)"
        )
        assert "approval" not in answer
    another = check(server, price_change(new_id("c"), 5), approval)
    assert another["decision"] == "needs_approval" and "(resource.id differs)" in why(another)
    assert _get(server, approval)["uses_left"] == 2, "refused presentations take no use"
    # The same request, written differently, is the same request: 5.0 is 5, " cny " is CNY.
    assert check(server, price_change(contract, 5.0), approval)["decision"] == "allow"
    assert check(server, price_change(contract, 5, currency=" cny "), approval)["decision"] == "allow"


def test_an_approval_of_an_amount_covers_less_never_more_nor_its_negative(server: LiveServer) -> None:
    transaction = new_id("t")
    enter = lambda amount: request(
        "ninger_branch",
        "huang_wei",
        "transaction",
        "enter",
        transaction,
        amount=amount,
        currency="CNY",
    )
    assert check(server, enter(120000))["decision"] == "needs_approval", "above the teller's 50,000"
    approval = approved(server, enter(120000), "wang_fang", uses=2)
    more = check(server, enter(120001), approval)
    assert more["decision"] == "needs_approval" and "approval" not in more
    assert why(more) == f"approval {approval['id']} approved context.amount up to 120000; this request asks 120001"
    for unknown in ("120000", None):  # nobody may approve an amount nobody knows: a deny, with or without approval
        assert check(server, enter(unknown), approval)["decision"] == "deny"
    # -130,000 is 130,000 to the approval (tests/services/test_approval_binding.py); whether the limit itself asks for
    # approval of a negative amount is the rules engine's (issue 11 item 2): either way, not through this approval.
    assert "approval" not in check(server, enter(-130000), approval)
    assert check(server, enter(100000), approval)["decision"] == "allow"
    assert check(server, enter(120000), approval)["approval"]["uses_left"] == 0


def test_an_approval_is_used_once_by_default_and_lapses_with_the_budget_it_was_given_against(
    server: LiveServer,
) -> None:
    claim = request(
        "sales_company", "li_na", "expense", "submit", new_id("exp"), amount=3000, currency="CNY", budget_remaining=1000
    )
    assert check(server, claim)["decision"] == "needs_approval"
    approval = approved(server, claim, "wang_jianguo")
    assert (approval["uses"], approval["uses_left"]) == (1, 1)
    out_of_budget = check(server, claim | {"context": claim["context"] | {"budget_remaining": 0}}, approval)
    assert out_of_budget["decision"] == "needs_approval"
    assert "(context.budget_remaining differs)" in why(out_of_budget)
    smaller = check(server, claim | {"context": claim["context"] | {"amount": 2500}}, approval)
    assert "(context.amount differs)" in why(smaller), "an amount a condition reads is bound exactly"
    answers = [check(server, claim, approval) for _ in range(3)]
    assert [a["decision"] for a in answers] == ["allow", "needs_approval", "needs_approval"], "three repeat claims"
    assert "is used up" in why(answers[1])
    after = _get(server, approval)
    assert after["uses_left"] == 0
    assert [e["kind"] for e in after["events"]] == ["requested", "approved", "used"]
    assert after["events"][-1]["comment"] == f"decision {answers[0]['decision_id']}"


def test_an_approval_opened_without_a_resource_id_covers_only_that_id_less_request(server: LiveServer) -> None:
    change = lambda pct, contract=None: request(
        "logistics",
        "zhang_min",
        "contract",
        "record_change",
        contract,
        price_change_pct=pct,
    )
    approval = approved(server, change(-3), "lin_guoqiang", uses=3)
    assert approval["resource"] == {"type": "contract", "id": None}
    with_an_id = check(server, change(-3, new_id("c")), approval)
    assert with_an_id["decision"] == "needs_approval" and "(resource.id differs)" in why(with_an_id)
    other = check(server, change(-4), approval)
    assert other["decision"] == "needs_approval" and "(context.price_change_pct differs)" in why(other)
    assert check(server, change(-3), approval)["decision"] == "allow"


def test_an_approval_covers_nothing_for_another_person_or_organisation_or_before_it_is_approved(
    server: LiveServer,
) -> None:
    contract = new_id("c")
    opened = _post(server, "/v1/approvals", price_change(contract, 5)).json()
    pending = check(server, price_change(contract, 5), opened)
    assert (
        pending["decision"] == "needs_approval" and why(pending) == f"approval {opened['id']} is pending, not approved"
    )
    approval = approved(server, price_change(new_id("c"), 5), "lin_guoqiang")
    elsewhere = request("sales_company", "li_na", "expense", "submit", None, amount=8000, currency="CNY")
    answer = check(server, elsewhere, approval)
    assert (
        answer["decision"] == "needs_approval"
        and why(answer) == f"approval {approval['id']} was not found in sales_company"
    )
    unknown = check(server, price_change(contract, 5), {"id": "apv_does_not_exist"})
    assert unknown["decision"] == "needs_approval" and "was not found" in why(unknown)


# --- what the answer, the approval and the log say -------------------------------------------------------------------


def _get(server: LiveServer, approval: dict) -> dict:
    response = httpx.get(f"{server.url}/v1/approvals/{approval['id']}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_an_allow_through_an_approval_names_it_in_the_answer_and_the_decision_log(server: LiveServer) -> None:
    """Issue 12 item 2: a teller with a 50,000 limit allowed 120,000, and the records say why."""
    transaction = new_id("t")
    body = request("ninger_branch", "huang_wei", "transaction", "enter", transaction, amount=120000, currency="CNY")
    approval = approved(server, body, "wang_fang", uses=2)
    decided_at = dt.datetime.fromisoformat(approval["decided_at"])
    assert dt.datetime.fromisoformat(approval["expires_at"]) - decided_at == dt.timedelta(hours=24), (
        "DUTYLINE_APPROVAL_VALIDITY"
    )
    assert approval["approved_amounts"] == {"context.amount": 120000} and len(approval["digest"]) == 64
    answer = check(server, body, approval)
    assert answer["decision"] == "allow"
    assert answer["approval"] == {
        "id": approval["id"],
        "approved_by": "wang_fang",
        "approved_at": approval["decided_at"],
        "uses": 2,
        "uses_left": 1,
        "expires_at": approval["expires_at"],
    }
    assert why(answer).startswith(f"approval {approval['id']}: approved by wang_fang at ")
    assert "1 of 2 use(s) left" in why(answer)

    def logged(decision_id: str) -> dict:
        def probe() -> dict | None:
            page = httpx.get(
                f"{server.url}/v1/decisions", params={"subject": "huang_wei", "limit": 200}, timeout=10
            ).json()
            return next((d for d in page["items"] if d["decision_id"] == decision_id), None)

        row = _eventually(probe)
        assert row is not None, f"decision {decision_id} was not logged"
        return row

    row = logged(answer["decision_id"])
    assert (row["decision"], row["approval_id"]) == ("allow", approval["id"])
    plain = check(server, body)
    assert plain["decision"] == "needs_approval" and "approval" not in plain
    assert logged(plain["decision_id"])["approval_id"] is None


def _eventually(probe: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.mark.parametrize("uses", [0, -1, True, 1.5, "2", None, 101, 2**40])
def test_uses_must_be_a_whole_number_from_1_to_the_maximum(server: LiveServer, uses: object) -> None:
    response = _post(server, "/v1/approvals", price_change(new_id("c"), 5) | {"uses": uses})
    assert response.status_code == 400 and "uses" in response.json()["message"], response.text


# --- expiry -----------------------------------------------------------------------------------------------------------


def test_an_approval_expires_its_validity_after_it_was_approved(database: str, server: LiveServer) -> None:
    """A replica whose DUTYLINE_APPROVAL_VALIDITY is one second approves; once that second is over, the approval
    covers nothing, on that replica and on the other."""
    brief = LiveServer(database, extra_env={"DUTYLINE_APPROVAL_VALIDITY": "1s"})
    try:
        brief.wait_ready()
        contract = new_id("c")
        approval = approved(brief, price_change(contract, 5), "lin_guoqiang", uses=5)
        expires = dt.datetime.fromisoformat(approval["expires_at"])
        assert expires - dt.datetime.fromisoformat(approval["decided_at"]) == dt.timedelta(seconds=1)
        while dt.datetime.now(dt.UTC) <= expires:
            time.sleep(0.05)
        for where in (brief, server):
            answer = check(where, price_change(contract, 5), approval)
            assert answer["decision"] == "needs_approval"
            assert why(answer) == f"approval {approval['id']} expired at {approval['expires_at']}"
        assert _get(server, approval)["uses_left"] == 5
    finally:
        brief.stop()


# --- concurrent presentations -----------------------------------------------------------------------------------------

PRESENTERS = 12


def test_concurrent_presentations_of_a_single_use_approval_allow_exactly_once(
    server: LiveServer, replica: LiveServer
) -> None:
    """Twelve presentations at the same moment, half to each of two server processes on one database, five times:
    each time exactly one allow."""
    clients = [httpx.Client(base_url=(server if n % 2 else replica).url, timeout=60) for n in range(PRESENTERS)]
    try:
        for _ in range(5):
            contract = new_id("c")
            approval = approved(server, price_change(contract, 5), "lin_guoqiang")
            body = price_change(contract, 5) | {"approval_id": approval["id"]}
            start = threading.Barrier(PRESENTERS)

            def present(n: int, start: threading.Barrier = start, body: dict = body) -> str:
                start.wait()
                response = clients[n].post("/v1/check", json=body)
                assert response.status_code == 200, response.text
                return response.json()["decision"]

            with concurrent.futures.ThreadPoolExecutor(PRESENTERS) as pool:
                outcomes = Counter(pool.map(present, range(PRESENTERS)))
            assert outcomes == Counter({"allow": 1, "needs_approval": PRESENTERS - 1}), outcomes
            after = _get(server, approval)
            assert after["uses_left"] == 0 and [e["kind"] for e in after["events"]].count("used") == 1
    finally:
        for client in clients:
            client.close()
