"""The escalation scheduler with real servers: steps up the reporting line, approvals past their SLA,
exactly once across a crash and with two replicas on one database, and webhook delivery with retries.

Timings: case steps of 0.01m (0.6 s), approval SLA 0.6 s, a scheduler tick every 0.2 s.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from sqlalchemy import func, select

from dutyline.store.db import make_engine
from dutyline.store.tables import NotificationRow, WorkflowEventRow
from tests.api.test_approvals import ORG, eventually, get, import_counter_into, post, request
from tests.conftest import _backends, fresh_database
from tests.live import LiveServer, free_port

FAST = {"DUTYLINE_ESCALATION_INTERVAL": "0.2", "DUTYLINE_APPROVAL_SLA": "0.6s"}


def start(database_url: str, **env: str) -> LiveServer:
    server = LiveServer(database_url, extra_env=FAST | env)
    server.wait_ready()
    return server


def crash(server: LiveServer) -> None:
    """SIGKILL: no shutdown, no cleanup, whatever was in flight is lost."""
    server.process.kill()
    server.stop()  # only reaps it and removes its log


def open_case(server: LiveServer, case_type: str, title: str = "queue too long") -> dict:
    response = post(server, "/v1/cases", {"organisation": ORG, "type": case_type, "title": title})
    assert response.status_code == 201, response.text
    return response.json()


def kinds(server: LiveServer, case_id: str) -> list[str]:
    return [e["kind"] for e in get(server, f"/v1/cases/{case_id}").json()["events"]]


def _key(notification: dict) -> tuple:
    """Ids are per database; the subject (a case or approval id, a uuid) tells backends apart."""
    return notification["id"], notification["subject_id"], notification["kind"]


class Receiver(BaseHTTPRequestHandler):
    """A webhook that fails the first delivery of every notification and accepts the second."""

    received: ClassVar[list[dict]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        with self.lock:
            first = not any(_key(r) == _key(body) for r in self.received)
            self.received.append(body)
        self.send_response(500 if first else 204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def webhook() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Receiver)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    httpd.shutdown()


@pytest.fixture(scope="module", params=_backends())
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, webhook: str
) -> Iterator[LiveServer]:
    """One fast-escalating server per backend, delivering its outbox to the test webhook."""
    with fresh_database(request.param, tmp_path_factory.mktemp("db")) as url:
        import_counter_into(url)
        live = start(url, DUTYLINE_WEBHOOK_URL=webhook)
        try:
            yield live
        finally:
            live.stop()


def test_an_unresolved_case_climbs_to_the_nearest_staffed_post_and_stays_at_the_top(server: LiveServer) -> None:
    case = open_case(server, "to_the_top")
    assert eventually(lambda: kinds(server, case["id"]) == ["opened", "escalated", "overdue"], timeout=10)
    after = get(server, f"/v1/cases/{case['id']}").json()
    assert (after["post"], after["status"], after["step"], after["due_at"]) == ("director", "escalated", 2, None)
    escalated = after["events"][1]
    assert (escalated["from_post"], escalated["to_post"]) == ("manager", "director"), (
        "the vacant deputy post is skipped"
    )
    assert escalated["actor"].startswith("escalation@")
    told = [
        n
        for n in get(server, "/v1/notifications", organisation=ORG, post="director").json()["items"]
        if n["subject_id"] == case["id"]
    ]
    assert [(n["kind"], n["people"]) for n in told] == [("case_escalated", ["dan"]), ("case_overdue", ["dan"])]
    assert "营业经理升级至营业部主任" in told[0]["message"]["zh"]
    time.sleep(0.6)
    assert kinds(server, case["id"]) == ["opened", "escalated", "overdue"], "no more timers at the top"


def test_a_pending_approval_past_its_sla_moves_up_its_chain(server: LiveServer) -> None:
    opened = post(server, "/v1/approvals", request("ann", "transaction", "enter", "t-sla", amount=20000)).json()
    assert opened["post"] == "manager"

    def events() -> list[str]:
        return [e["kind"] for e in get(server, f"/v1/approvals/{opened['id']}").json()["events"]]

    assert eventually(lambda: events() == ["requested", "escalated", "overdue"], timeout=10)
    approval = get(server, f"/v1/approvals/{opened['id']}").json()
    assert (approval["level"], approval["post"], approval["status"], approval["due_at"]) == (
        1,
        "director",
        "pending",
        None,
    )
    late = post(server, f"/v1/approvals/{opened['id']}/approve", {"person": "mia"})
    assert late.status_code == 403 and "does not hold director" in late.json()["message"]
    assert post(server, f"/v1/approvals/{opened['id']}/approve", {"person": "dan"}).json()["status"] == "approved"


def test_notifications_reach_the_webhook_after_a_failed_attempt(server: LiveServer) -> None:
    case = open_case(server, "slow", title="webhook")

    def delivered() -> list[dict]:
        items = get(server, "/v1/notifications", organisation=ORG, post="teller", limit=1000).json()["items"]
        return [n for n in items if n["subject_id"] == case["id"] and n["delivered_at"]]

    [notification] = eventually(delivered, timeout=10)
    assert notification["attempts"] == 2, "the first attempt failed; the retry after backoff succeeded"
    sent = [r for r in Receiver.received if _key(r) == _key(notification)]
    assert [r["attempts"] for r in sent] == [1, 2] and sent[0]["kind"] == "case_opened"


def escalations(database_url: str) -> Counter[str]:
    """Escalated events per case, read from the database itself."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(WorkflowEventRow.entity_id, func.count())
                .where(WorkflowEventRow.entity == "case", WorkflowEventRow.kind == "escalated")
                .group_by(WorkflowEventRow.entity_id)
            ).all()
        return Counter(dict(rows))
    finally:
        engine.dispose()


