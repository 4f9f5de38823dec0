"""OpenTelemetry traces and request-bound logs, read from an in-memory exporter in-process with the real app
(`create_app`, its lifespan, a real database on SQLite and PostgreSQL), on tests/data/workflow/test_counter.yaml."""

from __future__ import annotations

import contextlib
import gzip
import http.server
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from sqlalchemy import text

from dutyline.app import create_app
from dutyline.logs import JsonFormatter
from dutyline.services.decisions import DecisionService
from dutyline.services.orgs import import_paths
from dutyline.settings import Settings
from dutyline.store.db import make_engine, session_factory, upgrade
from tests.api.test_approvals import ORG, WORKFLOW, eventually, import_counter_into, request
from tests.live import LiveServer, free_port

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


def settings_for(database_url: str, **env: str) -> Settings:
    # the test client is no loopback address: anonymous callers are let in by name
    base = {"DUTYLINE_DATABASE_URL": database_url, "DUTYLINE_SEED_DIR": "", "DUTYLINE_ALLOW_ANONYMOUS": "1"}
    return Settings.from_env(base | env)


@pytest.fixture
def counter_db(database_url: str) -> str:
    import_counter_into(database_url)
    return database_url


@pytest.fixture
def traced(counter_db: str) -> Iterator[tuple[TestClient, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    app = create_app(settings_for(counter_db, DUTYLINE_OTEL="1"), span_exporter=exporter)
    with TestClient(app) as client:
        exporter.clear()  # start-up's own work
        yield client, exporter


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def parent_of(span: ReadableSpan, spans: tuple[ReadableSpan, ...]) -> ReadableSpan:
    assert span.parent is not None, f"{span.name} has no parent"
    (parent,) = [s for s in spans if s.context.span_id == span.parent.span_id]
    return parent


def approved(client: TestClient, body: dict[str, Any]) -> str:
    opened = client.post("/v1/approvals", json=body)
    assert opened.status_code == 201, opened.text
    decided = client.post(f"/v1/approvals/{opened.json()['id']}/approve", json={"person": "mia"})
    assert decided.status_code == 200, decided.text
    return str(opened.json()["id"])


def test_a_check_through_an_approval_is_a_span_tree_request_decision_rules_database(
    traced: tuple[TestClient, InMemorySpanExporter],
) -> None:
    client, exporter = traced
    body = request("ann", "transaction", "enter", "t-traced", amount=20000)
    approval_id = approved(client, body)
    exporter.clear()

    response = client.post("/v1/check", json=body | {"approval_id": approval_id}, headers={"X-Request-ID": "req-7"})

    assert response.status_code == 200 and response.json()["decision"] == "allow"
    spans = exporter.get_finished_spans()
    (server,) = by_name(spans, "POST /v1/check")
    (decision,) = by_name(spans, "decision")
    (rules,) = by_name(spans, "rules")
    database = [s for s in spans if s.attributes and "db.system" in s.attributes]
    assert server.parent is None and server.attributes is not None
    assert server.attributes["http.route"] == "/v1/check" and server.attributes["dutyline.request_id"] == "req-7"
    assert parent_of(decision, spans) is server and parent_of(rules, spans) is decision
    assert database, "reading and taking a use of the approval are database work"
    assert {parent_of(s, spans).name for s in database} == {"rules"}
    statements = " ".join(str(s.attributes.get("db.statement", "")) for s in database if s.attributes)
    assert "approvals" in statements and "UPDATE" in statements.upper()
    assert len({s.context.trace_id for s in spans}) == 1
    assert decision.attributes == {
        "dutyline.organisation": ORG,
        "dutyline.resource_type": "transaction",
        "dutyline.action": "enter",
        "dutyline.decision": "allow",
        "dutyline.decision.code": response.json()["code"],
        "dutyline.decision_id": response.json()["decision_id"],
        "dutyline.policy_version": response.json()["policy_version"],
        "dutyline.approval.presented": True,
        "dutyline.approval.used": True,
    }
    assert rules.attributes is not None and rules.attributes["dutyline.rules.outcome"] == "allow"
    assert rules.attributes["dutyline.rules.backend"] == "durable_rules"
    everything = repr([dict(s.attributes or {}) for s in spans])
    assert approval_id not in everything and "ann" not in everything, "who asked, and with what, is not traced"


def test_a_check_the_rules_refuse_records_the_outcome_and_the_rules_that_fired(
    traced: tuple[TestClient, InMemorySpanExporter],
) -> None:
    client, exporter = traced
    response = client.post("/v1/check", json=request("ann", "transaction", "enter", "t1", amount=20000))
    assert response.json()["decision"] == "needs_approval"
    (decision,) = by_name(exporter.get_finished_spans(), "decision")
    (rules,) = by_name(exporter.get_finished_spans(), "rules")
    assert decision.attributes is not None and decision.attributes["dutyline.decision"] == "needs_approval"
    assert "dutyline.approval.presented" not in decision.attributes and "dutyline.simulated" not in decision.attributes
    assert rules.attributes is not None and rules.attributes["dutyline.rules.fired"] == ("entry_limit",)
    assert not [s for s in exporter.get_finished_spans() if s.attributes and "db.system" in s.attributes]


def test_an_incoming_traceparent_is_the_parent_of_the_request_span(
    traced: tuple[TestClient, InMemorySpanExporter],
) -> None:
    client, exporter = traced
    response = client.post(
        "/v1/check", json=request("ann", "transaction", "view", "t1"), headers={"traceparent": TRACEPARENT}
    )
    assert response.status_code == 200
    spans = exporter.get_finished_spans()
    (server,) = by_name(spans, "POST /v1/check")
    assert server.parent is not None and server.parent.is_remote
    assert format(server.parent.span_id, "016x") == PARENT_ID
    assert {format(s.context.trace_id, "032x") for s in spans} == {TRACE_ID}


def test_an_authzen_evaluation_is_traced_as_its_decision(traced: tuple[TestClient, InMemorySpanExporter]) -> None:
    client, exporter = traced
    body = {
        "subject": {"type": "user", "id": "ann"},
        "action": {"name": "view"},
        "resource": {"type": "transaction", "id": "t1"},
        "context": {"organisation": ORG},
    }
    response = client.post("/access/v1/evaluation", json=body)
    assert response.status_code == 200 and response.json()["decision"] is True
    spans = exporter.get_finished_spans()
    (decision,) = by_name(spans, "decision")
    assert parent_of(decision, spans).name == "POST /access/v1/evaluation"
    assert decision.attributes is not None and decision.attributes["dutyline.decision"] == "allow"


def test_a_request_span_is_named_by_its_route_and_an_unknown_path_by_its_method(
    traced: tuple[TestClient, InMemorySpanExporter],
) -> None:
    client, exporter = traced
    assert client.get("/v1/approvals/apv_nope").status_code == 404
    assert client.get("/no/such/path").status_code == 404
    names = sorted(s.name for s in exporter.get_finished_spans() if s.parent is None)
    assert names == ["GET", "GET /v1/approvals/{approval_id}"]


def test_secrets_in_headers_are_never_span_attributes(traced: tuple[TestClient, InMemorySpanExporter]) -> None:
    client, exporter = traced
    token = "dlt_secret_value_that_must_not_leak"
    response = client.post(
        "/v1/check",
        json=request("ann", "transaction", "view", "t1"),
        headers={"Authorization": f"Bearer {token}", "Cookie": f"dutyline_session={token}"},
    )
    assert response.status_code in (200, 401)
    spans = exporter.get_finished_spans()
    assert spans
    assert token not in repr([dict(s.attributes or {}) for s in spans])


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def captured() -> Iterator[Records]:
    """The records of the service's loggers (after the app started: its logging configuration replaces handlers)."""
    handler = Records()
    logger = logging.getLogger("dutyline")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def approvals_unreadable(database_url: str) -> None:
    """Take the approvals table away under the running server: reading a presented approval then fails, which the
    ledger logs (from the worker thread that decides a check presenting an approval) and decides without it."""
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE approvals RENAME TO approvals_gone"))
    finally:
        engine.dispose()


def check_logging_a_warning(client: TestClient, **headers: str) -> Any:
    response = client.post(
        "/v1/check",
        json=request("ann", "transaction", "enter", "t1", amount=20000) | {"approval_id": "apv_unreadable"},
        headers=headers,
    )
    assert response.status_code == 200 and response.json()["decision"] == "needs_approval"
    return response


def test_log_records_of_a_request_carry_its_request_id_and_trace_id(
    traced: tuple[TestClient, InMemorySpanExporter], counter_db: str
) -> None:
    client, exporter = traced
    approvals_unreadable(counter_db)
    with captured() as records:
        logging.getLogger("dutyline.decisions").warning("outside any request")
        check_logging_a_warning(client, **{"X-Request-ID": "req-logged", "traceparent": TRACEPARENT})

    (outside,) = [r for r in records.records if r.getMessage() == "outside any request"]
    assert (outside.request_id, outside.trace_id) == (None, None)  # type: ignore[attr-defined]
    (warning,) = [r for r in records.records if "could not read approval apv_unreadable" in r.getMessage()]
    assert warning.threadName != threading.current_thread().name, "logged by the worker thread that decided"
    assert (warning.request_id, warning.trace_id) == ("req-logged", TRACE_ID)  # type: ignore[attr-defined]
    (rules,) = by_name(exporter.get_finished_spans(), "rules")
    assert warning.span_id == format(rules.context.span_id, "016x")  # type: ignore[attr-defined]
    entry = json.loads(JsonFormatter().format(warning))
    assert (entry["request_id"], entry["trace_id"]) == ("req-logged", TRACE_ID)
    (failed,) = [s for s in exporter.get_finished_spans() if s.attributes and "db.system" in s.attributes]
    assert failed.status.status_code is StatusCode.ERROR and parent_of(failed, exporter.get_finished_spans()) == rules


def test_log_records_carry_the_request_id_without_tracing(counter_db: str) -> None:
    with TestClient(create_app(settings_for(counter_db))) as client, captured() as records:
        approvals_unreadable(counter_db)
        check_logging_a_warning(client, **{"X-Request-ID": "req-untraced"})
        check_logging_a_warning(client)
    warnings = [r for r in records.records if "could not read approval" in r.getMessage()]
    assert [(r.request_id, r.trace_id) for r in warnings] == [("req-untraced", None), (None, None)]  # type: ignore[attr-defined]
    assert "trace_id" not in json.loads(JsonFormatter().format(warnings[0]))


def test_without_tracing_there_are_no_spans_and_the_answers_are_the_same(counter_db: str) -> None:
    body = request("ann", "transaction", "enter", "t1", amount=20000)
    answers = {}
    for flag in ("1", "0"):
        exporter = InMemorySpanExporter()
        with TestClient(create_app(settings_for(counter_db, DUTYLINE_OTEL=flag), span_exporter=exporter)) as client:
            exporter.clear()
            response = client.post("/v1/check", json=body, headers={"X-Request-ID": "same"})
            decisions = client.app.state.runtime.decisions
        assert response.status_code == 200
        answers[flag] = (
            {k: v for k, v in response.json().items() if k != "decision_id"},
            sorted((k, v) for k, v in response.headers.items() if k != "date"),
        )
        if flag == "0":
            assert exporter.get_finished_spans() == ()
            assert type(decisions) is DecisionService, "off, decisions are made by the plain service: no tracer call"
        else:
            assert exporter.get_finished_spans()
    assert answers["1"] == answers["0"]


@pytest.mark.parametrize("endpoint", ["not a url", "ftp://collector.example/v1/traces", "http://collector:port/x"])
def test_a_bad_otlp_endpoint_leaves_tracing_off_and_the_server_up(counter_db: str, endpoint: str) -> None:
    settings = settings_for(counter_db, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint)
    assert settings.otel, "an OTLP endpoint asks for tracing"
    with captured() as records:
        app = create_app(settings)
    (warning,) = [r for r in records.records if r.getMessage().startswith("tracing is off")]
    assert warning.levelno == logging.WARNING and "OTEL_EXPORTER_OTLP_ENDPOINT" in warning.getMessage()
    with TestClient(app) as client:
        response = client.post("/v1/check", json=request("ann", "transaction", "view", "t1"))
        assert response.status_code == 200 and response.json()["decision"] == "allow"
        assert type(client.app.state.runtime.decisions) is DecisionService


def test_a_collector_that_is_not_there_costs_the_server_nothing(counter_db: str) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}/v1/traces"  # nothing listens: every export fails
    with TestClient(create_app(settings_for(counter_db, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=endpoint))) as client:
        for _ in range(3):
            response = client.post("/v1/check", json=request("ann", "transaction", "view", "t1"))
            assert response.status_code == 200 and response.json()["decision"] == "allow"
        assert type(client.app.state.runtime.decisions) is not DecisionService, "traced"


@pytest.mark.parametrize(
    ("env", "on", "endpoint"),
    [
        ({}, False, ""),
        ({"DUTYLINE_OTEL": "1"}, True, ""),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318/"}, True, "http://otel:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://otel:4318/t"}, True, "http://otel:4318/t"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318", "DUTYLINE_OTEL": "0"},
            False,
            "http://otel:4318/v1/traces",
        ),
        ({"DUTYLINE_OTEL": "1", "OTEL_SDK_DISABLED": "true"}, False, ""),
    ],
)
def test_tracing_is_asked_for_by_dutyline_otel_or_the_standard_variables(
    env: dict[str, str], on: bool, endpoint: str
) -> None:
    settings = Settings.from_env(env)
    assert (settings.otel, settings.otel_endpoint) == (on, endpoint)
    assert Settings.from_env(env | {"OTEL_SERVICE_NAME": "pos-authz"}).otel_service_name == "pos-authz"


