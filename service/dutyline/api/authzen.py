"""The OpenID AuthZEN Authorization API 1.0: evaluation, evaluations, search, and PDP metadata.

Mapping (see docs/api.md): subject = a person (any `type`; the id may be any of the person's identities)
or a post (`type: post`); resource type = a catalogue resource type, resource id = an instance (or any id);
action name = a catalogue action. The organisation is the path's (`/orgs/{org}/access/v1/...`), or named
in `context.organisation`, `resource.properties.organisation` or `subject.properties.organisation`, or
else the only organisation that knows the subject. `context.time` (RFC 3339) asks about another instant, in the
searches as in evaluation. A search lists what evaluation would permit (the business rules included); conditional
results are left out. Page tokens are bound to their request (`api.paging`).
Reasons are given in the response's `context` when the caller asks with `?explain=true`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Annotated, Any, Literal, cast

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from dutyline.api.body import convert, decode, read_body, read_json
from dutyline.api.middleware import request_id_of
from dutyline.api.openapi import DECIDE, answers, takes
from dutyline.api.paging import ListingPosition, PageTokens
from dutyline.api.schemas import (
    ActionSearchResults,
    Decision,
    EvaluationResults,
    Found,
    FoundAction,
    NextPage,
    PdpMetadata,
    SearchResults,
)
from dutyline.errors import Invalid, Issue, NotFound
from dutyline.orgmodel.windows import moment
from dutyline.runtime import Runtime
from dutyline.services.access_requests import CAPABILITY, rfc3339
from dutyline.services.decisions import Answer, Question
from dutyline.services.policies import PolicyService
from dutyline.services.search import SearchKind

NonEmpty = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
Properties = dict[str, Any]


class Subject(msgspec.Struct):
    type: NonEmpty
    id: NonEmpty
    properties: Properties | None = None


class Action(msgspec.Struct):
    name: NonEmpty
    properties: Properties | None = None


class Resource(msgspec.Struct):
    type: NonEmpty
    id: NonEmpty
    properties: Properties | None = None


class Evaluation(msgspec.Struct):
    subject: Subject
    action: Action
    resource: Resource
    context: Properties | None = None


class Options(msgspec.Struct):
    evaluations_semantic: Literal["execute_all", "deny_on_first_deny", "permit_on_first_permit"] = "execute_all"


class Evaluations(msgspec.Struct):
    subject: Subject | None = None
    action: Action | None = None
    resource: Resource | None = None
    context: Properties | None = None
    evaluations: list[dict[str, Any]] | None = None
    options: Options | None = None


class EvaluationItem(msgspec.Struct):
    """One item of a batch; what it leaves out comes from the request's top level."""

    subject: Subject | None = None
    action: Action | None = None
    resource: Resource | None = None
    context: Properties | None = None


class TypedEvaluations(msgspec.Struct):
    """`Evaluations` with every item typed: decoded in one pass when every item is well-formed (the usual
    case). A batch with a malformed item is decoded again as `Evaluations`, so that each item gets its own error."""

    subject: Subject | None = None
    action: Action | None = None
    resource: Resource | None = None
    context: Properties | None = None
    evaluations: list[EvaluationItem] | None = None
    options: Options | None = None


class Page(msgspec.Struct):
    token: str | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None


class SubjectType(msgspec.Struct):
    type: NonEmpty
    id: str | None = None
    properties: Properties | None = None


class ResourceType(msgspec.Struct):
    type: NonEmpty
    id: str | None = None
    properties: Properties | None = None


class SubjectSearch(msgspec.Struct):
    subject: SubjectType
    action: Action
    resource: Resource
    context: Properties | None = None
    page: Page | None = None


class ResourceSearch(msgspec.Struct):
    subject: Subject
    action: Action
    resource: ResourceType
    context: Properties | None = None
    page: Page | None = None


class ActionSearch(msgspec.Struct):
    subject: Subject
    resource: Resource
    context: Properties | None = None
    page: Page | None = None


# Evaluations are the decision hot path: encoded by hand, as their bodies are decoded (ADR 0003, 0010).
_ENCODE = msgspec.json.Encoder()
_PATHS = ["/access/v1/{endpoint}", "/orgs/{org:str}/access/v1/{endpoint}"]


