"""Issue 11 item 7: a usage ledger that cannot be poisoned. Real servers on SQLite and PostgreSQL, the seed
organisations and rule packs, real HTTP.

Attacks as the issue tried them: one -1e308 record to switch a periodic limit off, two huge ones to drive the total
to -inf; NaN, booleans, text; and, with DUTYLINE_REQUIRE_AUTH on, console sessions and tokens recording usage for
anyone anywhere. Corrections are reversals, each entry reversed at most once. The limit is ninger_branch's
`teller_daily_cash` (a teller pays out at most 200,000 a day); each test counts on a day of its own.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import random
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.admin_client import Client, create_admin, token_for
from tests.conftest import POSTGRES_URL, _backends, fresh_database
from tests.hardening.conftest import Stack, load_content
from tests.live import LiveServer

ORG = "ninger_branch"
RULE = "teller_daily_cash"


@pytest.fixture(scope="module", params=_backends())
def database(
    request: pytest.FixtureRequest, stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """A database holding the seeds, of each backend (the shared stack's where it is that backend), and root's
    admin token."""
    if request.param == ("postgresql" if POSTGRES_URL else "sqlite"):
        yield stack.database_url, stack.token
        return
    with fresh_database(request.param, tmp_path_factory.mktemp("ledger")) as url:
        token = create_admin(url)
        load_content(url)
        yield url, token


@pytest.fixture(scope="module")
def server(database: tuple[str, str], stack: Stack) -> Iterator[LiveServer]:
    if database[0] == stack.database_url:
        yield stack.server
        return
    started = LiveServer(database[0])
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


# Dealt without replacement: two tests drawing the same day at random would count each other's usage.
_DAYS = [dt.date(2024, 1, 1) + dt.timedelta(days=n) for n in range(366)]
_DAYS = [d for d in _DAYS if d.weekday() < 5]
random.shuffle(_DAYS)


@pytest.fixture
def day() -> str:
    """A weekday morning of its own (inside business hours), whose daily total only this test touches."""
    return f"{_DAYS.pop().isoformat()}T10:00"


def record(server: LiveServer, body: dict, headers: dict[str, str] | None = None, org: str = ORG) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/orgs/{org}/usage", json=body, headers=headers or {}, timeout=30)


def usage(person: str, amount: Any, at: str, **more: Any) -> dict:
    return {"person": person, "rule": RULE, "amount": amount, "at": at, **more}


def total(server: LiveServer, person: str, at: str, headers: dict[str, str] | None = None) -> Any:
    params = {"person": person, "rule": RULE, "at": at}
    response = httpx.get(f"{server.url}/v1/orgs/{ORG}/usage", params=params, headers=headers or {}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["total"]


def withdraw(server: LiveServer, person: str, amount: float, at: str) -> str:
    body = {
        "organisation": ORG,
        "subject": {"id": person},
        "resource": {"type": "cash_box", "id": f"box-{person}"},
        "action": "withdraw",
        "at": at,
        "context": {"amount": amount, "currency": "CNY"},
    }
    response = httpx.post(f"{server.url}/v1/check", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["decision"]


# --- amounts --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (-1e308, "amount: must be positive"),
        (-5, "amount: must be positive"),
        (0, "amount: must be positive"),
        (-0.0, "amount: must be positive"),
        (1e308, "amount: must be below 10^18"),
        (10**18, "amount: must be below 10^18"),
        (True, "amount: must be a number, not true"),
        (False, "amount: must be a number, not false"),
        ("100", "amount: must be a JSON number, not text"),
        ("NaN", "amount: must be a JSON number, not text"),
        ("Infinity", "amount: must be a JSON number, not text"),
        ([100], "amount: must be a number"),
        ({"value": 100}, "amount: must be a number"),
        (None, "missing required field `amount`"),
    ],
)
def test_an_amount_that_is_not_a_finite_positive_number_is_refused_naming_it(
    server: LiveServer, day: str, amount: Any, message: str
) -> None:
    response = record(server, usage("huang_wei", amount, day))
    assert response.status_code == 400 and message in response.json()["message"], response.text
    assert response.json()["issues"][0]["path"] == "amount"
    assert total(server, "huang_wei", day) == 0, "nothing was recorded"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"NaN", "malformed JSON"),  # the literals are not JSON
        (b"-Infinity", "malformed JSON"),
        (b"1.2345678901234567890", "amount: at most 18 significant digits"),  # a float would round it to 17
        (b"1e-19", "amount: at most 18 decimal places"),
        (b"1e400", "amount: must be below 10^18"),
    ],
)
def test_amounts_are_read_as_written_not_through_a_float(
    server: LiveServer, day: str, raw: bytes, message: str
) -> None:
    body = b'{"person": "huang_wei", "rule": "%s", "at": "%s", "amount": %s}' % (RULE.encode(), day.encode(), raw)
    response = httpx.post(
        f"{server.url}/v1/orgs/{ORG}/usage", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400 and message in response.json()["message"], response.text
    assert total(server, "huang_wei", day) == 0


def test_minus_1e308_does_not_switch_the_limit_off(server: LiveServer, day: str) -> None:
    assert withdraw(server, "huang_wei", 250000, day) == "needs_approval", "above the teller's 200,000 a day"
    assert record(server, usage("huang_wei", -1e308, day)).status_code == 400
    assert withdraw(server, "huang_wei", 250000, day) == "needs_approval"


def test_two_huge_entries_make_an_exact_finite_total_that_the_limit_still_binds(server: LiveServer, day: str) -> None:
    for _ in range(2):
        assert record(server, usage("zhou_jing", 1e308, day)).status_code == 400
    for _ in range(2):
        assert record(server, usage("zhou_jing", 999999999999999999, day)).status_code == 201
    assert total(server, "zhou_jing", day) == 1999999999999999998, "exact: a float would say 2e18"
    assert withdraw(server, "zhou_jing", 1, day) == "deny", "beyond everyone's daily limit: nobody may approve it"


def test_amounts_and_totals_are_exact_decimals(server: LiveServer, day: str) -> None:
    for _ in range(3):
        recorded = record(server, usage("huang_wei", 0.1, day))
        assert recorded.status_code == 201 and recorded.json()["amount"] == 0.1
    assert b'"total":0.3' in recorded.content, "0.1 + 0.1 + 0.1 is 0.3, not 0.30000000000000004"
    assert total(server, "huang_wei", day) == 0.3


# --- reversals ------------------------------------------------------------------------------------------------------


def test_a_correction_is_a_reversal_of_one_entry_once(server: LiveServer, day: str) -> None:
    entry = record(server, usage("huang_wei", 150000, day)).json()
    assert entry["total"] == 150000 and entry["reverses"] is None
    assert withdraw(server, "huang_wei", 100000, day) == "needs_approval", "150,000 + 100,000 is above 200,000"
    reversal = record(server, {"person": "huang_wei", "rule": RULE, "reverses": entry["id"]})
    assert reversal.status_code == 201, reversal.text
    assert (reversal.json()["amount"], reversal.json()["total"], reversal.json()["reverses"]) == (
        -150000,
        0,
        entry["id"],
    )
    assert reversal.json()["period"] == entry["period"], "in the reversed entry's period"
    assert withdraw(server, "huang_wei", 100000, day) == "allow"

    again = record(server, {"person": "huang_wei", "rule": RULE, "reverses": entry["id"]})
    assert again.status_code == 409 and "already reversed" in again.json()["message"]
    undo = record(server, {"person": "huang_wei", "rule": RULE, "reverses": reversal.json()["id"]})
    assert undo.status_code == 409 and "is itself the reversal" in undo.json()["message"]
    assert total(server, "huang_wei", day) == 0, "never below zero"


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"person": "zhou_jing"}, 400, "reverses: usage entry"),  # someone else's entry
        ({"amount": 99}, 400, "amount: a reversal's amount is the reversed entry's (500)"),
        ({"amount": -500}, 400, "amount: must be positive"),
        ({"reverses": 2**31 - 1}, 404, "not found in 'ninger_branch'"),
        ({"reverses": 0}, 400, "reverses"),
        ({"reverses": "1"}, 400, "reverses"),
    ],
)
def test_a_reversal_must_name_an_entry_of_the_same_rule_and_person(
    server: LiveServer, day: str, change: dict, status: int, message: str
) -> None:
    entry = record(server, usage("huang_wei", 500, day)).json()
    response = record(server, {"person": "huang_wei", "rule": RULE, "reverses": entry["id"]} | change)
    assert response.status_code == status and message in response.json()["message"], response.text
    assert total(server, "huang_wei", day) == 500


def test_an_entry_of_another_organisation_cannot_be_reversed(server: LiveServer, day: str) -> None:
    theirs = record(
        server, {"person": "li_na", "rule": "monthly_expense_limit", "amount": 700, "at": day}, org="sales_company"
    )
    assert theirs.status_code == 201, theirs.text
    response = record(server, {"person": "huang_wei", "rule": RULE, "reverses": theirs.json()["id"]})
    assert response.status_code == 404 and f"usage entry {theirs.json()['id']} not found" in response.json()["message"]


def test_concurrent_reversals_of_one_entry_reverse_it_once(server: LiveServer, day: str) -> None:
    entry = record(server, usage("zhou_jing", 800, day)).json()
    start = threading.Barrier(8)
    clients = [httpx.Client(base_url=server.url, timeout=60) for _ in range(8)]

    def reverse(n: int) -> int:
        start.wait()
        return (
            clients[n]
            .post(f"/v1/orgs/{ORG}/usage", json={"person": "zhou_jing", "rule": RULE, "reverses": entry["id"]})
            .status_code
        )

    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = Counter(pool.map(reverse, range(8)))
    finally:
        for client in clients:
            client.close()
    assert statuses == Counter({201: 1, 409: 7}), statuses
    assert total(server, "zhou_jing", day) == 0


# --- who may record ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(database: tuple[str, str]) -> Iterator[tuple[LiveServer, Client]]:
    """A replica on the same database with DUTYLINE_REQUIRE_AUTH on, and root's client there."""
    started = LiveServer(database[0], extra_env={"DUTYLINE_REQUIRE_AUTH": "true"})
    try:
        started.wait_ready()
        root = Client(started, database[1])
        yield started, root
        root.close()
    finally:
        started.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _user(root: Client, roles: list[str], scopes: tuple[str, ...] = ("decide",)) -> tuple[str, str]:
    username = f"u{uuid.uuid4().hex[:8]}"
    grants = [dict(zip(("role", "organisation"), role.split("@"), strict=True)) for role in roles]
    return username, token_for(root, username, list(scopes), grants)


def test_with_auth_required_a_token_records_only_in_an_organisation_its_user_acts_in(
    guarded: tuple[LiveServer, Client], day: str
) -> None:
    server, root = guarded
    assert record(server, usage("huang_wei", 10, day)).status_code == 401
    assert record(server, usage("huang_wei", 10, day), dict(root.http.headers)).status_code == 201, (
        "a system administrator"
    )
    _, ours = _user(root, [f"compliance_officer@{ORG}"])
    assert record(server, usage("huang_wei", 10, day), bearer(ours)).status_code == 201
    _, theirs = _user(root, ["compliance_officer@sales_company"])
    refused = record(server, usage("huang_wei", 10, day), bearer(theirs))
    assert refused.status_code == 403 and "may not record usage in 'ninger_branch'" in refused.json()["message"]
    sales = {"person": "li_na", "rule": "monthly_expense_limit", "amount": 10, "at": day}
    assert record(server, sales, bearer(theirs), org="sales_company").status_code == 201, "its own organisation"
    _, auditor = _user(root, [f"auditor@{ORG}"])
    assert record(server, usage("huang_wei", 10, day), bearer(auditor)).status_code == 403
    _, nobody = _user(root, [])
    assert record(server, usage("huang_wei", 10, day), bearer(nobody)).status_code == 403
    assert total(server, "huang_wei", day, dict(root.http.headers)) == 20, "root's and the ninger_branch officer's"


def test_with_auth_required_a_console_session_records_only_as_its_own_person(
    guarded: tuple[LiveServer, Client], day: str
) -> None:
    server, root = guarded
    username, _ = _user(root, [f"compliance_officer@{ORG}"])
    assert root.patch(f"/admin/users/{username}", json={"people": {ORG: "huang_wei"}}).status_code == 200
    console = Client(server)
    assert console.login(username).status_code == 200
    try:
        other = console.post(f"/v1/orgs/{ORG}/usage", json=usage("zhou_jing", 10, day))
        assert (
            other.status_code == 403
            and other.json()["message"] == "a console user acts as their own person (huang_wei)"
        )
        own = console.post(f"/v1/orgs/{ORG}/usage", json=usage("huang_wei", 10, day))
        assert own.status_code == 201 and own.json()["person"] == "huang_wei", own.text
        elsewhere = console.post(
            "/v1/orgs/sales_company/usage",
            json={"person": "li_na", "rule": "monthly_expense_limit", "amount": 10, "at": day},
        )
        # an organisation the user has no role in is outside their reach altogether
        assert elsewhere.status_code == 403 and "may reach" in elsewhere.json()["message"], elsewhere.text
    finally:
        console.close()
    headers = dict(root.http.headers)
    assert total(server, "zhou_jing", day, headers) == 0 and total(server, "huang_wei", day, headers) == 10