def test_what_is_logged_later_on_a_requests_behalf_carries_its_request_id(database_url: str, tmp_path: Path) -> None:
    """The outbox writer (the scheduler's thread) logs an obligation that could reach nobody, after the request."""
    folder = tmp_path / "counter"
    folder.mkdir()
    dan = "  - id: dan\n    name: {zh: 丹, en: Dan}\n    assignments:\n      - {post: director}\n"
    org = (WORKFLOW / "test_counter.yaml").read_text(encoding="utf-8")
    assert dan in org
    (folder / "test_counter.yaml").write_text(org.replace(dan, ""), encoding="utf-8")  # nobody above the manager
    # and a second rule telling the tellers, so that the obligation is written (one that reaches nobody is not)
    told = (
        "  - kind: notification\n    id: count_told\n    name: {zh: 清点通知, en: count told}\n"
        "    applies_to: {resources: [cash_box], actions: [count]}\n    when: exists(context.discrepancy)\n"
        "    notify: [teller]\n    message: {zh: 清点, en: A count}\n"
    )
    rules = (WORKFLOW / "test_counter_rules.yaml").read_text("utf-8").replace("case_types:\n", told + "case_types:\n")
    (folder / "test_counter_rules.yaml").write_text(rules, "utf-8")
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        import_paths(session_factory(engine), [folder], author="test")
    finally:
        engine.dispose()
    app = create_app(settings_for(database_url, DUTYLINE_ESCALATION_INTERVAL="0.2"))
    with TestClient(app) as client, captured() as records:
        body = request("mia", "cash_box", "count", "box1", discrepancy=5)
        response = client.post("/v1/check", json=body, headers={"X-Request-ID": "req-later"})
        assert response.json()["decision"] == "allow"

        def told_nobody() -> list[logging.LogRecord]:
            return [r for r in records.records if "notified nobody" in r.getMessage()]

        assert eventually(told_nobody), "the obligation's writer did not log the vacancy"
    (warning,) = told_nobody()
    assert (
        warning.threadName != threading.current_thread().name and response.json()["decision_id"] in warning.getMessage()
    )
    assert warning.request_id == "req-later"  # type: ignore[attr-defined]


