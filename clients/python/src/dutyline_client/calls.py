"""Every operation of the decision API as a `Call`: the request to send and how to read its answer. `Client` and
`AsyncClient` differ only in how they send one, so what is asked and how it is decoded is written once, here.

`OPERATIONS` names, for each operation of the server's OpenAPI document (method and path template), the client
method that covers it; the tests fail when the document has one that is not in it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import msgspec

from dutyline_client import models as m
from dutyline_client.requests import (
    Action,
    CheckRequest,
    CheckResource,
    CheckSubject,
    EvaluationItem,
    Resource,
    Semantic,
    Subject,
)

T = TypeVar("T")

OPERATIONS: dict[str, str] = {
    "POST /v1/check": "check",
    "POST /v1/checks": "checks",
    "POST /access/v1/evaluation": "evaluation",
    "POST /orgs/{org}/access/v1/evaluation": "evaluation",
    "POST /access/v1/evaluations": "evaluations",
    "POST /orgs/{org}/access/v1/evaluations": "evaluations",
    "POST /access/v1/search/subject": "search_subjects",
    "POST /orgs/{org}/access/v1/search/subject": "search_subjects",
    "POST /access/v1/search/resource": "search_resources",
    "POST /orgs/{org}/access/v1/search/resource": "search_resources",
    "POST /access/v1/search/action": "search_actions",
    "POST /orgs/{org}/access/v1/search/action": "search_actions",
    "GET /.well-known/authzen-configuration": "configuration",
    "GET /.well-known/authzen-configuration/{org}": "configuration",
    "POST /access/v1/requests": "submit_access_request",
    "GET /access/v1/requests/{task_id}": "task_status",
    "POST /access/v1/requests/{task_id}/cancel": "cancel_access_request",
    "GET /access/v1/request-schema": "access_request_schema",
    "GET /v1/orgs/{org_id}/people/{person}/permissions": "permissions",
    "GET /v1/orgs/{org_id}/who": "who",
    "GET /v1/orgs/{org_id}/posts/{post}/reporting-line": "reporting_line",
    "GET /v1/decisions": "decisions",
    "POST /v1/approvals": "open_approval",
    "GET /v1/approvals": "approvals",
    "GET /v1/approvals/{approval_id}": "approval",
    "POST /v1/approvals/{approval_id}/approve": "approve",
    "POST /v1/approvals/{approval_id}/reject": "reject",
    "POST /v1/cases": "open_case",
    "GET /v1/cases": "cases",
    "GET /v1/cases/{case_id}": "case",
    "POST /v1/cases/{case_id}/resolve": "resolve_case",
    "GET /v1/notifications": "notifications",
    "POST /v1/orgs/{org_id}/usage": "record_usage",
    "GET /v1/orgs/{org_id}/usage": "usage_total",
    "GET /v1/changes": "changes",
}


@dataclass(frozen=True, slots=True)
class Unanswered:
    """Why the client answers a decision itself: Dutyline could not be reached, or could not answer in time."""

    code: str  # dutyline_unreachable | dutyline_unavailable
    en: str
    zh: str
    allow: bool  # fail_open


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request and how to read its answer."""

    method: str
    path: str
    decode: Callable[[bytes], T]
    body: bytes | None = None
    params: dict[str, str] | None = None
    # Safe to send again after the request may have reached the server (a read timeout, a reset): nothing it does
    # happens twice. A call that is not is retried only when it surely never left (connection refused).
    idempotent: bool = True
    # For decisions: the answer when Dutyline cannot give one (fail closed unless fail_open).
    fallback: Callable[[Unanswered], T] | None = None
    cache_key: bytes | None = None  # `/v1/check` answers that may be cached
    headers: dict[str, str] | None = None  # beyond the content type (an access request's Idempotency-Key)
    wants_version: bool = False  # sends at_least_version when the client knows of a newer change


_ENCODE = msgspec.json.Encoder(decimal_format="number")
_KEY = msgspec.json.Encoder(order="sorted")


def _segment(value: str) -> str:
    return quote(value, safe="")


def _params(**values: str | int | None) -> dict[str, str] | None:
    kept = {k: str(v) for k, v in values.items() if v is not None}
    return kept or None


def _decoder(kind: type[T]) -> Callable[[bytes], T]:
    return msgspec.json.Decoder(kind).decode


