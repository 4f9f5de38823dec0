"""Deciding: resolve the organisation and subject, decide, count, and hand the result to the decision log.

Shared by the AuthZEN API, the native `/v1/check` API and the CLI. No `Request` objects here.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.decision import Check, Decision, decide
from dutyline.engines.explain import Reason, explain, explain_rules
from dutyline.engines.policyset import PolicySet
from dutyline.engines.rulehost import RuleHost
from dutyline.engines.rules import NO_FACTS, CompiledRules, Facts, Verdict, apply_rules
from dutyline.errors import Invalid, Issue
from dutyline.services.decision_log import DecisionLog, LoggedDecision
from dutyline.services.metrics import DECISION_ERRORS, DECISION_LATENCY, DECISIONS
from dutyline.services.policies import PolicyService
from dutyline.services.reach import CURRENT as REACH

_PREFIX = os.urandom(4).hex()
# One counter per outcome, looked up once: `labels()` on every decision costs more than the decision.
_COUNTED = {outcome: DECISIONS.labels(outcome) for outcome in ("allow", "deny", "needs_approval")}
_COUNTER = itertools.count(1)

SubjectType = Literal["person", "post"]

log = logging.getLogger("dutyline.decisions")


def new_decision_id() -> str:
    """Unique across processes and restarts without the cost of a UUID per decision."""
    return f"{_PREFIX}{int(time.time()):x}-{next(_COUNTER):x}"


@dataclass(frozen=True, slots=True)
class Question:
    """A check as callers ask it: the organisation may be unknown and the subject known by any identity."""

    subject_id: str
    resource_type: str
    action: str
    organisation: str | None = None
    subject_type: SubjectType = "person"
    resource_id: str | None = None
    subject_properties: Mapping[str, Any] | None = None
    resource_properties: Mapping[str, Any] | None = None
    context: Mapping[str, Any] | None = None
    at: float | None = None
    request_id: str | None = None
    approval_id: str | None = None


@dataclass(frozen=True, slots=True)
class PastPolicy:
    """An organisation and its business rules as they were in force at a moment (`as_of` checks)."""

    org: CompiledOrg
    rules: CompiledRules | None
    host: RuleHost | None  # holds `rules`; not the process's host, whose rules are the current ones
    rule_versions: Mapping[str, int]  # pack name → the version in force
    # Why the rules in force then could not be compiled or loaded (a pack this release no longer reads):
    # every decision on them is then an internal error, i.e. a deny.
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    verdict: Verdict
    organisation: CompiledOrg | None
    question: Question
    decision_id: str
    policy_version: int
    latency: float = 0.0
    _reasons: list[Reason] = field(default_factory=list)

    @property
    def decision(self) -> Decision:
        return self.verdict.decision

    @property
    def outcome(self) -> str:
        return self.verdict.outcome

    @property
    def allowed(self) -> bool:
        return self.verdict.allowed

    @property
    def reasons(self) -> list[Reason]:
        """Computed on first use: callers that do not show reasons never pay for them."""
        if not self._reasons:
            q = self.question
            if self.verdict.hits and self.verdict.outcome != "allow":
                self._reasons.extend(explain_rules(self.organisation, self.verdict))
            else:
                self._reasons.extend(explain(self.organisation, self.decision, q.subject_id, q.resource_type, q.action))
                self._reasons.extend(explain_rules(self.organisation, self.verdict))
        return self._reasons


class FactsProvider:
    """What the rules may know beyond the request (usage totals, approval history, presented approvals).

    The base provider knows nothing; the service's ledgers override `facts_for`.
    """

    def facts_for(self, org: CompiledOrg, question: Question, check: Check) -> Facts:
        return NO_FACTS


def resolve_organisation(policies: PolicySet, question: Question) -> CompiledOrg | None:
    """The organisation a question is about.

    In order: the one named by the caller (path, `context.organisation`, `resource.properties.organisation`,
    `subject.properties.organisation`); otherwise the only organisation that knows the subject. A subject
    known to several organisations without one being named is the caller's error. Only the organisations the
    request reaches (`services.reach`) are candidates, and naming another is Forbidden, known or not.
    """
    reach = REACH.get()
    named = question.organisation or _named(question.context) or _named(question.resource_properties)
    named = named or _named(question.subject_properties)
    if named is not None:
        reach.require(named, "organisation")
        return policies.get(named)
    reached = policies.orgs.values()
    if reach.organisations is not None:
        reached = [org for org in reached if reach.admits(org.id)]  # type: ignore[assignment]
    if question.subject_type == "post":
        candidates = [org for org in reached if question.subject_id in org.posts]
    else:
        candidates = [org for org in reached if question.subject_id in org.identities]
    if len(candidates) > 1:
        names = ", ".join(sorted(org.id for org in candidates))
        raise Invalid(
            f"subject {question.subject_id!r} is known in several organisations ({names}); name one in "
            "context.organisation",
            [Issue("<request>", 0, "context.organisation", "required when the subject is ambiguous")],
        )
    return candidates[0] if candidates else None


def sole_owner(policies: PolicySet, resource_type: str) -> str | None:
    """The only organisation (of those the request reaches) whose catalogue has `resource_type`, if just one has."""
    reach = REACH.get()
    owners = [org.id for org in policies.orgs.values() if resource_type in org.actions and reach.admits(org.id)]
    return owners[0] if len(owners) == 1 else None


def _named(properties: Mapping[str, Any] | None) -> str | None:
    if not properties:
        return None
    value = properties.get("organisation")
    return value if isinstance(value, str) else None


class DecisionService:
    def __init__(self, policies: PolicyService, log: DecisionLog | None = None, facts: FactsProvider | None = None) -> None:
        self._policies = policies
        self._log = log
        self.facts = facts or FactsProvider()
        # Called with an allowed answer whose rules notify someone (the outbox queue); must not block.
        self.obligations: Callable[[Answer], None] | None = None

    @property
    def policies(self) -> PolicySet:
        return self._policies.current

    def answer(self, question: Question, past: PastPolicy | None = None) -> Answer:
        """Decide one question against the current policy, count it and log it. With `past` (an organisation and
        its rules as they were at some moment: `as_of` checks), decide against those instead."""
        started = time.perf_counter()
        policies = self._policies.current
        if past is None:
            org = resolve_organisation(policies, question)
        else:
            org = past.org
            REACH.get().require(org.id, "organisation")
        if org is None:
            decision = Decision("deny", "unknown_organisation" if question.organisation else "unknown_subject")
            verdict = Verdict("deny", decision)
        else:
            try:
                check = to_check(question)
                decision = decide(org, check)
                if past is None:
                    rules, host = policies.rules.get(org.id), self._policies.host
                else:
                    if past.error is not None:
                        raise RuntimeError(past.error)
                    rules, host = past.rules, past.host
                facts = self.facts.facts_for(org, question, check) if rules is not None and decision.allowed else NO_FACTS
                verdict = apply_rules(host, org, rules, check, decision, facts)
            except Exception:  # fail closed: a bug, a broken compiled policy or a failing fact source is a deny
                log.exception("decision failed in %s for %s %s %s; denied", org.id, question.subject_id,
                              question.resource_type, question.action)
                DECISION_ERRORS.inc()
                verdict = Verdict("deny", Decision("deny", "internal_error", version=org.version))
        latency = time.perf_counter() - started
        answer = Answer(verdict, org, question, new_decision_id(), policies.version if past is None else past.org.version, latency)
        _COUNTED[verdict.outcome].inc()
        DECISION_LATENCY.observe(latency)
        if self._log is not None:
            self._log.record(LoggedDecision.of(answer))
        if verdict.notify and self.obligations is not None:
            self.obligations(answer)
        return answer


def to_check(question: Question) -> Check:
    return Check(
        subject_id=question.subject_id,
        resource_type=question.resource_type,
        action=question.action,
        at=time.time() if question.at is None else question.at,
        subject_type=question.subject_type,
        resource_id=question.resource_id,
        subject_properties=question.subject_properties,
        resource_properties=question.resource_properties,
        context=question.context,
    )


def subjects_allowed(org: CompiledOrg, check: Check) -> list[str]:
    """People who may do the check's action on its resource, in id order.

    Only holders of posts with a grant for (resource type, action) can be allowed, so only they are decided.
    """
    candidates: set[str] = set()
    for post in org.grantees.get((check.resource_type, check.action), ()):
        candidates.update(org.holders.get(post, ()))
    return [p for p in sorted(candidates) if decide(org, replace(check, subject_id=p, subject_type="person")).allowed]


def resources_allowed(org: CompiledOrg, check: Check) -> list[str]:
    """Known instances of the check's resource type the subject may act on, in id order."""
    ids = org.instance_ids.get(check.resource_type, ())
    return [i for i in ids if decide(org, replace(check, resource_id=i)).allowed]


def actions_allowed(org: CompiledOrg, check: Check) -> list[str]:
    """Actions of the resource's type the subject may do on it, in catalogue order."""
    actions = org.action_order.get(check.resource_type, ())
    return [a for a in actions if decide(org, replace(check, action=a)).allowed]
