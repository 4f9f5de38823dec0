"""Turning a decision into reasons a person can read, in Chinese and English."""

from __future__ import annotations

from dataclasses import dataclass

from dutyline.engines.compiler import CompiledOrg, DutyRef
from dutyline.engines.decision import Basis, Decision
from dutyline.engines.rules import Verdict


@dataclass(frozen=True, slots=True)
class DutyInfo:
    owner: str
    number: str
    text: str
    en: str


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


def explain(org: CompiledOrg | None, decision: Decision, subject: str, resource: str, action: str) -> list[Reason]:
    """The reasons behind `decision`: the duties that allowed or denied it, or why nothing applied."""
    if org is None:
        return [Reason("unknown_organisation", "未知的组织", "unknown organisation")]
    if decision.code == "internal_error":  # the organisation may be what is broken: read nothing of it
        return [Reason("internal_error", "内部错误,按拒绝处理", "an internal error occurred; denied (fail closed)")]
    if decision.denied_by:
        return [_memo_reason(org, "denied_by_duty", b) for b in decision.denied_by]
    if decision.allowed_by:
        return [_memo_reason(org, "granted", b) for b in decision.allowed_by]
    messages = {
        "unknown_resource": (f"目录中没有资源类型「{resource}」", f"the catalogue has no resource type {resource!r}"),
        "unknown_action": (
            f"资源「{_res_zh(org, resource)}」没有操作「{action}」",
            f"resource {resource!r} has no action {action!r}",
        ),
        "unknown_subject": (f"组织中没有「{subject}」", f"{subject!r} is not a person or post of this organisation"),
        "no_active_assignment": (f"「{subject}」此时没有有效的岗位任职", f"{subject!r} holds no post at that time"),
        "no_grant": (
            f"没有任何在岗职责授予对「{_res_zh(org, resource)}」的「{action}」权限",
            f"no duty of the posts held grants {action!r} on {resource!r}",
        ),
    }
    zh, en = messages.get(decision.code, ("拒绝", "denied"))
    return [Reason(decision.code, zh, en)]


def _res_zh(org: CompiledOrg, resource: str) -> str:
    for entry in org.document.catalogue.resources:
        if entry.id == resource:
            return entry.name.zh
    return resource


def _post_names(org: CompiledOrg, post: str) -> tuple[str, str]:
    for entry in org.document.posts:
        if entry.id == post:
            return entry.name.zh, entry.name.en
    return post, post


def _owner_names(org: CompiledOrg, duty: DutyRef) -> tuple[str, str]:
    kind, _, ident = duty.owner.partition(":")
    if kind == "department":
        for dept in org.document.departments:
            if dept.id == ident:
                return f"部门「{dept.name.zh}」", f"department {dept.name.en}"
    if kind == "post":
        zh, en = _post_names(org, ident)
        return f"岗位「{zh}」", f"post {en}"
    return "岗位共同职责", "the duties common to all posts"


def _memo_reason(org: CompiledOrg, code: str, basis: Basis) -> Reason:
    """`_basis_reason`, rendered once per (post, assignment, grant) of the organisation. The assignment and
    grant are the compiled organisation's own objects, alive as long as the memo, so their ids are stable keys."""
    key = (code, basis.post, id(basis.assignment), id(basis.grant))
    reason = org.reason_memo.get(key)
    if reason is None:
        reason = org.reason_memo.setdefault(key, _basis_reason(org, code, basis))
    return reason  # type: ignore[return-value]


def _basis_reason(org: CompiledOrg, code: str, basis: Basis) -> Reason:
    post_zh, post_en = _post_names(org, basis.post)
    a = basis.assignment
    acting = a is not None and a.kind == "acting"
    window_zh = f"(顶替,{a.valid_from} 至 {a.valid_to})" if acting and a else ""
    window_en = f" (acting, {a.valid_from} to {a.valid_to})" if acting and a else ""
    owner_zh, owner_en = _owner_names(org, basis.grant.duty)
    duty = basis.grant.duty
    verb_zh = "授予" if code == "granted" else "禁止"
    verb_en = "grants" if code == "granted" else "forbids"
    zh = f"岗位「{post_zh}」{window_zh}:{owner_zh}第 {duty.number} 条「{duty.text}」{verb_zh}此操作"
    en = f"post {post_en}{window_en}: duty {duty.number} of {owner_en} {verb_en} this ({duty.en or duty.text})"
    return Reason(
        code=code,
        zh=zh,
        en=en,
        post=basis.post,
        via_post=basis.grant.via_post if basis.grant.via_post != basis.post else None,
        acting=acting,
        valid_from=a.valid_from if a else None,
        valid_to=a.valid_to if a else None,
        stands_in_for=a.stands_in_for if a else None,
        duty=DutyInfo(duty.owner, duty.number, duty.text, duty.en),
    )


def explain_rules(org: CompiledOrg | None, verdict: Verdict) -> list[Reason]:
    """Reasons for the business rules that fired: which rule, what it says, in both languages."""
    out = []
    for hit in verdict.hits:
        code = {"deny": "rule_denied", "needs_approval": "rule_needs_approval", "notify": "rule_notifies"}[hit.effect]
        out.append(Reason(code, f"规则「{hit.rule}」:{hit.message.zh}", f"rule {hit.rule}: {hit.message.en}", rule=hit.rule))
    return out