def _access(organisation: str | None, endpoint: str) -> str:
    return f"/orgs/{_segment(organisation)}/access/v1/{endpoint}" if organisation else f"/access/v1/{endpoint}"


def _explain(explain: bool) -> dict[str, str] | None:
    return {"explain": "true"} if explain else None


# --- /v1/check, /v1/checks ----------------------------------------------------------------------------------


def local_result(request: CheckRequest, why: Unanswered) -> m.CheckResult:
    """The client's own answer to a check Dutyline did not answer."""
    return m.CheckResult(
        decision="allow" if why.allow else "deny",
        decision_id="",
        policy_version=0,
        organisation=request.organisation,
        subject=request.subject.id,
        code=why.code,
        reasons=[m.Reason(code=why.code, zh=why.zh, en=why.en)],
        rules=[],
        approvers=[],
        obligations=[],
    )


def check(request: CheckRequest) -> Call[m.CheckResult]:
    cacheable = request.approval_id is None and not request.simulated
    return Call(
        "POST",
        "/v1/check",
        _decoder(m.CheckResult),
        _ENCODE.encode(request),
        idempotent=request.approval_id is None,  # presenting an approval takes one of its uses
        fallback=lambda why: local_result(request, why),
        cache_key=_KEY.encode(msgspec.structs.replace(request, at_least_version=None)) if cacheable else None,
        wants_version=True,
    )


class _RawResults(msgspec.Struct):
    results: list[dict[str, Any]]
    policy_version: int


_RAW_RESULTS = msgspec.json.Decoder(_RawResults)


def _check_results(content: bytes) -> m.CheckResults:
    raw = _RAW_RESULTS.decode(content)
    results: list[m.CheckResult | m.CheckError] = [
        msgspec.convert(r, m.CheckError) if r.get("decision") == "error" else msgspec.convert(r, m.CheckResult)
        for r in raw.results
    ]
    return m.CheckResults(results=results, policy_version=raw.policy_version)


class _Checks(msgspec.Struct, omit_defaults=True):
    checks: Sequence[CheckRequest]
    at_least_version: int | None = None


def checks(requests: Sequence[CheckRequest], at_least_version: int | None) -> Call[m.CheckResults]:
    listed = list(requests)
    return Call(
        "POST",
        "/v1/checks",
        _check_results,
        _ENCODE.encode(_Checks(listed, at_least_version)),
        idempotent=all(r.approval_id is None for r in listed),
        fallback=lambda why: m.CheckResults(results=[local_result(r, why) for r in listed], policy_version=0),
        wants_version=True,
    )


def with_version(call: Call[T], version: int) -> Call[T]:
    """`call` (a check or a batch) waiting for `version` unless it asks for a later one itself."""
    assert call.body is not None
    body = msgspec.json.decode(call.body)
    if (body.get("at_least_version") or -1) >= version:
        return call
    body["at_least_version"] = version
    return dataclasses.replace(call, body=_ENCODE.encode(body))


# --- AuthZEN ------------------------------------------------------------------------------------------------


def _local_decision(why: Unanswered) -> m.Decision:
    return m.Decision(
        decision=why.allow,
        context=m.DecisionContext(
            reason_admin=m.Texts(zh=why.zh, en=why.en),
            reason_user=m.Texts(zh="允许" if why.allow else "不允许", en="allowed" if why.allow else "not allowed"),
        ),
    )


class _Evaluation(msgspec.Struct, omit_defaults=True):
    subject: Subject
    action: Action
    resource: Resource
    context: dict[str, Any] | None = None


def evaluation(
    subject: Subject,
    action: Action,
    resource: Resource,
    context: dict[str, Any] | None,
    explain: bool,
    organisation: str | None,
) -> Call[m.Decision]:
    return Call(
        "POST",
        _access(organisation, "evaluation"),
        _decoder(m.Decision),
        _ENCODE.encode(_Evaluation(subject, action, resource, context)),
        _explain(explain),
        fallback=_local_decision,
    )


class _Options(msgspec.Struct):
    evaluations_semantic: str


class _Evaluations(msgspec.Struct, omit_defaults=True):
    subject: Subject | None = None
    action: Action | None = None
    resource: Resource | None = None
    context: dict[str, Any] | None = None
    evaluations: list[EvaluationItem] | None = None
    options: _Options | None = None