def test_a_case_escalates_exactly_once_across_crashes(database_url: str) -> None:
    import_counter_into(database_url)
    first = start(database_url)
    case = open_case(first, "complaint")
    crash(first)  # before the step falls due: the timer is the row, not this process
    time.sleep(0.7)
    second = start(database_url)
    try:
        assert eventually(lambda: kinds(second, case["id"]) == ["opened", "escalated"], timeout=10)
    finally:
        crash(second)
    third = start(database_url)
    try:
        time.sleep(0.6)  # three ticks
        after = get(third, f"/v1/cases/{case['id']}").json()
    finally:
        third.stop()
    assert [e["kind"] for e in after["events"]] == ["opened", "escalated"]
    assert (after["post"], after["step"]) == ("director", 1)
    escalated_at = dt.datetime.fromisoformat(after["events"][1]["at"])
    assert dt.datetime.fromisoformat(after["due_at"]) - escalated_at == dt.timedelta(minutes=60), (
        "the next step's timer"
    )
    assert escalations(database_url) == Counter({case["id"]: 1})


def test_two_replicas_escalate_every_case_exactly_once(database_url: str) -> None:
    import_counter_into(database_url)
    replicas = [LiveServer(database_url, extra_env=FAST) for _ in range(2)]
    try:
        for replica in replicas:
            replica.wait_ready()
        cases = [open_case(replicas[i % 2], "complaint", title=f"case {i}")["id"] for i in range(60)]

        def all_escalated() -> bool:
            listed = get(replicas[0], "/v1/cases", organisation=ORG, status="escalated", limit=1000).json()["items"]
            return len(listed) == len(cases)

        assert eventually(all_escalated, timeout=20)
        time.sleep(0.6)  # both replicas tick three more times
        assert escalations(database_url) == Counter(dict.fromkeys(cases, 1))
        engine = make_engine(database_url)
        with engine.connect() as connection:
            notified = connection.execute(
                select(func.count()).select_from(NotificationRow).where(NotificationRow.kind == "case_escalated")
            ).scalar_one()
            actors = Counter(
                actor
                for (actor,) in connection.execute(
                    select(WorkflowEventRow.actor).where(WorkflowEventRow.kind == "escalated")
                )
            )
        engine.dispose()
        assert notified == len(cases)
        assert sum(actors.values()) == len(cases) and all(a.startswith("escalation@") for a in actors)

        # Usage recorded on one replica counts on the other after its next refresh.
        withdraw = request("bob", "cash_box", "withdraw", "box", amount=40000)
        assert post(replicas[1], "/v1/check", withdraw).json()["decision"] == "allow"
        assert (
            post(
                replicas[0], f"/v1/orgs/{ORG}/usage", {"person": "bob", "rule": "daily_cash", "amount": 40000}
            ).status_code
            == 201
        )
        assert eventually(
            lambda: post(replicas[1], "/v1/check", withdraw).json()["decision"] == "needs_approval", timeout=5
        )
    finally:
        for replica in replicas:
            replica.stop()
