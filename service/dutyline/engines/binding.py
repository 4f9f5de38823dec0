"""What an approval is bound to: the request it was opened for, kept as a digest, and the amounts it approved.

An approval opened for "+5 % on contract C" must not allow "+50 %" or "-30 %" on C, nor a request about another
contract, nor one whose budget has since run out. So when an approval is opened, `bind` takes the request's
subject (the person it resolved to), organisation, resource type and id (a missing id is a value, not a
wildcard), action, and the value of every attribute that the rules applying to the request read (every rule
indexed for its resource type and action whose `applies_to.posts` meets the posts the request is made through;
those that fired and those that did not), normalises them, and digests their canonical JSON (SHA-256).

The amounts a limit bounds (`Input.role == "amount"`) are left out of the digest and kept apart as magnitudes:
an approval of 20,000 also covers 15,000, never 25,000. An amount that another rule also reads (a condition
comparing it with the budget left) stays in the digest too, so it is then bound exactly.

`present` says whether an approval presented with a check covers it: the rule ids it covers, or nothing and the
reason, naming what differs. Consuming a use is the caller's business (a database write, `services.ledger`).
Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from dutyline.engines.attributes import read, resolve_party, split
from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.decision import Check, Decision
from dutyline.engines.rules import CompiledRules, InputRole
from dutyline.expressions import is_finite_number
from dutyline.rulemodel.currencies import currency_code


@dataclass(frozen=True, slots=True)
class Binding:
    """A request as an approval is bound to it."""

    digest: str  # SHA-256 (hex) of `canonical`
    canonical: str  # the canonical JSON digested: what `differences` compares to name what changed
    limits: Mapping[str, Decimal | None]  # limited amount path → its magnitude (None: missing or not a number)


def bind(org: CompiledOrg, rules: CompiledRules | None, check: Check, decision: Decision) -> Binding:
    """The binding of a request decided `decision` (whose `subject` is the person it resolved to)."""
    posts = {b.post for b in decision.allowed_by}
    roles: dict[str, set[InputRole]] = {}
    amounts: set[str] = set()
    for compiled in rules.for_request(check.resource_type, check.action) if rules is not None else ():
        if compiled.rule.applies_to.posts and not set(compiled.rule.applies_to.posts) & posts:
            continue
        for item in compiled.inputs:
            if item.role == "amount":
                amounts.add(item.path)
            else:
                roles.setdefault(item.path, set()).add(item.role)
    subject = decision.subject
    attributes = {
        path: _normal_for(org, read(org, check, subject, split(path)), kinds) for path, kinds in roles.items()
    }
    values = {
        "organisation": org.id,
        "subject": subject,
        "resource": {"type": check.resource_type, "id": check.resource_id},
        "action": check.action,
        "attributes": attributes,
        "limited": sorted(amounts),
    }
    text = canonical(values)
    limits = {path: magnitude(read(org, check, subject, split(path))) for path in sorted(amounts)}
    return Binding(hashlib.sha256(text.encode()).hexdigest(), text, limits)


def canonical(values: Any) -> str:
    """Canonical JSON: keys sorted, no spaces, text as written (equal values give equal text)."""
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def magnitude(value: Any) -> Decimal | None:
    """The magnitude of a limited amount, exactly as sent (None when it is missing, not a number or not finite).
    Magnitude, because a limit bounds -50,000 as it bounds 50,000."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not is_finite_number(value):
        return None
    return abs(Decimal(value) if isinstance(value, int) else Decimal(repr(value)))


def _normal_for(org: CompiledOrg, value: Any, roles: set[InputRole]) -> Any:
    """A value as the binding keeps it. Currencies and parties are normalised only when every rule reading the
    path reads it as such: a condition comparing `context.maker` with a literal sees the text as written."""
    if roles == {"currency"} and isinstance(value, str):
        return currency_code(value) or value.strip().upper()
    if roles == {"party"} and value is not None:
        person = resolve_party(org, value)
        return person if person is not None else {"unresolved": _normal(value)}
    return _normal(value)


