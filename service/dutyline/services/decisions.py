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

from dutyline.engines.binding import Presented
from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.decision import Check, Decision, decide
from dutyline.engines.explain import Reason, explain, explain_approval, explain_rules
from dutyline.engines.policyset import PolicySet
from dutyline.engines.rulehost import RuleBackend
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
    # Trying a question out (the console's simulator): logged, marked so, and without effects: it notifies
    # nobody and presents no approval (which would take one of its uses).
    simulated: bool = False


@dataclass(frozen=True, slots=True)
class PastPolicy:
    """An organisation and its business rules as they were in force at a moment (`as_of` checks)."""

    org: CompiledOrg
    rules: CompiledRules | None
    host: RuleBackend | None  # holds `rules`; not the process's host, whose rules are the current ones
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
    # The approval the check presented, when it mattered (the request needed approval): the one it was allowed
    # through (`used`), or why it covered nothing.
    approval: Presented | None = None
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
            if self.approval is not None:
                self._reasons.append(explain_approval(self.approval))
        return self._reasons

    @property
    def used_approval(self) -> Presented | None:
        """The approval this decision was allowed through (a use of it was taken), if any."""
        return self.approval if self.approval is not None and self.approval.used else None


class FactsProvider:
    """What the rules may know beyond the request (usage totals, approval history, presented approvals).

    The base provider knows nothing and keeps no approvals; the service's ledger overrides all three.
    """

    def facts_for(self, org: CompiledOrg, question: Question, check: Check) -> Facts:
        return NO_FACTS

    def presented(
        self, org: CompiledOrg, rules: CompiledRules | None, question: Question, check: Check, decision: Decision
    ) -> Presented:
        """The approval `question.approval_id`, judged against the check: what it covers, or why nothing."""
        ident = question.approval_id or ""
        return Presented(ident).refused(
            f"此处不保存审批 {ident}", f"approval {ident} is not known here (no approval store)"
        )

    def consume(self, presented: Presented, decision_id: str) -> Presented | None:
        """Take one use of a covering approval for the decision `decision_id` (None: no use was left to take)."""
        return None

    @property
    def generation(self) -> int:
        """Grows whenever the facts change (a listing computed under one generation may be kept until the next)."""
        return 0


def resolve_organisation(policies: PolicySet, question: Question) -> CompiledOrg | None:
    """The organisation a question is about.

    In order: the one named by the caller (path, `context.organisation`, `resource.properties.organisation`,
    `subject.properties.organisation`); otherwise the only organisation that knows the subject. A subject
    known to several organisations without one being named is the caller's error. Only the organisations the
    request reaches (`services.reach`) are candidates, and naming another is Forbidden, known or not.
    """
    reach = REACH.get()
    named = named_organisation(question)
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


def named_organisation(question: Question) -> str | None:
    """The organisation the caller names (path, `context.organisation`, `resource.properties.organisation`,
    `subject.properties.organisation`, in that order), if any."""
    named = question.organisation or _named(question.context) or _named(question.resource_properties)
    return named or _named(question.subject_properties)


def _named(properties: Mapping[str, Any] | None) -> str | None:
    if not properties:
        return None
    value = properties.get("organisation")
    return value if isinstance(value, str) else None


