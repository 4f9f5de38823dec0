"""Dutyline's own decision API: explained checks, one or many, with read-your-writes consistency."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, post
from litestar.datastructures import State

from dutyline.api.body import convert, decode, read_body, read_json
from dutyline.api.middleware import request_id_of
from dutyline.api.openapi import DECIDE, answers, takes
from dutyline.api.schemas import CheckResult, CheckResults
from dutyline.engines.policyset import PolicySet
from dutyline.errors import Invalid, Issue, NotFound, Unavailable
from dutyline.orgmodel.windows import moment
from dutyline.runtime import Runtime
from dutyline.services import as_of
from dutyline.services.decisions import Answer, Question
from dutyline.services.reach import CURRENT as REACH

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
# A policy version to wait for. Versions are 32-bit columns: a larger one can never be applied, so it is a 400,
# not a 503 after the wait.
Version = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]


class CheckSubject(msgspec.Struct, forbid_unknown_fields=False):
    id: Text
    type: Literal["person", "post"] = "person"
    properties: dict[str, Any] | None = None


class CheckResource(msgspec.Struct):
    type: Text
    id: Text | None = None
    properties: dict[str, Any] | None = None


class CheckRequest(msgspec.Struct):
    organisation: Text
    subject: CheckSubject
    resource: CheckResource
    action: Text
    at: str | None = None
    context: dict[str, Any] | None = None
    at_least_version: Version | None = None
    approval_id: Text | None = None
    # Decide on the organisation and its rule packs as they were at this moment (the versions in force then);
    # `at` defaults to it.
    as_of: str | None = None
    # Trying the question out (the console's simulator): the answer is the same, logged and marked simulated
    # (left out of decision-log listings by default), and has no effects: no notification, no approval's use.
    simulated: bool = False


class CheckBatch(msgspec.Struct):
    checks: list[dict[str, Any]]
    at_least_version: Version | None = None


class TypedCheckBatch(msgspec.Struct):
    """`CheckBatch` decoded in one pass when every check is well-formed (the usual case); a batch with a
    malformed check is decoded again as `CheckBatch`, so that each check gets its own error."""

    checks: list[CheckRequest]
    at_least_version: Version | None = None


# The decision hot path: encoded by hand, as its bodies are decoded (ADR 0003, 0010).
_ENCODE = msgspec.json.Encoder()


def _json(payload: Any) -> Response[bytes]:
    return Response(_ENCODE.encode(payload), media_type="application/json")


def question_of(policies: PolicySet, check: CheckRequest, request_id: str | None) -> Question:
    """The question a `/v1/check` body asks (`at` read in the organisation's time zone). Shared with the CLI."""
    at = None
    if check.at is not None:
        org = policies.get(check.organisation)
        at = moment(check.at, org.document.timezone if org is not None else None)
    if check.simulated and check.approval_id is not None:
        raise Invalid(
            "approval_id: a simulated check cannot present an approval (it would take one of its uses)",
            [Issue("<request>", 0, "approval_id", "not with simulated: true")],
        )
    return Question(
        subject_id=check.subject.id,
        subject_type=check.subject.type,
        subject_properties=check.subject.properties,
        resource_type=check.resource.type,
        resource_id=check.resource.id,
        resource_properties=check.resource.properties,
        action=check.action,
        context=check.context,
        organisation=check.organisation,
        at=at,
        request_id=request_id,
        approval_id=check.approval_id,
        simulated=check.simulated,
    )


def result_of(answer: Answer) -> dict[str, Any]:
    result = {
        "decision": answer.outcome,
        "decision_id": answer.decision_id,
        "policy_version": answer.policy_version,
        "organisation": answer.question.organisation,
        "subject": answer.decision.subject or answer.question.subject_id,
        "code": answer.verdict.code,
        "reasons": msgspec.to_builtins(answer.reasons),
        "rules": [
            {
                "rule": h.rule,
                "kind": h.kind,
                "effect": h.effect,
                "message": msgspec.to_builtins(h.message),
                "detail": dict(h.detail),
            }
            for h in answer.verdict.hits
        ],
        "approvers": [{"post": s.post, "people": list(s.people)} for s in answer.verdict.approvers],
        "obligations": [{"notify": n.post, "instead_of": n.instead_of} for n in answer.verdict.notices],
    }
    used = answer.used_approval
    if used is not None and used.terms is not None:
        terms = used.terms
        result["approval"] = {
            "id": terms.id,
            "approved_by": terms.decided_by,
            "approved_at": terms.decided_at.isoformat() if terms.decided_at else None,
            "uses": terms.uses,
            "uses_left": terms.uses_left,
            "expires_at": terms.expires_at.isoformat() if terms.expires_at else None,
        }
    return result


async def answer_of(runtime: Runtime, question: Question) -> Answer:
    """Decide on the event loop, or in a worker thread when the check presents an approval: that one reads the
    approval and may take a use of it, database round trips the event loop must not wait for."""
    if question.approval_id is None:
        return runtime.decisions.answer(question)
    return await asyncio.to_thread(runtime.decisions.answer, question)


async def _consistent(runtime: Runtime, version: int | None) -> None:
    """Wait (bounded, holding no thread) until this process has applied `version`; 503 if it cannot in time, or if
    too many checks are waiting already."""
    if version is None or runtime.policies.current.version >= version:
        return
    if not await runtime.waits.wait_for(version, runtime.settings.consistency_wait):
        raise Unavailable(
            f"policy version {version} is not applied here yet (this server is at "
            f"{runtime.policies.current.version}); retry shortly",
            retry_after=1,
        )


def answer_as_of(runtime: Runtime, check: CheckRequest, request_id: str | None) -> dict[str, Any]:
    """`services.as_of.answer_as_of`, once the caller is known to reach the organisation (before any past version
    of it is read); `as_of` in the answer says which versions decided."""
    assert check.as_of is not None
    REACH.get().require(check.organisation, "organisation")
    question = question_of(runtime.decisions.policies, check, request_id)
    answer, versions = as_of.answer_as_of(runtime.decisions, runtime.versions, question, check.as_of)
    return result_of(answer) | {"as_of": msgspec.to_builtins(versions)}


@post(
    "/v1/check",
    status_code=200,
    tags=["decisions"],
    summary="Decide one check, with its explanation",
    responses=answers({200: CheckResult}, *DECIDE, 404, 413, 503),
    operation_class=takes(CheckRequest),
)
async def check(request: Request, state: State) -> Response[bytes]:
    runtime: Runtime = state.runtime
    body = await read_json(request, CheckRequest)
    await _consistent(runtime, body.at_least_version)
    if body.as_of is not None:
        return _json(await asyncio.to_thread(answer_as_of, runtime, body, request_id_of(request.scope)))
    answer = await answer_of(runtime, question_of(runtime.decisions.policies, body, request_id_of(request.scope)))
    return _json(result_of(answer))


@post(
    "/v1/checks",
    status_code=200,
    tags=["decisions"],
    summary="Decide many checks; each answered on its own",
    responses=answers({200: CheckResults}, *DECIDE, 413, 503),
    operation_class=takes(TypedCheckBatch, "Checks"),
)
async def checks(request: Request, state: State) -> Response[bytes]:
    runtime: Runtime = state.runtime
    raw = await read_body(request)
    body: CheckBatch | TypedCheckBatch
    try:
        body = decode(raw, TypedCheckBatch)
    except Invalid:
        body = decode(raw, CheckBatch)
    if len(body.checks) > runtime.settings.max_batch:
        raise Invalid(
            f"at most {runtime.settings.max_batch} checks per request, got {len(body.checks)}",
            [Issue("<request>", 0, "checks", f"at most {runtime.settings.max_batch} items")],
        )
    await _consistent(runtime, body.at_least_version)
    request_id = request_id_of(request.scope)
    results: list[dict[str, Any]] = []
    for index, item in enumerate(body.checks):
        try:
            parsed = item if isinstance(item, CheckRequest) else convert(item, CheckRequest, f"checks[{index}]")
            if parsed.as_of is not None:
                results.append(await asyncio.to_thread(answer_as_of, runtime, parsed, request_id))
                continue
            results.append(
                result_of(await answer_of(runtime, question_of(runtime.decisions.policies, parsed, request_id)))
            )
        except NotFound as exc:
            results.append({"decision": "error", "error": {"status": 404, "message": str(exc)}})
        except Invalid as exc:
            results.append({"decision": "error", "error": {"status": 400, "message": str(exc)}})
    return _json({"results": results, "policy_version": runtime.policies.current.version})


ROUTES = [check, checks]