def _paths(endpoint: str) -> list[str]:
    return [p.replace("{endpoint}", endpoint) for p in _PATHS]


def _json(payload: Any) -> Response[bytes]:
    return Response(_ENCODE.encode(payload), media_type="application/json")


def time_of(context: Properties | None) -> float | None:
    """The instant `context.time` asks about (None: now), for evaluations and searches alike; a 400 naming it when
    it is not an RFC 3339 date-time."""
    if not context or "time" not in context:
        return None
    return moment(context["time"], None, "context.time", "an RFC 3339 date-time")


def approval_of(context: Properties | None) -> str | None:
    """The approval a re-evaluation presents: `context.approval.id` (the access request profile's approval object,
    as the task's result gave it) or `context.approval_id` (as `/v1/check` takes it); a 400 naming the field when
    it is not a string id."""
    if not context or ("approval" not in context and "approval_id" not in context):
        return None
    if "approval" in context:
        approval = context["approval"]
        ident = approval.get("id") if isinstance(approval, dict) else None
        where = "context.approval.id"
    else:
        ident, where = context["approval_id"], "context.approval_id"
    if not isinstance(ident, str) or not 1 <= len(ident) <= 64:
        raise Invalid(f"{where}: an approval id (a string of 1 to 64 characters)", [Issue("<request>", 0, where, "")])
    return ident


def question_of(evaluation: Evaluation, org: str | None, request_id: str | None) -> Question:
    context = evaluation.context
    at = time_of(context)
    return Question(
        subject_id=evaluation.subject.id,
        subject_type="post" if evaluation.subject.type == "post" else "person",
        subject_properties=evaluation.subject.properties,
        resource_type=evaluation.resource.type,
        resource_id=evaluation.resource.id,
        resource_properties=evaluation.resource.properties,
        action=evaluation.action.name,
        context=context,
        organisation=org,
        at=at,
        request_id=request_id,
        approval_id=approval_of(context),
    )


async def _answer(runtime: Runtime, question: Question) -> Answer:
    """Decided on the event loop; in a worker thread when it presents an approval (a database read, perhaps a
    write: the use it takes)."""
    if question.approval_id is None:
        return runtime.decisions.answer(question)
    return await asyncio.to_thread(runtime.decisions.answer, question)


# What a PEP should do after a re-evaluation that presented an approval and was denied, by reason.
_NEXT = {
    "approval_expired": "request",
    "out_of_scope": "request",
    "grant_pending": "retry",
    "policy_denied": "none",
    "approval_unverifiable": "none",
    "approval_rejected": "none",
}


def result_of(runtime: Runtime, request: Request, item: Evaluation, answer: Answer, explain: bool) -> dict[str, Any]:
    """An evaluation's result. A plain allow or deny is `{"decision": ...}` (and its explanation when asked): the hot
    path. A needs_approval is a requestable denial, a re-evaluation says what became of its approval, and notifying
    rules are obligations (the AuthZEN profiles; docs/authzen-profiles.md): pure computation, no I/O."""
    verdict = answer.verdict
    if verdict.outcome != "needs_approval" and not verdict.notify and answer.question.approval_id is None:
        if explain:
            return {"decision": answer.allowed, "context": explanation(answer)}
        return {"decision": answer.allowed}
    context: dict[str, Any] = explanation(answer) if explain else {}
    presented = answer.approval
    if verdict.outcome == "needs_approval" and answer.organisation is not None:
        denial = runtime.access_requests.requestable.context(
            answer,
            runtime.policies,
            _base_url(request),
            _plain(item.subject),
            _plain(item.resource),
            _plain(item.action),
            item.context,
        )
        context.update(msgspec.to_builtins(denial))  # the context is an open object: the next lines edit it
        if presented is not None:  # re-evaluated with an approval that covered nothing: why, and what next
            reason = presented.reason or "approval_unverifiable"
            context["reason"] = reason
            context["next_action"] = _NEXT.get(reason, "none")
            if context["next_action"] != "request":
                del context["access_request"]
            if reason == "grant_pending":
                context["retry_after"] = 30
    elif answer.question.approval_id is not None and not verdict.allowed:
        context.update(reason="policy_denied", next_action="none")
    used = answer.used_approval
    if used is not None and used.terms is not None and used.terms.expires_at is not None:
        context["approval"] = {"id": used.approval_id, "approved_until": rfc3339(used.terms.expires_at)}
    if verdict.notify:
        context["obligations"] = obligations_of(answer)
    return {"decision": answer.allowed, "context": context} if context else {"decision": answer.allowed}