class DecisionService:
    def __init__(
        self,
        policies: PolicyService,
        log: DecisionLog | None = None,
        facts: FactsProvider | None = None,
        obligations: Callable[[Answer], None] | None = None,
    ) -> None:
        self._policies = policies
        self._log = log
        self.facts = facts or FactsProvider()
        # Called with an allowed answer whose rules notify someone (the outbox queue); must not block.
        self.obligations = obligations

    @property
    def policies(self) -> PolicySet:
        return self._policies.current

    def answer(self, question: Question, past: PastPolicy | None = None) -> Answer:
        """Decide one question against the current policy, count it and log it. With `past` (an organisation and
        its rules as they were at some moment: `as_of` checks), decide against those instead.

        A question presenting an approval (`approval_id`) that needs approval is decided again with the rules the
        approval covers; when that is an allow, it takes one of the approval's uses (a database write): if none is
        left to take, the answer is the one without it. An allow never happens without its use taken."""
        started = time.perf_counter()
        policies = self._policies.current
        decision_id = new_decision_id()
        presented: Presented | None = None
        if past is None:
            org = resolve_organisation(policies, question)
        else:
            org = past.org
            REACH.get().require(org.id, "organisation")
        if org is None:
            named = named_organisation(question)
            if named is not None and named in policies.problems:  # stored, but no version of it can be used
                code = "organisation_unavailable"
            else:
                code = "unknown_organisation" if question.organisation else "unknown_subject"
            verdict = Verdict("deny", Decision("deny", code))
        else:
            try:
                check = to_check(question)
                decision = decide(org, check)
                verdict, presented = self._rules(policies, org, question, check, decision, decision_id, past)
            except Exception:  # fail closed: a bug, a broken compiled policy or a failing fact source is a deny
                log.exception(
                    "decision failed in %s for %s %s %s; denied",
                    org.id,
                    question.subject_id,
                    question.resource_type,
                    question.action,
                )
                DECISION_ERRORS.inc()
                verdict = Verdict("deny", Decision("deny", "internal_error", version=org.version))
                presented = None
        latency = time.perf_counter() - started
        if past is not None:
            version = past.org.version
        else:  # a stale organisation is decided at the version it was last current at, and says so
            version = policies.version_of(org.id) if org is not None else policies.version
        answer = Answer(verdict, org, question, decision_id, version, latency, presented)
        _COUNTED[verdict.outcome].inc()
        DECISION_LATENCY.observe(latency)
        if self._log is not None:
            self._log.record(LoggedDecision.of(answer))
        if verdict.notify and self.obligations is not None and not question.simulated:
            self.obligations(answer)
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
        """What the business rules make of a duty decision, with the facts they read and the approval the question
        presents (which a traced service spans as one stage: services/tracing.py)."""
        host: RuleBackend | None
        if past is None:
            rules, host = policies.rules.get(org.id), self._policies.host
        else:
            if past.error is not None:
                raise RuntimeError(past.error)
            rules, host = past.rules, past.host
        facts = self.facts.facts_for(org, question, check) if rules is not None and decision.allowed else NO_FACTS
        verdict = apply_rules(host, org, rules, check, decision, facts)
        # A question about the past (`as_of`) is an audit of what the rules said then: it uses up no approval.
        if past is None and question.approval_id is not None and verdict.outcome == "needs_approval":
            return self._through_approval(host, org, rules, question, check, verdict, facts, decision_id)
        return verdict, None

    def permitter(self, org: CompiledOrg, question: Question) -> Callable[[Check], bool]:
        """Whether an evaluation of a check in `org` would be permitted, decided as `answer` decides it (the duty,
        then the business rules with the facts they read; no approval presented, a failure a deny), but neither
        counted nor logged: what the AuthZEN searches list (each search result is one decision of this)."""
        rules, host = self._policies.current.rules.get(org.id), self._policies.host
        facts = self.facts.facts_for(org, question, to_check(question)) if rules is not None else NO_FACTS

        def permits(check: Check) -> bool:
            try:
                decision = decide(org, check)
                if not decision.allowed or rules is None:
                    return decision.allowed
                return apply_rules(host, org, rules, check, decision, facts).allowed
            except Exception:  # fail closed, as `answer` does
                log.exception(
                    "search decision failed in %s for %s %s %s; not listed",
                    org.id,
                    check.subject_id,
                    check.resource_type,
                    check.action,
                )
                return False

        return permits

    def rules_read_by(self, org: CompiledOrg, resource_type: str, actions: tuple[str, ...]) -> bool:
        """Whether some business rule of `org` applies to one of `actions` on `resource_type` (its answers then depend
        on the exact moment, the request's context and the facts, not only on the org model)."""
        rules = self._policies.current.rules.get(org.id)
        return rules is not None and any(rules.for_request(resource_type, a) for a in actions)

    def _through_approval(
        self,
        host: RuleBackend | None,
        org: CompiledOrg,
        rules: CompiledRules | None,
        question: Question,
        check: Check,
        verdict: Verdict,
        facts: Facts,
        decision_id: str,
    ) -> tuple[Verdict, Presented]:
        """The verdict of a request that needs approval and presents one, and what became of the approval."""
        presented = self.facts.presented(org, rules, question, check, verdict.decision)
        if not presented.covers:
            return verdict, presented
        through = apply_rules(host, org, rules, check, verdict.decision, replace(facts, approved=presented.covers))
        if not through.allowed:
            others = sorted({h.rule for h in through.hits if h.effect != "notify"})
            return verdict, presented.refused(
                f"审批 {presented.approval_id} 不涵盖规则 {', '.join(others)}",
                f"approval {presented.approval_id} does not cover rule(s) {', '.join(others)}, which also apply",
                "out_of_scope",
            )
        used = self.facts.consume(presented, decision_id)
        if used is None:
            return verdict, presented.refused(
                f"审批 {presented.approval_id} 已用完或已过期,没有可用次数",
                f"approval {presented.approval_id} is used up or expired: no use of it was left to take",
                "approval_expired",
            )
        return through, used


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


def subjects_allowed(org: CompiledOrg, check: Check, permits: Callable[[Check], bool]) -> list[str]:
    """People who may do the check's action on its resource, in id order.

    Only holders of posts with a grant for (resource type, action) can be allowed, so only they are decided.
    """
    candidates: set[str] = set()
    for post in org.grantees.get((check.resource_type, check.action), ()):
        candidates.update(org.holders.get(post, ()))
    return [p for p in sorted(candidates) if permits(replace(check, subject_id=p, subject_type="person"))]


def posts_permitted(org: CompiledOrg, check: Check, permits: Callable[[Check], bool]) -> list[str]:
    """Posts (as subjects) that may do the check's action on its resource, in the order of the grantees."""
    return [
        p
        for p in org.grantees.get((check.resource_type, check.action), ())
        if permits(replace(check, subject_id=p, subject_type="post"))
    ]


def resources_allowed(org: CompiledOrg, check: Check, permits: Callable[[Check], bool]) -> list[str]:
    """Known instances of the check's resource type the subject may act on, in id order."""
    ids = org.instance_ids.get(check.resource_type, ())
    return [i for i in ids if permits(replace(check, resource_id=i))]


def actions_allowed(org: CompiledOrg, check: Check, permits: Callable[[Check], bool]) -> list[str]:
    """Actions of the resource's type the subject may do on it, in catalogue order."""
    actions = org.action_order.get(check.resource_type, ())
    return [a for a in actions if permits(replace(check, action=a))]