def evaluations(
    items: Sequence[EvaluationItem],
    subject: Subject | None,
    action: Action | None,
    resource: Resource | None,
    context: dict[str, Any] | None,
    semantic: Semantic | None,
    explain: bool,
    organisation: str | None,
) -> Call[m.EvaluationResults]:
    listed = list(items)
    body = _Evaluations(subject, action, resource, context, listed, _Options(semantic) if semantic else None)

    def decode(content: bytes) -> m.EvaluationResults:
        # Without items the server answers the top level as one evaluation: the client always answers a list.
        if listed:
            return _decoder(m.EvaluationResults)(content)
        return m.EvaluationResults(evaluations=[_decoder(m.Decision)(content)])

    def fallback(why: Unanswered) -> m.EvaluationResults:
        return m.EvaluationResults(evaluations=[_local_decision(why) for _ in range(max(1, len(listed)))])

    return Call(
        "POST", _access(organisation, "evaluations"), decode, _ENCODE.encode(body), _explain(explain), fallback=fallback
    )


class _Page(msgspec.Struct, omit_defaults=True):
    token: str | None = None
    limit: int | None = None


class _Typed(msgspec.Struct, omit_defaults=True):
    type: str
    id: str | None = None
    properties: dict[str, Any] | None = None


def _page(token: str | None, limit: int | None) -> _Page | None:
    return _Page(token, limit) if token or limit else None


class _SubjectSearch(msgspec.Struct, omit_defaults=True):
    subject: _Typed
    action: Action
    resource: Resource
    context: dict[str, Any] | None = None
    page: _Page | None = None


def search_subjects(
    subject_type: str,
    action: Action,
    resource: Resource,
    context: dict[str, Any] | None,
    page_token: str | None,
    limit: int | None,
    organisation: str | None,
) -> Call[m.SearchResults]:
    body = _SubjectSearch(_Typed(subject_type), action, resource, context, _page(page_token, limit))
    return Call("POST", _access(organisation, "search/subject"), _decoder(m.SearchResults), _ENCODE.encode(body))


class _ResourceSearch(msgspec.Struct, omit_defaults=True):
    subject: Subject
    action: Action
    resource: _Typed
    context: dict[str, Any] | None = None
    page: _Page | None = None


def search_resources(
    subject: Subject,
    action: Action,
    resource_type: str,
    context: dict[str, Any] | None,
    page_token: str | None,
    limit: int | None,
    organisation: str | None,
) -> Call[m.SearchResults]:
    body = _ResourceSearch(subject, action, _Typed(resource_type), context, _page(page_token, limit))
    return Call("POST", _access(organisation, "search/resource"), _decoder(m.SearchResults), _ENCODE.encode(body))


class _ActionSearch(msgspec.Struct, omit_defaults=True):
    subject: Subject
    resource: Resource
    context: dict[str, Any] | None = None
    page: _Page | None = None


def search_actions(
    subject: Subject,
    resource: Resource,
    context: dict[str, Any] | None,
    page_token: str | None,
    limit: int | None,
    organisation: str | None,
) -> Call[m.ActionSearchResults]:
    body = _ActionSearch(subject, resource, context, _page(page_token, limit))
    return Call("POST", _access(organisation, "search/action"), _decoder(m.ActionSearchResults), _ENCODE.encode(body))


def configuration(organisation: str | None) -> Call[m.PdpMetadata]:
    path = "/.well-known/authzen-configuration" + (f"/{_segment(organisation)}" if organisation else "")
    return Call("GET", path, _decoder(m.PdpMetadata))


# --- the access request profile -----------------------------------------------------------------------------


class _Denial(msgspec.Struct, omit_defaults=True):
    expires_at: str
    binding_token: str
    evaluation_id: str | None = None
    evaluated_at: str | None = None
    reason: str | None = None
    template: str | None = None


class _Callback(msgspec.Struct, omit_defaults=True):
    endpoint: str
    state: str | None = None
    events: list[str] | None = None


class _Submission(msgspec.Struct, omit_defaults=True):
    subject: Subject
    resource: Resource
    action: Action
    denial: _Denial
    context: dict[str, Any] | None = None
    callback: _Callback | None = None