class Collector:
    """An OTLP/HTTP traces receiver on a loopback port: what a real `dutyline serve` exports, decoded."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        received = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                received.append(ExportTraceServiceRequest.FromString(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self) -> list[Any]:
        return [
            (span, resource.resource)
            for request in list(self.requests)
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_real_server_exports_its_traces_over_otlp_and_logs_the_ids(counter_db: str) -> None:
    collector = Collector()
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    server = LiveServer(counter_db, extra_env=env | {"OTEL_SERVICE_NAME": "dutyline-test"})
    try:
        server.wait_ready()
        approvals_unreadable(counter_db)
        body = request("ann", "transaction", "enter", "t1", amount=20000) | {"approval_id": "apv_unreadable"}
        headers = {"X-Request-ID": "req-live", "traceparent": TRACEPARENT}
        response = httpx.post(f"{server.url}/v1/check", json=body, headers=headers, timeout=10)
        assert response.status_code == 200 and response.json()["decision"] == "needs_approval"

        def decision_spans() -> list[Any]:
            return [(s, r) for s, r in collector.spans() if s.name == "decision" and s.trace_id.hex() == TRACE_ID]

        assert eventually(decision_spans), "no decision span reached the collector"
        (span, resource), *_ = decision_spans()
        attributes = {a.key: a.value.string_value or a.value.int_value for a in span.attributes}
        assert attributes["dutyline.organisation"] == ORG and attributes["dutyline.decision"] == "needs_approval"
        assert {a.key: a.value.string_value for a in resource.attributes}["service.name"] == "dutyline-test"
        lines = [json.loads(line) for line in server.log_text().splitlines() if "could not read approval" in line]
        assert lines and lines[0]["request_id"] == "req-live" and lines[0]["trace_id"] == TRACE_ID
    finally:
        server.stop()
        collector.close()