def obligations_of(answer: Answer) -> list[dict[str, Any]]:
    """The notifications of an answer's rules as the obligations profile's `notification` obligations, one per post
    told (`to`: the post's id), as Dutyline's outbox also keeps them."""
    verdict = answer.verdict
    hits = [h for h in verdict.hits if h.effect == "notify"]
    out = []
    for index, told_post in enumerate(verdict.notify):
        told = [h for h in hits if told_post in h.notify]
        body = "; ".join(dict.fromkeys(h.message.en for h in told))
        vacant = [n.instead_of for n in verdict.notices if n.post == told_post and n.instead_of]
        if vacant:
            body += f" ({', '.join(dict.fromkeys(vacant))} vacant: told instead)"
        out.append(
            {
                "id": f"obl-{index + 1}",
                "type": "notification",
                "properties": {"to": told_post, "topic": ", ".join(h.rule for h in told), "body": body},
            }
        )
    return out


def _plain(entity: Subject | Resource | Action) -> dict[str, Any]:
    """An AuthZEN entity as JSON, without the members it left out."""
    return {k: v for k, v in msgspec.structs.asdict(entity).items() if v is not None}


def explanation(answer: Answer) -> dict[str, Any]:
    """The `context` of an explained decision: AuthZEN's reason fields plus Dutyline's own detail."""
    reasons = answer.reasons
    return {
        "id": answer.decision_id,
        "reason_admin": {"en": "; ".join(r.en for r in reasons), "zh": ";".join(r.zh for r in reasons)},
        "reason_user": {
            "en": "allowed" if answer.allowed else "not allowed",
            "zh": "允许" if answer.allowed else "不允许",
        },
        "dutyline": {
            "decision_id": answer.decision_id,
            "policy_version": answer.policy_version,
            "organisation": answer.organisation.id if answer.organisation else None,
            "outcome": answer.outcome,
            "code": answer.verdict.code,
            "reasons": msgspec.to_builtins(reasons),
        },
    }


def _wants_explanation(request: Request) -> bool:
    if not request.scope["query_string"]:  # the usual case: no query parameters to parse
        return False
    return request.query_params.get("explain", "").lower() in ("1", "true", "yes")


@post(
    _paths("evaluation"),
    status_code=200,
    tags=["authzen"],
    summary="Access Evaluation API",
    responses=answers({200: Decision}, *DECIDE, 413),
    operation_class=takes(Evaluation),
)
async def evaluation(request: Request, state: State, org: FromQuery[str | None] = None) -> Response[bytes]:
    runtime: Runtime = state.runtime
    body = await read_json(request, Evaluation)
    question = question_of(body, org, request_id_of(request.scope))
    if question.approval_id is None:  # the hot path: decided on the event loop, reading nothing
        answer = runtime.decisions.answer(question)
    else:
        answer = await asyncio.to_thread(runtime.decisions.answer, question)
    return _json(result_of(runtime, request, body, answer, _wants_explanation(request)))


