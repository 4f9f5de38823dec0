"""The AuthZEN access request profile end to end through the client, against a live server on SQLite and PostgreSQL:
a needs_approval is a requestable denial; its access request opens an approval that the approver post's holder
decides through the approvals API; the task completes; re-evaluating with the task's approval is an allow, once.
Substituted requests, tampered binding tokens, expired denials and approvals are denied with a reason; a callback
reaches a real loopback receiver, retried after its first 500.

The organisation is tests/data/workflow/test_counter.yaml: ann is a teller (limit 10,000), mia the manager who
approves; ann's count of a cash box with a discrepancy notifies the manager (an obligation)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from dutyline_client import Client, Conflict, Gone, InvalidRequest, NotFound
from dutyline_client.models import Decision, TaskResponse
from dutyline_client.requests import Action, Resource, Subject
from tests.clients.conftest import _administrator_token
from tests.conftest import REPO, _backends, _psycopg, fresh_database
from tests.live import LiveServer

ORG = "test_counter"
SECRET = "callback-secret-for-tests"
CAPABILITY = "urn:openid:authzen:capability:access-request"
ANN = Subject(type="user", id="ann")
ENTER = Action(name="enter")


def _seed(folder: Path) -> Path:
    (folder / "policies" / "orgs").mkdir(parents=True)
    (folder / "rules").mkdir()
    shutil.copy(REPO / "tests" / "data" / "workflow" / "test_counter.yaml", folder / "policies" / "orgs")
    shutil.copy(REPO / "tests" / "data" / "workflow" / "test_counter_rules.yaml", folder / "rules")
    return folder / "policies"


class Served:
    def __init__(self, server: LiveServer, token: str) -> None:
        self.server, self.token = server, token

    def client(self) -> Client:
        return Client(self.server.url, token=self.token, timeout=10)


def _start(folder: Path, url: str, **env: str) -> Served:
    token = _administrator_token(url)
    server = LiveServer(
        url,
        seed_dir=str(_seed(folder)),
        extra_env={
            "DUTYLINE_REQUIRE_AUTH": "true",
            "DUTYLINE_CALLBACK_SECRET": SECRET,
            "DUTYLINE_CALLBACK_ALLOW": "127.0.0.1",
            "DUTYLINE_ESCALATION_INTERVAL": "0.2",
            **env,
        },
    )
    server.wait_ready()
    return Served(server, token)


@pytest.fixture(scope="module", params=_backends())
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("arap")
    with fresh_database(request.param, folder) as url:
        running = _start(folder, url)
        try:
            yield running
        finally:
            running.server.stop()


@pytest.fixture
def dutyline(served: Served) -> Iterator[Client]:
    with served.client() as client:
        yield client


def eventually(probe: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def transaction() -> Resource:
    return Resource(type="transaction", id=f"t-{uuid.uuid4().hex[:10]}")


def deny(dutyline: Client, resource: Resource, amount: int = 20000) -> Decision:
    denied = dutyline.evaluation(ANN, ENTER, resource, {"amount": amount}, organisation=ORG)
    assert denied.decision is False and denied.context is not None and denied.context.access_request is not None
    return denied


def approve(dutyline: Client, resource: Resource) -> str:
    """As the manager (the approver post's holder), through the approvals API: the approval ann's request opened."""
    inbox = dutyline.approvals(organisation=ORG, approver="mia")
    [approval] = [a for a in inbox if a.resource.id == resource.id]
    dutyline.approve(approval.id, "mia", comment="seen the customer")
    return approval.id


def test_the_pdp_metadata_lists_the_profiles(dutyline: Client, served: Served) -> None:
    metadata = dutyline.configuration()
    assert CAPABILITY in metadata.capabilities and metadata.supported_obligations == ["notification"]
    assert metadata.access_request_endpoint == f"{served.server.url}/access/v1/requests"
    assert metadata.jwks_uri is not None and metadata.jwks_uri.endswith("/.well-known/dutyline-jwks.json")
    assert dutyline.configuration(ORG).access_request_endpoint == metadata.access_request_endpoint
    assert dutyline.access_request_schema()["properties"]["context"]["properties"]["business_justification"]


def test_deny_access_request_approve_reevaluate_allow(dutyline: Client) -> None:
    resource = transaction()
    denied = deny(dutyline, resource)
    context = denied.context
    assert context is not None and context.access_request is not None
    assert (context.reason, context.access_request.template) == ("approval_required", "dutyline_approval")
    assert context.evaluation_id and context.evaluated_at and context.access_request.expires_at
    # a plain deny stays as it was: no context at all (ann may not authorise transactions)
    assert dutyline.evaluation(ANN, Action(name="authorize"), resource, organisation=ORG) == Decision(decision=False)

    key = uuid.uuid4().hex
    task = dutyline.submit_access_request(
        denied, ANN, ENTER, resource, {"amount": 20000}, justification="customer waiting", idempotency_key=key
    )
    assert task.task.status == "pending" and task.result is None
    assert task.task.links is not None and task.task.links.cancel.endswith(f"/{task.task.id}/cancel")
    again = dutyline.submit_access_request(
        denied, ANN, ENTER, resource, {"amount": 20000}, justification="customer waiting", idempotency_key=key
    )
    assert again.task.id == task.task.id, "the same Idempotency-Key and body: the same task"
    with pytest.raises(Conflict) as duplicate:
        dutyline.submit_access_request(
            denied, ANN, ENTER, resource, {"amount": 20000}, justification="other", idempotency_key=key
        )
    assert duplicate.value.error == "duplicate_request"
    assert dutyline.task_status(task.task.id).task.status == "pending"

    approval_id = approve(dutyline, resource)
    done = dutyline.task_status(task.task.id)
    assert done.task.status == "approved" and done.result is not None and done.result.mode == "reevaluate"
    assert done.result.approval.id == approval_id and done.result.approval.approved_until
    assert dutyline.approval(approval_id).comment == "customer waiting"

    allowed = dutyline.reevaluate(ANN, ENTER, resource, done.result.approval, {"amount": 20000}, organisation=ORG)
    assert allowed.decision is True
    assert allowed.context is not None and allowed.context.approval is not None
    assert allowed.context.approval.id == approval_id

    replayed = dutyline.reevaluate(ANN, ENTER, resource, done.result.approval, {"amount": 20000}, organisation=ORG)
    assert replayed.decision is False and replayed.context is not None
    assert (replayed.context.reason, replayed.context.next_action) == ("approval_expired", "request")
    assert replayed.context.access_request is not None, "next_action request comes with a fresh requestable denial"


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["context"] = {"amount": 90000}
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_a_tampered_token_or_a_substituted_request_is_refused(dutyline: Client) -> None:
    resource, other = transaction(), transaction()
    denied = deny(dutyline, resource)
    assert denied.context is not None and denied.context.access_request is not None
    hint = denied.context.access_request
    forged = Decision(
        decision=False,
        context=type(denied.context)(
            access_request=type(hint)(
                endpoint=hint.endpoint,
                template=hint.template,
                expires_at=hint.expires_at,
                binding_token=_tampered(hint.binding_token),
                request_schema_url=hint.request_schema_url,
                display=hint.display,
            )
        ),
    )
    refusals = [
        (forged, resource, {"amount": 90000}),  # a token altered to cover a larger amount
        (denied, other, {"amount": 20000}),  # the token of one transaction for another
        (denied, resource, {"amount": 90000}),  # the same transaction, a larger amount
    ]
    for decision, asked, context in refusals:
        with pytest.raises(InvalidRequest) as refused:
            dutyline.submit_access_request(decision, ANN, ENTER, asked, context)
        assert refused.value.error == "invalid_denial_binding", refused.value.message

    task = dutyline.submit_access_request(denied, ANN, ENTER, resource, {"amount": 20000})
    with pytest.raises(InvalidRequest) as replayed:  # the token opened a task: it opens no other
        dutyline.submit_access_request(denied, ANN, ENTER, resource, {"amount": 20000}, justification="again")
    assert replayed.value.error == "invalid_denial_binding"
    approval_id = approve(dutyline, resource)
    result = dutyline.task_status(task.task.id).result
    assert result is not None

    for asked, amount in ((other, 20000), (resource, 30000)):
        substituted = dutyline.reevaluate(ANN, ENTER, asked, result.approval, {"amount": amount}, organisation=ORG)
        assert substituted.decision is False and substituted.context is not None
        assert (substituted.context.reason, substituted.context.next_action) == ("out_of_scope", "request")
    unknown = dutyline.evaluation(
        ANN, ENTER, resource, {"amount": 20000, "approval": {"id": "apv_nope"}}, organisation=ORG
    )
    assert unknown.decision is False and unknown.context is not None
    assert (unknown.context.reason, unknown.context.next_action) == ("approval_unverifiable", "none")
    assert unknown.context.access_request is None
    with pytest.raises(InvalidRequest):
        dutyline.evaluation(ANN, ENTER, resource, {"amount": 20000, "approval": {"id": 5}}, organisation=ORG)
    # `context.approval_id`, as /v1/check takes it, works over AuthZEN too (refusals took no use)
    plain = dutyline.evaluation(ANN, ENTER, resource, {"amount": 15000, "approval_id": approval_id}, organisation=ORG)
    assert plain.decision is True


def test_a_cancelled_task_cannot_be_approved(dutyline: Client) -> None:
    resource = transaction()
    task = dutyline.submit_access_request(deny(dutyline, resource), ANN, ENTER, resource, {"amount": 20000})
    cancelled = dutyline.cancel_access_request(task.task.id, reason="no_longer_needed")
    assert cancelled.task.status == "cancelled" and cancelled.task.links is None
    with pytest.raises(Conflict) as again:
        dutyline.cancel_access_request(task.task.id)
    assert again.value.error == "invalid_task_state"
    assert not [a for a in dutyline.approvals(organisation=ORG, approver="mia") if a.resource.id == resource.id]
    with pytest.raises(NotFound) as unknown:
        dutyline.task_status("arq_" + "0" * 32)
    assert unknown.value.error == "unknown_task"


def test_rule_notifications_are_obligations_over_authzen(dutyline: Client) -> None:
    box = Resource(type="cash_box", id="box-ann")
    counted = dutyline.evaluation(ANN, Action(name="count"), box, {"discrepancy": -100}, organisation=ORG)
    assert counted.decision is True and counted.context is not None and counted.context.obligations is not None
    [obligation] = counted.context.obligations
    assert (obligation.type, obligation.properties.to, obligation.properties.topic) == (
        "notification",
        "manager",
        "cash_discrepancy",
    )
    assert "cash over or short" in obligation.properties.body
    balanced = dutyline.evaluation(ANN, Action(name="count"), box, {"discrepancy": 0}, organisation=ORG)
    assert balanced == Decision(decision=True)


class _Receiver(BaseHTTPRequestHandler):
    """A PEP's callback endpoint: answers 500 to the first call, 204 to the others; keeps what it received."""

    received: list[tuple[bytes, str]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.received.append((body, self.headers.get("dutyline-signature", "")))
        self.send_response(500 if len(self.received) == 1 else 204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[bytes, str]]]]:
    received: list[tuple[bytes, str]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/callbacks", received
    finally:
        server.shutdown()
        server.server_close()


def test_the_callback_is_delivered_and_retried_after_a_500(
    dutyline: Client, served: Served, receiver: tuple[str, list[tuple[bytes, str]]]
) -> None:
    url, received = receiver
    resource = transaction()
    denied = deny(dutyline, resource)
    for bad in ("ftp://127.0.0.1/x", "http://10.1.2.3/callbacks", "http://[::1]/cb", "http://x/" + "a" * 2100):
        with pytest.raises(InvalidRequest) as refused:
            dutyline.submit_access_request(denied, ANN, ENTER, resource, {"amount": 20000}, callback=bad)
        assert "callback.endpoint" in refused.value.message
    task = dutyline.submit_access_request(
        denied, ANN, ENTER, resource, {"amount": 20000}, callback=url, callback_state="pep-state-1"
    )
    time.sleep(0.5)
    assert received == [], "nothing is sent while the approval is pending"
    approve(dutyline, resource)
    assert eventually(lambda: len(received) >= 2), f"callbacks received: {received}"
    for body, signature in received[:2]:
        payload = json.loads(body)
        assert payload == {"task": {"id": task.task.id, "status": "approved"}, "state": "pep-state-1"}
        assert signature == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    engine = create_engine(_psycopg(served.server.database_url))

    def recorded() -> tuple[list[tuple[Any, ...]], str]:
        with engine.connect() as connection:
            attempts = connection.execute(
                text(
                    "SELECT attempt, event, status FROM callback_attempts WHERE access_request_id = :id ORDER BY attempt"
                ),
                {"id": task.task.id},
            ).all()
            status = connection.execute(
                text("SELECT callback_status FROM access_requests WHERE id = :id"), {"id": task.task.id}
            ).scalar_one()
        return [tuple(a) for a in attempts], status

    try:  # the receiver has the second call before the sender records its answer
        eventually(lambda: recorded()[1] != "waiting")
        attempts, status = recorded()
    finally:
        engine.dispose()
    assert attempts == [(1, "approved", 500), (2, "approved", 204)] and status == "delivered"
    time.sleep(0.5)
    assert len(received) == 2, "delivered once: never again"


@pytest.fixture(params=_backends())
def short_lived(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Client]:
    """A server whose requestable denials last 1 s and whose approvals 2 s."""
    with fresh_database(request.param, tmp_path) as url:
        running = _start(tmp_path, url, DUTYLINE_ACCESS_REQUEST_WINDOW="1", DUTYLINE_APPROVAL_VALIDITY="2")
        try:
            with running.client() as client:
                yield client
        finally:
            running.server.stop()


def _past(moment: str) -> bool:
    return dt.datetime.now(dt.UTC) > dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))


def test_expired_denials_and_approvals(short_lived: Client) -> None:
    dutyline = short_lived
    resource = transaction()
    late = deny(dutyline, resource)
    assert late.context is not None and late.context.access_request is not None
    expires_at = late.context.access_request.expires_at
    assert eventually(lambda: _past(expires_at))  # the server's clock is this machine's
    with pytest.raises(Gone) as expired:
        dutyline.submit_access_request(late, ANN, ENTER, resource, {"amount": 20000})
    assert expired.value.error == "expired_denial"

    task = dutyline.submit_access_request(deny(dutyline, resource), ANN, ENTER, resource, {"amount": 20000})
    approve(dutyline, resource)
    result = dutyline.task_status(task.task.id).result
    assert result is not None
    until = result.approval.approved_until
    assert eventually(lambda: dutyline.task_status(task.task.id).task.status == "expired") and _past(until)
    stale = dutyline.reevaluate(ANN, ENTER, resource, result.approval, {"amount": 20000}, organisation=ORG)
    assert stale.decision is False and stale.context is not None
    assert (stale.context.reason, stale.context.next_action) == ("approval_expired", "request")
    assert isinstance(dutyline.task_status(task.task.id), TaskResponse)
