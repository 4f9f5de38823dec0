"""OpenTelemetry traces: the only module of ours that imports OpenTelemetry (an optional extra, `dutyline[otel]`).

Imported only when tracing is on (`Settings.otel`). Off, nothing here runs: the app has no tracing middleware, the
runtime builds the plain `DecisionService` and the database engine has no listeners, so the decision path makes no
tracer call. On, a request's trace is

    POST /v1/check                      the server span (ASGI instrumentation; an incoming W3C traceparent is its parent)
      decision                          DecisionService.answer: the organisation, action, outcome, policy version
        rules                           the business rules: facts, the rule host, the approval presented
          SELECT …  / UPDATE …          database work (SQLAlchemy), e.g. reading and using the approval

Spans name what was decided, never who asked nor with what: no subject, no context values, no tokens or approval
ids. Database spans are made only inside a traced operation: the background threads' queries (the refresh loop,
the decision-log writer) would otherwise be a root trace every second. The engines know nothing of this: spans
are made around their calls.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Span, Status, StatusCode
from sqlalchemy import Engine

from dutyline import __version__, logs
from dutyline.engines.binding import Presented
from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.decision import Check, Decision
from dutyline.engines.policyset import PolicySet
from dutyline.engines.rules import Verdict
from dutyline.services.decisions import Answer, DecisionService, PastPolicy, Question
from dutyline.settings import Settings

__all__ = ["SpanExporter", "Tracing", "start"]

log = logging.getLogger("dutyline.tracing")

# How long stopping the server waits for the last spans to be exported.
SHUTDOWN_WAIT = 2.0


def start(settings: Settings, exporter: SpanExporter | None = None) -> Tracing | None:
    """Tracing for one app: spans to `exporter` as each ends (tests), else in batches over OTLP/HTTP to the settings'
    endpoint. None, logged, when that cannot be set up: telemetry never stops the server."""
    try:
        if exporter is None:
            exporter = _otlp(settings.otel_endpoint)
            processor: SimpleSpanProcessor | BatchSpanProcessor = BatchSpanProcessor(exporter)
        else:
            processor = SimpleSpanProcessor(exporter)
        resource = Resource.create({"service.name": settings.otel_service_name, "service.version": __version__})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(processor)
    except Exception as exc:
        log.warning("tracing is off: %s (DUTYLINE_OTEL, OTEL_EXPORTER_OTLP_ENDPOINT; docs/deployment.md)", exc)
        return None
    logs.read_trace_ids_with(current_ids)
    return Tracing(provider, exporter, provider.get_tracer("dutyline", __version__), settings.rules_backend)


def _otlp(endpoint: str) -> SpanExporter:
    """The OTLP/HTTP exporter to `endpoint` (empty: its default, localhost:4318); ValueError for one that is no
    http(s) URL, which would otherwise fail on every export."""
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the OTLP traces endpoint {endpoint!r} is not an http(s) URL")
        try:
            parts.port  # noqa: B018  (reading it checks it)
        except ValueError:
            raise ValueError(f"the OTLP traces endpoint {endpoint!r} has no valid port") from None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint or None)


def current_ids() -> tuple[str, str] | None:
    """The current span's trace and span ids in their W3C hex form, or None outside any span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


