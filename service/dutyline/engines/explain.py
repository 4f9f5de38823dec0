"""Turning a decision into reasons a person can read, in Chinese and English."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import msgspec

from dutyline.engines.binding import Presented
from dutyline.engines.compiler import CompiledOrg, DutyInfo, duty_phrase
from dutyline.engines.decision import Basis, Decision
from dutyline.engines.rules import RuleHit, Verdict


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    zh: str
    en: str
    post: str | None = None
    via_post: str | None = None
    acting: bool = False
    valid_from: str | None = None
    valid_to: str | None = None
    stands_in_for: str | None = None
    duty: DutyInfo | None = None
    rule: str | None = None


_UNAVAILABLE = (
    "该组织的策略当前无法使用,按拒绝处理",
    "the organisation's policy cannot be used by this server right now; denied (fail closed)",
)


def explain(org: CompiledOrg | None, decision: Decision, subject: str, resource: str, action: str) -> list[Reason]:
    """The reasons behind `decision`: the duties that allowed or denied it, or why nothing applied."""
    if org is None:
        if decision.code == "organisation_unavailable":
            return [Reason("organisation_unavailable", *_UNAVAILABLE)]
        return [Reason("unknown_organisation", "未知的组织", "unknown organisation")]
    if decision.code == "internal_error":  # the organisation may be what is broken: read nothing of it
        return [Reason("internal_error", "内部错误,按拒绝处理", "an internal error occurred; denied (fail closed)")]
    if decision.denied_by:
        return [_basis_reason(org, "denied_by_duty", b) for b in decision.denied_by]
    if decision.allowed_by:
        return [_basis_reason(org, "granted", b) for b in decision.allowed_by]
    return [_plain_reason(org, decision.code, subject, resource, action)]


def _plain_reason(org: CompiledOrg | None, code: str, subject: str, resource: str, action: str) -> Reason:
    """The reason of a decision no duty made: the request named something unknown, or nothing grants it."""
    res_zh = _res_zh(org, resource) if org is not None and code in ("unknown_action", "no_grant") else resource
    messages = {
        "unknown_organisation": ("未知的组织", "unknown organisation"),
        "organisation_unavailable": _UNAVAILABLE,
        "internal_error": ("内部错误,按拒绝处理", "an internal error occurred; denied (fail closed)"),
        "unknown_resource": (f"目录中没有资源类型「{resource}」", f"the catalogue has no resource type {resource!r}"),
        "unknown_action": (f"资源「{res_zh}」没有操作「{action}」", f"resource {resource!r} has no action {action!r}"),
        "unknown_subject": (f"组织中没有「{subject}」", f"{subject!r} is not a person or post of this organisation"),
        "no_active_assignment": (f"「{subject}」此时没有有效的岗位任职", f"{subject!r} holds no post at that time"),
        "no_grant": (
            f"没有任何在岗职责授予对「{res_zh}」的「{action}」权限",
            f"no duty of the posts held grants {action!r} on {resource!r}",
        ),
    }
    zh, en = messages.get(code, ("拒绝", "denied"))
    return Reason(code, zh, en)


def _res_zh(org: CompiledOrg, resource: str) -> str:
    for entry in org.document.catalogue.resources:
        if entry.id == resource:
            return entry.name.zh
    return resource


def _post_names(org: CompiledOrg, post: str) -> tuple[str, str]:
    return org.post_names.get(post, (post, post))


def _basis_reason(org: CompiledOrg, code: str, basis: Basis) -> Reason:
    a = basis.assignment
    acting = a is not None and a.kind == "acting"
    return _duty_reason(
        org,
        code,
        basis.post,
        basis.grant.via_post,
        basis.grant.duty,
        (a.valid_from, a.valid_to, a.stands_in_for) if acting and a is not None else None,
    )


def _duty_reason(
    org: CompiledOrg,
    code: str,
    post: str,
    via_post: str,
    duty: DutyInfo,
    acting: tuple[str | None, str | None, str | None] | None,
) -> Reason:
    """A duty's reason in both languages; `acting` is the (from, to, stands in for) of an acting assignment. The
    names of posts and duties were rendered when the organisation was compiled (`duty_phrases`)."""
    post_zh, post_en = _post_names(org, post)
    duty_zh, duty_en = org.duty_phrases.get(duty) or _unindexed(org, duty)
    verb_zh, verb_en = ("授予", "grants") if code == "granted" else ("禁止", "forbids")
    if acting:
        zh = f"岗位「{post_zh}」(顶替,{acting[0]} 至 {acting[1]}):{duty_zh}{verb_zh}此操作"
        en = f"post {post_en} (acting, {acting[0]} to {acting[1]}): {duty_en} {verb_en} this ({duty.en or duty.text})"
        return Reason(
            code, zh, en, post, via_post if via_post != post else None, True, acting[0], acting[1], acting[2], duty
        )
    zh = f"岗位「{post_zh}」:{duty_zh}{verb_zh}此操作"
    en = f"post {post_en}: {duty_en} {verb_en} this ({duty.en or duty.text})"
    return Reason(code, zh, en, post, via_post if via_post != post else None, duty=duty)


def _unindexed(org: CompiledOrg, duty: DutyInfo) -> tuple[str, str]:
    """A duty no grant of `org` cites (a logged decision's, rendered against a later version)."""
    document = org.document
    return duty_phrase(duty, {d.id: d.name for d in document.departments}, {p.id: p.name for p in document.posts})


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


def render(text: str, hit: RuleHit, org: CompiledOrg | None, language: str) -> str:
    """A rule's message with its placeholders filled from what the rule compared (`{amount}`, `{limit}`,
    `{risk}`, `{context.budget_remaining}` …, see `rulemodel.document.PLACEHOLDERS`); `{{` and `}}` are braces.
    A placeholder the hit has no value for is left as written."""
    if "{" not in text and "}" not in text:
        return text
    values = hit.detail

    def fill(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1)
        if name not in values:
            return token
        return _shown(values[name], org, language)

    return _PLACEHOLDER.sub(fill, text)


def _shown(value: object, org: CompiledOrg | None, language: str) -> str:
    if isinstance(value, Mapping) and language in value:
        return str(value[language])
    if isinstance(value, bool):
        return ("是" if value else "否") if language == "zh" else ("yes" if value else "no")
    if isinstance(value, (int, float)):
        number = float(value)
        if number.is_integer() and abs(number) < 1e15:
            return f"{int(number):,}"
        return f"{number:,.4f}".rstrip("0").rstrip(".")
    if isinstance(value, str) and org is not None and value in org.people_by_id:
        name = org.people_by_id[value].name
        return name.zh if language == "zh" else name.en
    if value is None:
        return "—"
    return str(value)


_PROBLEMS = {
    "missing": ("缺少「{input}」", "{input} is missing"),
    "not_number": ("「{input}」不是数字(收到 {given})", "{input} is not a number (got {given})"),
    "not_finite": ("「{input}」不是有限的数(收到 {given})", "{input} is not a finite number (got {given})"),
    "not_text": ("「{input}」不是文本(收到 {given})", "{input} is not text (got {given})"),
    "not_boolean": ("「{input}」不是 true 或 false(收到 {given})", "{input} is not true or false (got {given})"),
    "out_of_range": (
        "「{input}」超出规则包规定的范围(收到 {given})",
        "{input} is outside the range the pack allows (got {given})",
    ),
    "too_large": ("「{input}」嵌套过深或过大", "{input} is nested too deeply or too large"),
    "unknown_currency": (
        "「{input}」不是 ISO 4217 货币代码(收到 {given})",
        "{input} is not an ISO 4217 currency code (got {given})",
    ),
    "no_rate": ("本规则没有 {given} 的限额或汇率", "the rule has no limit or rate for {given}"),
    "unknown_person": (
        "「{input}」不是本组织的人员(收到 {given})",
        "{input} names nobody of this organisation (got {given})",
    ),
}
_FAIL_CLOSED = {
    "deny": ("无法核对,按拒绝处理", "it cannot be checked, so it is denied"),
    "needs_approval": (
        "无法核对,须经有权人员审批",
        "it cannot be checked, so it needs approval by someone whose authority covers it",
    ),
    "notify": ("无法核对,照常通知", "it cannot be checked, so the notification is sent"),
}


def explain_rules(org: CompiledOrg | None, verdict: Verdict) -> list[Reason]:
    """Reasons for the business rules that fired: which rule, what it says (or, when it fired because an input
    was missing or unreadable, which input and why), in both languages."""
    out = []
    for hit in verdict.hits:
        code = {"deny": "rule_denied", "needs_approval": "rule_needs_approval", "notify": "rule_notifies"}[hit.effect]
        if hit.problem is None:
            zh, en = render(hit.message.zh, hit, org, "zh"), render(hit.message.en, hit, org, "en")
        else:
            p = hit.problem
            problem_zh, problem_en = _PROBLEMS[p.kind]
            closed_zh, closed_en = _FAIL_CLOSED[hit.effect]
            zh = problem_zh.format(input=p.input, given=p.given) + "," + closed_zh
            en = problem_en.format(input=p.input, given=p.given) + "; " + closed_en
        out.append(Reason(code, f"规则「{hit.rule}」:{zh}", f"rule {hit.rule}: {en}", rule=hit.rule))
    return out


def explain_approval(presented: Presented) -> Reason:
    """What became of an approval a check presented: the decision was allowed through it (who approved it and
    when, the uses left, when it expires), or it covered nothing, and why."""
    terms = presented.terms
    if not presented.used or terms is None or terms.decided_at is None or terms.expires_at is None:
        zh, en = presented.refusal or ("审批不适用", "the approval does not apply")
        return Reason("approval_not_applied", zh, en)
    at, until = terms.decided_at.isoformat(timespec="seconds"), terms.expires_at.isoformat(timespec="seconds")
    rules = ", ".join(sorted(presented.covers))
    return Reason(
        "approved",
        f"审批 {terms.id}:{terms.decided_by} 于 {at} 批准(规则 {rules});剩余 {terms.uses_left}/{terms.uses} 次,{until} 过期",
        f"approval {terms.id}: approved by {terms.decided_by} at {at} (rule {rules}); "
        f"{terms.uses_left} of {terms.uses} use(s) left, expires at {until}",
    )


# --- the decision log keeps facts, not text -------------------------------------------------------------------
# A logged decision keeps what made it (codes, posts, duty references, acting windows, rules) and the policy
# version; its text is rendered when the log is read, from the organisation as it was at that version. That
# keeps a logged row ~5× smaller than its rendered reasons, and rendering off the decision path.


def logged_reasons(org: CompiledOrg | None, verdict: Verdict, approval: Presented | None = None) -> list[object]:
    """The facts behind the reasons `Answer.reasons` would give, as the decision log stores them. An approval the
    check presented is kept as rendered then (its uses left are those of that moment), with its terms."""
    decision = verdict.decision
    out: list[object] = []
    if not (verdict.hits and verdict.outcome != "allow"):
        if org is not None and decision.code != "internal_error" and (decision.denied_by or decision.allowed_by):
            code = "denied_by_duty" if decision.denied_by else "granted"
            out.extend(_fact(code, b) for b in (decision.denied_by or decision.allowed_by))
        else:
            unavailable = decision.code == "organisation_unavailable"
            out.append({"code": decision.code if org is not None or unavailable else "unknown_organisation"})
    out.extend(explain_rules(org, verdict))  # rules that fired: their own short messages, kept as written then
    if approval is not None:
        reason = msgspec.to_builtins(explain_approval(approval))
        terms = approval.terms
        if approval.used and terms is not None:
            reason["approval"] = {
                "id": terms.id,
                "approved_by": terms.decided_by,
                "approved_at": terms.decided_at.isoformat() if terms.decided_at else None,
                "uses": terms.uses,
                "uses_left": terms.uses_left,
                "expires_at": terms.expires_at.isoformat() if terms.expires_at else None,
            }
        out.append(reason)
    return out


def _fact(code: str, basis: Basis) -> dict[str, object]:
    grant, a = basis.grant, basis.assignment
    fact: dict[str, object] = {"code": code, "post": basis.post, "duty": f"{grant.duty.owner}#{grant.duty.number}"}
    if grant.via_post != basis.post:
        fact["via_post"] = grant.via_post
    if a is not None and a.kind == "acting":
        fact |= {"acting": True, "valid_from": a.valid_from, "valid_to": a.valid_to, "stands_in_for": a.stands_in_for}
    return fact


def from_logged(
    org: CompiledOrg | None, stored: list[dict[str, object]], subject: str, resource: str, action: str
) -> list[Reason]:
    """The reasons of a logged decision, rendered from the facts the log kept against `org`, the organisation as it
    was when the decision was made (None if it is gone: then the facts are given as they are)."""
    out: list[Reason] = []
    for item in stored:
        if "zh" in item:  # kept in full: reasons of rules, and every reason logged before the log kept facts
            duty = item.get("duty")
            fields = {k: v for k, v in item.items() if k in Reason.__dataclass_fields__ and k != "duty"}
            out.append(Reason(**fields, duty=DutyInfo(**duty) if isinstance(duty, dict) else None))  # type: ignore[arg-type]
            continue
        code = str(item.get("code", ""))
        if "duty" not in item:
            out.append(_plain_reason(org, code, subject, resource, action))
            continue
        post, ref = str(item.get("post")), str(item.get("duty"))
        acting = (
            (item.get("valid_from"), item.get("valid_to"), item.get("stands_in_for")) if item.get("acting") else None
        )
        duty = org.duties.get(ref) if org is not None else None
        if org is None or duty is None:
            out.append(
                Reason(
                    code, f"岗位「{post}」:职责 {ref}", f"post {post}: duty {ref}", post=post, acting=acting is not None
                )
            )
            continue
        out.append(_duty_reason(org, code, post, str(item.get("via_post") or post), duty, acting))  # type: ignore[arg-type]
    return out


def logged_approval(stored: list[dict[str, object]]) -> dict[str, object] | None:
    """The terms of the approval a logged decision was allowed through (as they were then), if any."""
    for item in stored:
        if isinstance(item, dict) and isinstance(item.get("approval"), dict):
            return item["approval"]  # type: ignore[return-value]
    return None