def _normal(value: Any) -> Any:
    """JSON values with numbers made canonical: 5.0 and 5 are the same number to every rule."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return int(value) if is_finite_number(value) and value == int(value) else value
    if isinstance(value, Mapping):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    return repr(value)


def differences(stored: str, current: str) -> list[str]:
    """What differs between two canonical bindings, by name (`subject`, `resource.id`, `context.amount` …)."""
    old, new = json.loads(stored), json.loads(current)
    out = [key for key in ("organisation", "subject", "action") if old.get(key) != new.get(key)]
    out += [
        f"resource.{key}"
        for key in ("type", "id")
        if old.get("resource", {}).get(key) != new.get("resource", {}).get(key)
    ]
    was, now = old.get("attributes", {}), new.get("attributes", {})
    out += [path for path in sorted(set(was) | set(now)) if was.get(path, _ABSENT) != now.get(path, _ABSENT)]
    if old.get("limited") != new.get("limited"):
        out.append("the rules that apply")
    return out


_ABSENT = object()


# --- presenting an approval -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApprovalTerms:
    """What the decision path needs to know of a stored approval."""

    id: str
    organisation: str
    status: str  # pending, approved, rejected
    requester: str
    rules: tuple[str, ...]  # the rules that needed approval when it was opened
    digest: str | None  # None: opened before approvals were bound to their request
    bound: str | None  # the canonical binding
    limits: Mapping[str, Decimal | None]
    uses: int
    uses_left: int
    expires_at: dt.datetime | None
    decided_by: str | None
    decided_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Presented:
    """An approval presented with a check: the rule ids it covers, or nothing and why (in Chinese and English)."""

    approval_id: str
    covers: frozenset[str] = frozenset()
    refusal: tuple[str, str] | None = None  # (zh, en)
    terms: ApprovalTerms | None = None
    used: bool = False  # a use was consumed by this decision: it was allowed thanks to the approval
    # Why it covers nothing, for programs: the AuthZEN access request profile's re-evaluation denial reasons
    # (approval_unverifiable, grant_pending, approval_expired, out_of_scope) and approval_rejected.
    reason: str = ""

    def refused(self, zh: str, en: str, reason: str = "approval_unverifiable") -> Presented:
        return Presented(self.approval_id, frozenset(), (zh, en), self.terms, reason=reason)

    def consumed(self, uses_left: int) -> Presented:
        """This presentation after its decision took a use (`uses_left` is what remains)."""
        assert self.terms is not None
        return Presented(self.approval_id, self.covers, None, replace(self.terms, uses_left=uses_left), used=True)


def present(
    org: CompiledOrg,
    rules: CompiledRules | None,
    check: Check,
    decision: Decision,
    approval_id: str,
    terms: ApprovalTerms | None,
    now: dt.datetime,
) -> Presented:
    """Whether the approval `approval_id` (`terms`, None if there is none) covers this check, decided `decision`
    by the duty model, at `now`: it covers the rules it was opened for only when it is approved, of this
    organisation, not expired, not used up, opened for a request with this binding, and every limited amount is
    at most the approved one."""
    refused = Presented(approval_id, terms=terms).refused
    if terms is None or terms.organisation != org.id:
        return refused(f"审批 {approval_id} 在本组织中不存在", f"approval {approval_id} was not found in {org.id}")
    if terms.status != "approved":
        zh = "尚未审批" if terms.status == "pending" else "已被驳回"
        reason = "grant_pending" if terms.status == "pending" else "approval_rejected"
        return refused(f"审批 {approval_id} {zh}", f"approval {approval_id} is {terms.status}, not approved", reason)
    if terms.digest is None or terms.bound is None:
        return refused(
            f"审批 {approval_id} 未与具体请求绑定,请重新申请",
            f"approval {approval_id} was opened before approvals were bound to their request; open a new one",
        )
    if terms.expires_at is None or now >= terms.expires_at:
        when = terms.expires_at.isoformat() if terms.expires_at is not None else "?"
        return refused(
            f"审批 {approval_id} 已于 {when} 过期", f"approval {approval_id} expired at {when}", "approval_expired"
        )
    if terms.uses_left <= 0:
        return refused(
            f"审批 {approval_id} 已用完({terms.uses} 次)",
            f"approval {approval_id} is used up (all {terms.uses} use(s) taken)",
            "approval_expired",
        )
    current = bind(org, rules, check, decision)
    if current.digest != terms.digest:
        named = ", ".join(differences(terms.bound, current.canonical)) or "the request"
        return refused(
            f"审批 {approval_id} 批准的是另一项请求({named} 不同)",
            f"approval {approval_id} was for a different request ({named} differs)",
            "out_of_scope",
        )
    for path, approved in terms.limits.items():
        asked = current.limits.get(path)
        within = asked is None if approved is None else asked is not None and asked <= approved
        if not within:
            asks_zh = "未给出数值" if asked is None else f"为 {format(asked, 'f')}"
            asks_en = "gives no number for it" if asked is None else f"asks {format(asked, 'f')}"
            if approved is None:
                zh = f"审批 {approval_id} 批准的请求未给出 {path},本次请求{asks_zh}"
                en = f"approval {approval_id} approved a request without {path}; this request {asks_en}"
            else:
                zh = f"审批 {approval_id} 批准的 {path} 至多为 {format(approved, 'f')},本次请求{asks_zh}"
                en = f"approval {approval_id} approved {path} up to {format(approved, 'f')}; this request {asks_en}"
            return refused(zh, en, "out_of_scope")
    return Presented(approval_id, frozenset(terms.rules), None, terms)