@dataclass(frozen=True, slots=True)
class Tracing:
    provider: TracerProvider
    exporter: SpanExporter
    tracer: trace.Tracer
    rules_backend: str

    def decisions(self, *args: Any, **kwargs: Any) -> DecisionService:
        """The decision service (`DecisionService`'s arguments), spanning each decision and its rules."""
        return TracedDecisionService(self.tracer, self.rules_backend, *args, **kwargs)

    def trace_engine(self, engine: Engine) -> None:
        """Database spans for `engine`'s statements run inside a traced operation. The instrumentor's `instrument()`
        would patch `create_engine` for the whole process; one listener per engine keeps it to this app's."""
        try:
            from opentelemetry.instrumentation.sqlalchemy import __version__ as version
            from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
            from opentelemetry.metrics import NoOpMeterProvider

            class WithinTraces(EngineTracer):
                def _before_cur_exec(self, conn: Any, cursor: Any, statement: Any, *rest: Any) -> Any:
                    if not trace.get_current_span().is_recording():
                        return statement, rest[0]
                    return super()._before_cur_exec(conn, cursor, statement, *rest)

            usage = NoOpMeterProvider().get_meter("dutyline").create_up_down_counter("db.client.connections.usage")
            WithinTraces(self.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy", version), engine, usage)
        except Exception:  # an instrumentation release that changed its insides: traces without database spans
            log.warning("tracing: no database spans (opentelemetry-instrumentation-sqlalchemy)", exc_info=True)

    def span_details(self, scope: Any) -> tuple[str, dict[str, str]]:
        """A request span's first name: its method. Litestar runs the instrumentation before routing (so that
        unknown paths are traced too); `NamedByRoute` renames the span once the route is known."""
        return str(scope.get("method", "HTTP")), {}

    def on_request(self, span: Span, scope: dict[str, Any]) -> None:
        """The server span of a request carries its X-Request-ID, which its log records carry too."""
        if span.is_recording():
            for key, value in scope["headers"]:
                if key == b"x-request-id":
                    span.set_attribute("dutyline.request_id", value[:200].decode("latin-1"))
                    break

    def shutdown(self, wait: float = SHUTDOWN_WAIT) -> None:
        """Export what is still queued and stop, waiting at most about `wait` seconds: a collector that is down
        would hold the server's stop for the exporter's retries (10 s)."""
        stopping = threading.Thread(target=self._shutdown, name="dutyline-tracing-shutdown", daemon=True)
        stopping.start()
        stopping.join(wait)
        if stopping.is_alive():
            log.warning("tracing: the collector did not take the last spans within %.0f s; they are dropped", wait)
            self.exporter.shutdown()  # ends the exporter's retries
            stopping.join(wait)

    def _shutdown(self) -> None:
        try:
            self.provider.shutdown()
        except Exception:
            log.warning("tracing: spans lost at shutdown", exc_info=True)


class NamedByRoute:
    """ASGI middleware inside routing: the request's span is named by its route (`GET /v1/approvals/{approval_id}`),
    one name per endpoint whatever ids the path holds, as the semantic conventions ask (`http.route`)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        route = scope.get("path_template")
        if route and scope["type"] == "http":
            span = trace.get_current_span()
            if span.is_recording():
                span.update_name(f"{scope['method']} {route}")
                span.set_attribute("http.route", route)
        await self.app(scope, receive, send)


class TracedDecisionService(DecisionService):
    """`DecisionService`, each decision a `decision` span and its business rules a `rules` span inside it."""

    def __init__(self, tracer: trace.Tracer, rules_backend: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tracer = tracer
        self._rules_backend = rules_backend

    def answer(self, question: Question, past: PastPolicy | None = None) -> Answer:
        with self._tracer.start_as_current_span("decision") as span:
            answer = super().answer(question, past)
            if span.is_recording():
                organisation = answer.organisation.id if answer.organisation is not None else question.organisation
                span.set_attributes(
                    {
                        "dutyline.organisation": organisation or "",
                        "dutyline.resource_type": question.resource_type,
                        "dutyline.action": question.action,
                        "dutyline.decision": answer.outcome,
                        "dutyline.decision.code": answer.verdict.code,
                        "dutyline.decision_id": answer.decision_id,
                        "dutyline.policy_version": answer.policy_version,
                    }
                )
                # the unusual ones only when they hold: each attribute costs a validation on every decision
                if question.simulated:
                    span.set_attribute("dutyline.simulated", True)
                if past is not None:
                    span.set_attribute("dutyline.as_of", True)
                if question.approval_id is not None:
                    span.set_attribute("dutyline.approval.presented", True)
                    span.set_attribute("dutyline.approval.used", answer.used_approval is not None)
                if answer.verdict.code == "internal_error":
                    span.set_status(Status(StatusCode.ERROR, "the decision failed and was denied"))
            return answer

    def _rules(
        self,
        policies: PolicySet,
        org: CompiledOrg,
        question: Question,
        check: Check,
        decision: Decision,
        decision_id: str,
        past: PastPolicy | None,
    ) -> tuple[Verdict, Presented | None]:
        with self._tracer.start_as_current_span("rules") as span:
            verdict, presented = super()._rules(policies, org, question, check, decision, decision_id, past)
            if span.is_recording():
                span.set_attributes(
                    {
                        "dutyline.rules.backend": self._rules_backend,
                        "dutyline.rules.outcome": verdict.outcome,
                        "dutyline.rules.fired": sorted({h.rule for h in verdict.hits}),
                    }
                )
            return verdict, presented
