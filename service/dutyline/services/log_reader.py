"""Reading the decision log: its pages, newest first, each decision with its reasons rendered again and its request
put back together (`GET /v1/decisions`), or in summary (an organisation's log for auditors).

Pages are cut by a keyset cursor (`Cursor`: the last row's decided_at and id); callers wrap it in a page token
(`api.paging`) bound to the filter, so the filter is the store's `LogFilter` itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, cast

import msgspec
from sqlalchemy.orm import Session, sessionmaker

from dutyline.engines.explain import Reason
from dutyline.errors import NotFound
from dutyline.services.versions import Versions
from dutyline.store.decision_log import LogFilter, query, requests_of
from dutyline.store.decision_log import LoggedRequest as StoredRequest
from dutyline.store.tables import DecisionLogRow

__all__ = ["Cursor", "LogFilter", "LogPage", "LogReader", "LoggedDecision", "OrgDecision"]

T = TypeVar("T")
Cursor = tuple[dt.datetime, str]  # (decided_at, id) of a page's last row: the next page is the rows strictly older
PartName = Literal["subject_properties", "resource_properties", "context"]


class TruncatedPart(msgspec.Struct, forbid_unknown_fields=True):
    """A part of a logged request kept only in part: the subset of its keys that fits in
    `DUTYLINE_DECISION_LOG_MAX_CONTEXT_BYTES` (`bytes` 0: the part is missing altogether)."""

    part: PartName
    bytes: int
    kept_bytes: int
    sha256: str


class LoggedRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """What a logged decision was asked besides subject, resource and action; `truncated` names any part the log
    keeps only in part."""

    subject_properties: dict[str, Any] | None
    resource_properties: dict[str, Any] | None
    context: dict[str, Any] | None
    at: float | None
    truncated: list[TruncatedPart] = []


class LoggedApproval(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    approved_by: str | None
    approved_at: str | None
    uses: int
    uses_left: int
    expires_at: str | None


class LoggedDecision(msgspec.Struct, forbid_unknown_fields=True):
    decision_id: str
    decided_at: str
    organisation: str | None
    subject_type: str
    subject: str
    resource_type: str
    resource_id: str | None
    action: str
    decision: str
    code: str
    reasons: list[Reason]
    request: LoggedRequest
    policy_version: int
    latency_us: int
    request_id: str | None
    approval_id: str | None  # the approval the decision was allowed through
    rules: list[str]  # the rules that fired (deny, needs approval, notify)
    approval: LoggedApproval | None  # that approval, as it was then: who approved it, when, the uses left after
    simulated: bool  # asked to try the question out (the console's simulator): no effects


class OrgDecision(msgspec.Struct, forbid_unknown_fields=True):
    """A logged decision in summary: what was asked and decided, without its reasons or request."""

    decision_id: str
    decided_at: str
    subject: str
    resource_type: str
    resource_id: str | None
    action: str
    decision: str
    code: str
    policy_version: int
    simulated: bool


@dataclass(frozen=True, slots=True)
class LogPage(Generic[T]):
    items: list[T]
    following: Cursor | None  # where the next page starts; None on the last page


class LogReader:
    def __init__(self, sessions: sessionmaker[Session], versions: Versions) -> None:
        self._sessions = sessions
        self._versions = versions

    def page(self, where: LogFilter, limit: int, after: Cursor | None = None) -> LogPage[LoggedDecision]:
        """The decisions `where` selects, newest first, strictly older than `after`; at most `limit`."""
        with self._sessions() as session:
            rows, following = query(session, where, limit, after)
            requests = requests_of(session, rows)
        return LogPage(self._decisions(rows, requests), following)

    def one(self, organisation: str, decision_id: str) -> LoggedDecision:
        """One logged decision of `organisation`, its reasons rendered again and its request put back together."""
        with self._sessions() as session:
            row = session.get(DecisionLogRow, decision_id)
            if row is None or row.organisation != organisation:
                raise NotFound(f"decision {decision_id!r} is not in the decision log of {organisation!r}")
            requests = requests_of(session, [row])
        return self._decisions([row], requests)[0]

    def _decisions(self, rows: list[DecisionLogRow], requests: list[StoredRequest]) -> list[LoggedDecision]:
        logged = self._versions.logged(rows)
        return [
            LoggedDecision(
                decision_id=r.id,
                decided_at=r.decided_at.isoformat(),
                organisation=r.organisation,
                subject_type=r.subject_type,
                subject=r.subject,
                resource_type=r.resource_type,
                resource_id=r.resource_id,
                action=r.action,
                decision=r.outcome,
                code=r.code,
                reasons=told.reasons,
                rules=told.rules,
                approval=msgspec.convert(told.approval, LoggedApproval) if told.approval else None,
                request=LoggedRequest(
                    q.subject_properties,
                    q.resource_properties,
                    q.context,
                    q.at,
                    [TruncatedPart(cast("PartName", t.part), t.bytes, t.kept_bytes, t.sha256) for t in q.truncated],
                ),
                policy_version=r.policy_version,
                latency_us=r.latency_us,
                request_id=r.request_id,
                approval_id=r.approval_id,
                simulated=r.simulated,
            )
            for r, q, told in zip(rows, requests, logged)
        ]

    def summaries(self, where: LogFilter, limit: int, after: Cursor | None = None) -> LogPage[OrgDecision]:
        """As `page`, each decision in summary (nothing rendered, no request read back)."""
        with self._sessions() as session:
            rows, following = query(session, where, limit, after)
        items = [
            OrgDecision(
                r.id,
                r.decided_at.isoformat(),
                r.subject,
                r.resource_type,
                r.resource_id,
                r.action,
                r.outcome,
                r.code,
                r.policy_version,
                r.simulated,
            )
            for r in rows
        ]
        return LogPage(items, following)