@post(
    _paths("evaluations"),
    status_code=200,
    tags=["authzen"],
    summary="Access Evaluations API (batch)",
    responses=answers({200: EvaluationResults | Decision}, *DECIDE, 413),
    operation_class=takes(TypedEvaluations, "Evaluations"),
)
async def evaluations(request: Request, state: State, org: FromPath[str | None] = None) -> Response[bytes]:
    runtime: Runtime = state.runtime
    body: Evaluations | TypedEvaluations
    raw = await read_body(request)
    try:
        body = decode(raw, TypedEvaluations)
    except Invalid:
        body = decode(raw, Evaluations)
    explain = _wants_explanation(request)
    request_id = request_id_of(request.scope)
    items = body.evaluations
    if not items:
        # No `evaluations`: the request is a single evaluation of its top-level fields.
        single = _merge(body, {}, "")
        answer = await _answer(runtime, question_of(single, org, request_id))
        return _json(result_of(runtime, request, single, answer, explain))
    if len(items) > runtime.settings.max_batch:
        raise Invalid(
            f"at most {runtime.settings.max_batch} evaluations per request, got {len(items)}",
            [Issue("<request>", 0, "evaluations", f"at most {runtime.settings.max_batch} items")],
        )
    semantic = body.options.evaluations_semantic if body.options else "execute_all"
    results: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            if isinstance(item, EvaluationItem):  # items are typed only when the whole body decoded typed
                merged = _merge_typed(cast(TypedEvaluations, body), item, f"evaluations[{index}]")
            elif isinstance(item, dict):
                merged = _merge(body, item, f"evaluations[{index}]")
            else:
                raise Invalid(f"evaluations[{index}] must be an object")
            answer = await _answer(runtime, question_of(merged, org, request_id))
        except Invalid as exc:
            results.append({"decision": False, "context": {"error": {"status": 400, "message": str(exc)}}})
            if semantic == "deny_on_first_deny":
                break
            continue
        results.append(result_of(runtime, request, merged, answer, explain))
        if semantic == "deny_on_first_deny" and not answer.allowed:
            break
        if semantic == "permit_on_first_permit" and answer.allowed:
            break
    return _json({"evaluations": results})


def _merge_typed(defaults: TypedEvaluations, item: EvaluationItem, where: str) -> Evaluation:
    """`_merge` for an item decoded as a struct."""
    subject = item.subject or defaults.subject
    action = item.action or defaults.action
    resource = item.resource or defaults.resource
    if subject is None or action is None or resource is None:
        missing = "subject" if subject is None else "action" if action is None else "resource"
        raise Invalid(f"{where}.{missing} is missing (neither the item nor the request gives one)")
    return Evaluation(subject, action, resource, item.context if item.context is not None else defaults.context)


def _merge(defaults: Evaluations | TypedEvaluations, item: dict[str, Any], where: str) -> Evaluation:
    """An item's own subject/action/resource/context replace the request's defaults as whole objects."""
    prefix = f"{where}." if where else ""
    values: dict[str, Any] = {}
    for key, kind in (("subject", Subject), ("action", Action), ("resource", Resource)):
        if key in item:
            values[key] = convert(item[key], kind, f"{prefix}{key}")
        elif getattr(defaults, key) is not None:
            values[key] = getattr(defaults, key)
        else:
            raise Invalid(f"{prefix}{key} is missing (neither the item nor the request gives one)")
    context = item.get("context", defaults.context)
    if context is not None and not isinstance(context, dict):
        raise Invalid(f"{prefix}context must be an object")
    return Evaluation(values["subject"], values["action"], values["resource"], context)


SearchBody = SubjectSearch | ResourceSearch | ActionSearch


async def _search(
    runtime: Runtime, endpoint: str, kind: SearchKind, body: SearchBody, org: str | None, question: Question
) -> tuple[Sequence[str], str]:
    """A page of a search's ids (`services.search`) and the next page's token, bound to the request."""
    tokens = PageTokens(runtime.page_key, endpoint, [org, msgspec.structs.replace(body, page=None)], "page.token")
    position = tokens.read(body.page.token if body.page else None, ListingPosition)
    # every page of a listing is asked about the instant of its first page (the token keeps it)
    moment = position.at if position is not None else question.at if question.at is not None else time.time()
    limit = (body.page.limit if body.page and body.page.limit else None) or 100
    ids = await runtime.search.ids(kind, replace(question, at=moment))
    return tokens.page_of(ids, position, limit, moment)