def submit_access_request(
    denied: m.Decision,
    subject: Subject,
    action: Action,
    resource: Resource,
    context: dict[str, Any] | None,
    justification: str | None,
    callback: str | None,
    callback_state: str | None,
    idempotency_key: str | None,
) -> Call[m.TaskResponse]:
    hint = denied.context.access_request if denied.context is not None else None
    if denied.decision or hint is None or denied.context is None:
        raise ValueError("not a requestable denial: the decision has no context.access_request")
    given = dict(context or {})
    if justification is not None:
        given["business_justification"] = justification
    denial = _Denial(
        hint.expires_at,
        hint.binding_token,
        denied.context.evaluation_id,
        denied.context.evaluated_at,
        denied.context.reason,
        hint.template,
    )
    body = _Submission(
        subject,
        resource,
        action,
        denial,
        given or None,
        _Callback(callback, callback_state) if callback is not None else None,
    )
    return Call(
        "POST",
        "/access/v1/requests",
        _decoder(m.TaskResponse),
        _ENCODE.encode(body),
        # With an Idempotency-Key a retry returns the same task; without one, the binding token does.
        idempotent=idempotency_key is not None,
        headers={"idempotency-key": idempotency_key} if idempotency_key is not None else None,
    )


def task_status(task_id: str) -> Call[m.TaskResponse]:
    return Call("GET", f"/access/v1/requests/{_segment(task_id)}", _decoder(m.TaskResponse))


class _Cancel(msgspec.Struct, omit_defaults=True):
    reason: str | None = None
    comment: str | None = None


def cancel_access_request(task_id: str, reason: str | None, comment: str | None) -> Call[m.TaskResponse]:
    return Call(
        "POST",
        f"/access/v1/requests/{_segment(task_id)}/cancel",
        _decoder(m.TaskResponse),
        _ENCODE.encode(_Cancel(reason, comment)),
        idempotent=False,
    )


def access_request_schema() -> Call[dict[str, Any]]:
    return Call("GET", "/access/v1/request-schema", _decoder(dict[str, Any]))


def reevaluation(
    subject: Subject,
    action: Action,
    resource: Resource,
    approval: m.ApprovalRef,
    context: dict[str, Any] | None,
    explain: bool,
    organisation: str | None,
) -> Call[m.Decision]:
    """An evaluation presenting `approval` unchanged at `context.approval`, as the profile says."""
    presented = {k: v for k, v in msgspec.to_builtins(approval).items() if v is not None}
    return evaluation(subject, action, resource, {**(context or {}), "approval": presented}, explain, organisation)


# --- queries ------------------------------------------------------------------------------------------------


def permissions(organisation: str, person: str, at: str | None, as_of: str | None) -> Call[m.PersonPermissions]:
    return Call(
        "GET",
        f"/v1/orgs/{_segment(organisation)}/people/{_segment(person)}/permissions",
        _decoder(m.PersonPermissions),
        params=_params(at=at, as_of=as_of),
    )


def who(
    organisation: str,
    resource: str,
    action: str,
    resource_id: str | None,
    at: str | None,
    as_of: str | None,
    page_token: str | None,
    limit: int | None,
) -> Call[m.WhoMay]:
    return Call(
        "GET",
        f"/v1/orgs/{_segment(organisation)}/who",
        _decoder(m.WhoMay),
        params=_params(
            resource=resource,
            action=action,
            resource_id=resource_id,
            at=at,
            as_of=as_of,
            page_token=page_token,
            limit=limit,
        ),
    )


def reporting_line(organisation: str, post: str, at: str | None) -> Call[m.ReportingLine]:
    return Call(
        "GET",
        f"/v1/orgs/{_segment(organisation)}/posts/{_segment(post)}/reporting-line",
        _decoder(m.ReportingLine),
        params=_params(at=at),
    )


def decisions(filters: dict[str, str | int | None]) -> Call[m.DecisionLog]:
    return Call("GET", "/v1/decisions", _decoder(m.DecisionLog), params=_params(**filters))


# --- approvals ----------------------------------------------------------------------------------------------


class _ApprovalBody(msgspec.Struct, omit_defaults=True):
    organisation: str
    subject: CheckSubject
    resource: CheckResource
    action: str
    at: str | None = None
    context: dict[str, Any] | None = None
    comment: str = ""
    uses: int = 1


