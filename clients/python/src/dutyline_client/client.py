"""`Client`: Dutyline's decision API over one pooled `httpx.Client` (thread-safe: share one per process)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal, TypeVar

import httpx

from dutyline_client import calls
from dutyline_client import changes as _changes
from dutyline_client import models as m
from dutyline_client.cache import DecisionCache
from dutyline_client.core import Core, Retries, Retry, headers
from dutyline_client.requests import (
    Action,
    CheckRequest,
    EvaluationItem,
    Resource,
    Semantic,
    Subject,
    check_request,
)

T = TypeVar("T")


class Client:
    """Dutyline's decision API.

    - `base_url`: where Dutyline answers (`https://dutyline.internal`); `token`: a bearer token (`dutyline admin
      token`), sent on every request.
    - `timeout`: seconds (or an `httpx.Timeout`) for each try; `retries`: how often to retry a 503 or a connection
      error (`Retries(attempts=0)`: never). A 4xx, a deny and a needs_approval are answers, never retried.
    - `fail_open`: what a decision (check, checks, evaluation, evaluations) answers when Dutyline cannot be reached
      or cannot answer after the retries: deny (the default, fail closed) or allow; either way with a reason that
      says so, and a warning logged on `dutyline_client`. Other calls raise `Unreachable` or `Unavailable`.
    - `cache`: a `DecisionCache` for `/v1/check` answers (`True`: one with the defaults), keyed by the request and
      the policy version; none by default.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float | httpx.Timeout = 5.0,
        retries: Retries | None = None,
        fail_open: bool = False,
        cache: DecisionCache | bool | None = None,
        limits: httpx.Limits | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._core = Core(
            retries if retries is not None else Retries(),
            fail_open,
            DecisionCache() if cache is True else cache if isinstance(cache, DecisionCache) else None,
        )
        self._watcher: _changes.ChangeWatcher | None = None
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=headers(token),
            timeout=timeout,
            limits=limits or httpx.Limits(max_connections=100, max_keepalive_connections=20),
            transport=transport,
        )

    # --- plumbing ---------------------------------------------------------------------------------------------

    def _run(self, call: calls.Call[T]) -> T:
        call = self._core.prepare(call)
        hit = self._core.cached(call)
        if hit is not None:
            return hit
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    call.method,
                    call.path,
                    params=call.params,
                    content=call.body,
                    headers=_headers(call),
                )
                step = self._core.settle(call, attempt, response, None)
            except httpx.TransportError as exc:
                step = self._core.settle(call, attempt, None, exc)
            if not isinstance(step, Retry):
                return step
            time.sleep(step.delay)
            attempt += 1

    @property
    def base_url(self) -> str:
        """Where Dutyline answers, as given (without a trailing slash)."""
        return str(self._http.base_url).rstrip("/")

    @property
    def cache(self) -> DecisionCache | None:
        return self._core.cache

    @property
    def policy_version(self) -> int:
        """The newest policy version an answer has carried."""
        return self._core.version_seen

    def after_change(self, policy_version: int) -> None:
        """Read your writes: after a change of yours that created `policy_version` (the admin API answers it),
        every check waits for it (`at_least_version`) until an answer shows it applied, and the cache is emptied."""
        self._core.after_change(policy_version)

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # --- decisions --------------------------------------------------------------------------------------------

    def check(
        self,
        organisation: str,
        subject: str,
        resource: str,
        action: str,
        *,
        resource_id: str | None = None,
        context: dict[str, Any] | None = None,
        at: str | None = None,
        approval_id: str | None = None,
        at_least_version: int | None = None,
        subject_type: Literal["person", "post"] = "person",
        subject_properties: dict[str, Any] | None = None,
        resource_properties: dict[str, Any] | None = None,
        as_of: str | None = None,
        simulated: bool = False,
    ) -> m.CheckResult:
        """`POST /v1/check`: allow, deny or needs_approval, with reasons, approvers and obligations. Present an
        approval with `approval_id`; wait for your own change with `at_least_version`."""
        request = check_request(
            organisation,
            subject,
            resource,
            action,
            resource_id=resource_id,
            context=context,
            at=at,
            approval_id=approval_id,
            subject_type=subject_type,
            subject_properties=subject_properties,
            resource_properties=resource_properties,
            as_of=as_of,
            simulated=simulated,
            at_least_version=at_least_version,
        )
        return self._run(calls.check(request))

    def checks(self, requests: Sequence[CheckRequest], *, at_least_version: int | None = None) -> m.CheckResults:
        """`POST /v1/checks`: each check answered on its own (a `CheckError` for one that could not be decided)."""
        return self._run(calls.checks(requests, at_least_version))

    def evaluation(
        self,
        subject: Subject,
        action: Action,
        resource: Resource,
        context: dict[str, Any] | None = None,
        *,
        explain: bool = False,
        organisation: str | None = None,
    ) -> m.Decision:
        """AuthZEN `POST /access/v1/evaluation` (under `/orgs/{organisation}` when given); `explain=True` adds the
        reasons in `context`."""
        return self._run(calls.evaluation(subject, action, resource, context, explain, organisation))

    def evaluations(
        self,
        evaluations: Sequence[EvaluationItem],
        *,
        subject: Subject | None = None,
        action: Action | None = None,
        resource: Resource | None = None,
        context: dict[str, Any] | None = None,
        semantic: Semantic | None = None,
        explain: bool = False,
        organisation: str | None = None,
    ) -> m.EvaluationResults:
        """AuthZEN `POST /access/v1/evaluations`: the top-level subject, action, resource and context are defaults
        each item's own replaces whole."""
        return self._run(
            calls.evaluations(evaluations, subject, action, resource, context, semantic, explain, organisation)
        )

    def search_subjects(
        self,
        subject_type: str,
        action: Action,
        resource: Resource,
        context: dict[str, Any] | None = None,
        *,
        page_token: str | None = None,
        limit: int | None = None,
        organisation: str | None = None,
    ) -> m.SearchResults:
        """AuthZEN subject search: who may (`subject_type` "post": which posts)."""
        return self._run(
            calls.search_subjects(subject_type, action, resource, context, page_token, limit, organisation)
        )

    def search_resources(
        self,
        subject: Subject,
        action: Action,
        resource_type: str,
        context: dict[str, Any] | None = None,
        *,
        page_token: str | None = None,
        limit: int | None = None,
        organisation: str | None = None,
    ) -> m.SearchResults:
        """AuthZEN resource search: on which resources of `resource_type` the subject may."""
        return self._run(
            calls.search_resources(subject, action, resource_type, context, page_token, limit, organisation)
        )

    def search_actions(
        self,
        subject: Subject,
        resource: Resource,
        context: dict[str, Any] | None = None,
        *,
        page_token: str | None = None,
        limit: int | None = None,
        organisation: str | None = None,
    ) -> m.ActionSearchResults:
        """AuthZEN action search: which actions the subject may take on the resource."""
        return self._run(calls.search_actions(subject, resource, context, page_token, limit, organisation))

    def configuration(self, organisation: str | None = None) -> m.PdpMetadata:
        """AuthZEN PDP metadata (`/.well-known/authzen-configuration`, or one organisation's)."""
        return self._run(calls.configuration(organisation))

    # --- the access request profile (docs/authzen-profiles.md) -----------------------------------------------

    def submit_access_request(
        self,
        denied: m.Decision,
        subject: Subject,
        action: Action,
        resource: Resource,
        context: dict[str, Any] | None = None,
        *,
        justification: str | None = None,
        callback: str | None = None,
        callback_state: str | None = None,
        idempotency_key: str | None = None,
    ) -> m.TaskResponse:
        """Submit an access request for a requestable denial (`denied`, the evaluation's answer, of the same
        subject, action, resource and context): `POST /access/v1/requests`. Its task waits for the approvers;
        `callback` (an http(s) URL) is POSTed when it completes."""
        call = calls.submit_access_request(
            denied, subject, action, resource, context, justification, callback, callback_state, idempotency_key
        )
        return self._run(call)

    def task_status(self, task_id: str) -> m.TaskResponse:
        """An access request's task (`GET /access/v1/requests/{task_id}`): `result.approval` once approved."""
        return self._run(calls.task_status(task_id))

    def cancel_access_request(
        self, task_id: str, *, reason: str | None = None, comment: str | None = None
    ) -> m.TaskResponse:
        """Cancel a pending access request (its approval is withdrawn)."""
        return self._run(calls.cancel_access_request(task_id, reason, comment))

    def access_request_schema(self) -> dict[str, Any]:
        """The JSON Schema of what a submission may add (`request_schema_url`)."""
        return self._run(calls.access_request_schema())

    def reevaluate(
        self,
        subject: Subject,
        action: Action,
        resource: Resource,
        approval: m.ApprovalRef,
        context: dict[str, Any] | None = None,
        *,
        explain: bool = False,
        organisation: str | None = None,
    ) -> m.Decision:
        """The evaluation again, presenting the task's `result.approval` at `context.approval`: allowed when the
        approval is granted, unexpired, has a use left and is bound to this very request."""
        return self._run(calls.reevaluation(subject, action, resource, approval, context, explain, organisation))

    # --- queries ----------------------------------------------------------------------------------------------

    def permissions(
        self, organisation: str, person: str, *, at: str | None = None, as_of: str | None = None
    ) -> m.PersonPermissions:
        """What a person may do (conditional permissions marked)."""
        return self._run(calls.permissions(organisation, person, at, as_of))

    def who(
        self,
        organisation: str,
        resource: str,
        action: str,
        *,
        resource_id: str | None = None,
        at: str | None = None,
        as_of: str | None = None,
        page_token: str | None = None,
        limit: int | None = None,
    ) -> m.WhoMay:
        """Who may do `action` on `resource` (people, a page of them, and posts), on the org model alone."""
        return self._run(calls.who(organisation, resource, action, resource_id, at, as_of, page_token, limit))

    def reporting_line(self, organisation: str, post: str, *, at: str | None = None) -> m.ReportingLine:
        """The posts above `post`, with their holders and vacancies."""
        return self._run(calls.reporting_line(organisation, post, at))

    def decisions(
        self,
        *,
        organisation: str | None = None,
        subject: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        request_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
        page_token: str | None = None,
        limit: int | None = None,
    ) -> m.DecisionLog:
        """The decision log, newest first."""
        filters: dict[str, str | int | None] = {
            "organisation": organisation,
            "subject": subject,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "action": action,
            "outcome": outcome,
            "request_id": request_id,
            "since": since,
            "until": until,
            "page_token": page_token,
            "limit": limit,
        }
        return self._run(calls.decisions(filters))

    # --- approvals --------------------------------------------------------------------------------------------

    def open_approval(
        self,
        organisation: str,
        subject: str,
        resource: str,
        action: str,
        *,
        resource_id: str | None = None,
        context: dict[str, Any] | None = None,
        at: str | None = None,
        comment: str = "",
        uses: int = 1,
        subject_properties: dict[str, Any] | None = None,
        resource_properties: dict[str, Any] | None = None,
    ) -> m.ApprovalRecord:
        """Open an approval for a request that needs one (the same arguments as its check). A request that does
        not need approval raises `Conflict` carrying the check's answer in `decision`."""
        request = check_request(
            organisation,
            subject,
            resource,
            action,
            resource_id=resource_id,
            context=context,
            at=at,
            subject_properties=subject_properties,
            resource_properties=resource_properties,
        )
        return self._run(calls.open_approval(request, comment, uses))

    def approvals(
        self,
        *,
        organisation: str | None = None,
        approver: str | None = None,
        status: Literal["pending", "approved", "rejected"] | None = None,
        requester: str | None = None,
        limit: int | None = None,
    ) -> list[m.Approval]:
        """Approvals, newest first; `approver=` a person's inbox."""
        return self._run(calls.approvals(organisation, approver, status, requester, limit))

    def approval(self, approval_id: str) -> m.ApprovalRecord:
        return self._run(calls.approval(approval_id))

    def approve(self, approval_id: str, person: str | None = None, *, comment: str = "") -> m.ApprovalRecord:
        """Approve as `person` (a bearer token's client attests who)."""
        return self._run(calls.decide(approval_id, "approve", person, comment))

    def reject(self, approval_id: str, person: str | None = None, *, comment: str = "") -> m.ApprovalRecord:
        return self._run(calls.decide(approval_id, "reject", person, comment))

    # --- cases and notifications ------------------------------------------------------------------------------

    def open_case(
        self,
        organisation: str,
        case_type: str,
        title: str,
        *,
        subject: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> m.CaseRecord:
        return self._run(calls.open_case(organisation, case_type, title, subject, data))

    def cases(
        self,
        *,
        organisation: str | None = None,
        status: Literal["open", "escalated", "resolved"] | None = None,
        post: str | None = None,
        limit: int | None = None,
    ) -> list[m.Case]:
        return self._run(calls.cases(organisation, status, post, limit))

    def case(self, case_id: str) -> m.CaseRecord:
        return self._run(calls.case(case_id))

    def resolve_case(self, case_id: str, person: str | None = None, *, comment: str = "") -> m.CaseRecord:
        return self._run(calls.resolve_case(case_id, person, comment))

    def notifications(
        self,
        *,
        organisation: str | None = None,
        post: str | None = None,
        since: str | None = None,
        after_id: int | None = None,
        limit: int | None = None,
    ) -> list[m.OutboxNotification]:
        """The outbox, oldest first (page on with `after_id`)."""
        return self._run(calls.notifications(organisation, post, since, after_id, limit))

    # --- usage ------------------------------------------------------------------------------------------------

    def record_usage(
        self,
        organisation: str,
        person: str,
        rule: str,
        amount: Decimal | int | float,
        *,
        at: str | None = None,
        decision_id: str | None = None,
    ) -> m.UsageRecorded:
        """Usage your system executed against a limit with a period (a `Decimal` is sent digit for digit)."""
        return self._run(calls.record_usage(organisation, person, rule, amount, at, decision_id, None))

    def reverse_usage(self, organisation: str, person: str, rule: str, entry_id: int) -> m.UsageRecorded:
        """Record the opposite of ledger entry `entry_id` (a correction)."""
        return self._run(calls.record_usage(organisation, person, rule, None, None, None, entry_id))

    def usage_total(self, organisation: str, person: str, rule: str, *, at: str | None = None) -> m.UsageTotal:
        """A person's total for the period `at` falls in (default now)."""
        return self._run(calls.usage_total(organisation, person, rule, at))

    # --- the change stream ------------------------------------------------------------------------------------

    def changes(
        self,
        since: int | None = None,
        *,
        organisations: Sequence[str] | None = None,
        reconnect: bool = True,
        read_timeout: float = _changes.READ_TIMEOUT,
    ) -> Iterator[m.PolicyChange | m.CaughtUp]:
        """`GET /v1/changes`: each new policy version as a `PolicyChange` (the organisations, documents and
        entities it changed), after every one since `since` (0: the whole history; None: from now), and a
        `CaughtUp` whenever the stream is up to date. Reconnects with Last-Event-ID when the stream breaks
        (`reconnect=False`: ends instead). A token issued for some organisations hears only theirs; `organisations`
        narrows it. Break out of the loop (or close the iterator) to hang up."""
        return _changes.changes(self._http, self._core.retries, since, organisations, reconnect, read_timeout)

    def watch_changes(self, *, organisations: Sequence[str] | None = None) -> _changes.ChangeWatcher:
        """Keep the decision cache honest: a thread reads the change stream and drops every cached answer decided
        on a version older than the newest announced, as soon as it is announced (by any replica). Opt in; one per
        client (asked again, the running one is returned); stopped by `close()`. With it, the cache's `max_age`
        only has to cover what moves with time (acting windows, business hours, usage totals)."""
        cache = self._core.cache
        if cache is None:
            raise ValueError("watch_changes keeps the decision cache current: make the client with cache=True")
        if self._watcher is not None and self._watcher.running:
            return self._watcher
        http, retries = self._http, self._core.retries

        def stream(
            since: int | None, opened: Callable[[httpx.Response | None], None]
        ) -> Iterator[m.PolicyChange | m.CaughtUp]:
            return _changes.changes(http, retries, since, organisations, True, _changes.READ_TIMEOUT, opened)

        self._watcher = _changes.ChangeWatcher(stream, cache, retries)
        return self._watcher


def _headers(call: calls.Call[Any]) -> dict[str, str] | None:
    sent = {"content-type": "application/json"} if call.body is not None else {}
    if call.headers:
        sent.update(call.headers)
    return sent or None