@post(
    _paths("search/subject"),
    status_code=200,
    tags=["authzen"],
    summary="Subject Search API",
    responses=answers({200: SearchResults}, *DECIDE, 413, 503),
    operation_class=takes(SubjectSearch),
)
async def search_subject(
    request: Request, runtime: NamedDependency[Runtime], org: FromPath[str | None] = None
) -> SearchResults:
    body = await read_json(request, SubjectSearch)
    question = Question(
        subject_id="",
        resource_type=body.resource.type,
        resource_id=body.resource.id,
        resource_properties=body.resource.properties,
        action=body.action.name,
        context=body.context,
        organisation=org,
        at=time_of(body.context),
    )
    question = runtime.search.subject_search_question(question)
    # `type: post` asks which posts may (as evaluation reads a subject of that type); any other type, which people
    kind: SearchKind = "subject_post" if body.subject.type == "post" else "subject"
    people, token = await _search(runtime, "search/subject", kind, body, org, question)
    return SearchResults([Found(body.subject.type, p) for p in people], NextPage(token))


@post(
    _paths("search/resource"),
    status_code=200,
    tags=["authzen"],
    summary="Resource Search API",
    responses=answers({200: SearchResults}, *DECIDE, 413, 503),
    operation_class=takes(ResourceSearch),
)
async def search_resource(
    request: Request, runtime: NamedDependency[Runtime], org: FromQuery[str | None] = None
) -> SearchResults:
    body = await read_json(request, ResourceSearch)
    question = Question(
        subject_id=body.subject.id,
        subject_type="post" if body.subject.type == "post" else "person",
        subject_properties=body.subject.properties,
        resource_type=body.resource.type,
        resource_properties=body.resource.properties,
        action=body.action.name,
        context=body.context,
        organisation=org,
        at=time_of(body.context),
    )
    ids, token = await _search(runtime, "search/resource", "resource", body, org, question)
    return SearchResults([Found(body.resource.type, i) for i in ids], NextPage(token))


@post(
    _paths("search/action"),
    status_code=200,
    tags=["authzen"],
    summary="Action Search API",
    responses=answers({200: ActionSearchResults}, *DECIDE, 413, 503),
    operation_class=takes(ActionSearch),
)
async def search_action(
    request: Request, runtime: NamedDependency[Runtime], org: FromPath[str | None] = None
) -> ActionSearchResults:
    body = await read_json(request, ActionSearch)
    question = Question(
        subject_id=body.subject.id,
        subject_type="post" if body.subject.type == "post" else "person",
        subject_properties=body.subject.properties,
        resource_type=body.resource.type,
        resource_id=body.resource.id,
        resource_properties=body.resource.properties,
        action="",
        context=body.context,
        organisation=org,
        at=time_of(body.context),
    )
    names, token = await _search(runtime, "search/action", "action", body, org, question)
    return ActionSearchResults([FoundAction(n) for n in names], NextPage(token))


def _metadata(base: str, root: str) -> PdpMetadata:
    return PdpMetadata(
        policy_decision_point=base,
        access_evaluation_endpoint=f"{base}/access/v1/evaluation",
        access_evaluations_endpoint=f"{base}/access/v1/evaluations",
        search_subject_endpoint=f"{base}/access/v1/search/subject",
        search_resource_endpoint=f"{base}/access/v1/search/resource",
        search_action_endpoint=f"{base}/access/v1/search/action",
        access_request_endpoint=f"{root}/access/v1/requests",
        jwks_uri=f"{root}/.well-known/dutyline-jwks.json",
        capabilities=[CAPABILITY],
        supported_obligations=["notification"],
    )


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@get(
    ["/.well-known/authzen-configuration"],
    tags=["authzen"],
    summary="PDP metadata",
    responses=answers({200: PdpMetadata}),
)
async def configuration(request: Request) -> PdpMetadata:
    return _metadata(_base_url(request), _base_url(request))


@get(
    ["/.well-known/authzen-configuration/{org:str}"],
    tags=["authzen"],
    summary="PDP metadata of one organisation",
    responses=answers({200: PdpMetadata}, 400, 404),
)
async def tenant_configuration(
    request: Request, policies: NamedDependency[PolicyService], org: FromPath[str]
) -> PdpMetadata:
    if policies.current.get(org) is None:
        raise NotFound(f"organisation {org!r} not found")
    return _metadata(f"{_base_url(request)}/orgs/{org}", _base_url(request))


ROUTES = [evaluation, evaluations, search_subject, search_resource, search_action, configuration, tenant_configuration]