def open_approval(request: CheckRequest, comment: str, uses: int) -> Call[m.ApprovalRecord]:
    body = _ApprovalBody(
        request.organisation,
        request.subject,
        request.resource,
        request.action,
        request.at,
        request.context,
        comment,
        uses,
    )
    return Call("POST", "/v1/approvals", _decoder(m.ApprovalRecord), _ENCODE.encode(body), idempotent=False)


def _items(kind: type[Any]) -> Callable[[bytes], Any]:
    decode = _decoder(kind)
    return lambda content: decode(content).items


def approvals(
    organisation: str | None, approver: str | None, status: str | None, requester: str | None, limit: int | None
) -> Call[list[m.Approval]]:
    return Call(
        "GET",
        "/v1/approvals",
        _items(m.Approvals),
        params=_params(organisation=organisation, approver=approver, status=status, requester=requester, limit=limit),
    )


def approval(approval_id: str) -> Call[m.ApprovalRecord]:
    return Call("GET", f"/v1/approvals/{_segment(approval_id)}", _decoder(m.ApprovalRecord))


class _Decide(msgspec.Struct, omit_defaults=True):
    person: str | None = None
    comment: str = ""


def decide(approval_id: str, verb: str, person: str | None, comment: str) -> Call[m.ApprovalRecord]:
    return Call(
        "POST",
        f"/v1/approvals/{_segment(approval_id)}/{verb}",
        _decoder(m.ApprovalRecord),
        _ENCODE.encode(_Decide(person, comment)),
        idempotent=False,
    )


# --- cases and notifications --------------------------------------------------------------------------------


class _CaseBody(msgspec.Struct, omit_defaults=True):
    organisation: str
    type: str
    title: str
    subject: str | None = None
    data: dict[str, Any] | None = None


def open_case(
    organisation: str, case_type: str, title: str, subject: str | None, data: dict[str, Any] | None
) -> Call[m.CaseRecord]:
    body = _CaseBody(organisation, case_type, title, subject, data)
    return Call("POST", "/v1/cases", _decoder(m.CaseRecord), _ENCODE.encode(body), idempotent=False)


def cases(organisation: str | None, status: str | None, post: str | None, limit: int | None) -> Call[list[m.Case]]:
    return Call(
        "GET",
        "/v1/cases",
        _items(m.Cases),
        params=_params(organisation=organisation, status=status, post=post, limit=limit),
    )


def case(case_id: str) -> Call[m.CaseRecord]:
    return Call("GET", f"/v1/cases/{_segment(case_id)}", _decoder(m.CaseRecord))


def resolve_case(case_id: str, person: str | None, comment: str) -> Call[m.CaseRecord]:
    return Call(
        "POST",
        f"/v1/cases/{_segment(case_id)}/resolve",
        _decoder(m.CaseRecord),
        _ENCODE.encode(_Decide(person, comment)),
        idempotent=False,
    )


def notifications(
    organisation: str | None, post: str | None, since: str | None, after_id: int | None, limit: int | None
) -> Call[list[m.OutboxNotification]]:
    return Call(
        "GET",
        "/v1/notifications",
        _items(m.Notifications),
        params=_params(organisation=organisation, post=post, since=since, after_id=after_id, limit=limit),
    )


# --- usage --------------------------------------------------------------------------------------------------


class _UsageBody(msgspec.Struct, omit_defaults=True):
    person: str
    rule: str
    amount: Decimal | int | float | None = None
    at: str | None = None
    decision_id: str | None = None
    reverses: int | None = None


def record_usage(
    organisation: str,
    person: str,
    rule: str,
    amount: Decimal | int | float | None,
    at: str | None,
    decision_id: str | None,
    reverses: int | None,
) -> Call[m.UsageRecorded]:
    body = _UsageBody(person, rule, amount, at, decision_id, reverses)
    return Call(
        "POST",
        f"/v1/orgs/{_segment(organisation)}/usage",
        _decoder(m.UsageRecorded),
        _ENCODE.encode(body),
        idempotent=False,
    )


def usage_total(organisation: str, person: str, rule: str, at: str | None) -> Call[m.UsageTotal]:
    return Call(
        "GET",
        f"/v1/orgs/{_segment(organisation)}/usage",
        _decoder(m.UsageTotal),
        params=_params(person=person, rule=rule, at=at),
    )
