"""How a verdict is shown outside the engines: the decision and code (as `/v1/check` gives them), the rules that
fired and the approver chain. One home for these shapes: the decision API's answers and the preview's checks both
carry them."""

from __future__ import annotations

from typing import Any, Literal

from dutyline.engines.rules import Verdict
from dutyline.services.shapes import Shape as _Shape
from dutyline.services.shapes import Texts

Outcome = Literal["allow", "deny", "needs_approval"]


class FiredRule(_Shape):
    rule: str
    kind: str
    effect: Literal["deny", "needs_approval", "notify"]
    message: Texts
    detail: dict[str, Any]


class ApproverStep(_Shape):
    """A post of the approver chain, and the people who hold it now."""

    post: str
    people: list[str]


class VerdictView(_Shape):
    decision: Outcome
    code: str
    rules: list[FiredRule]
    approvers: list[ApproverStep]


def verdict_view(verdict: Verdict) -> VerdictView:
    """A verdict as the preview shows it: the decision and code, the rules that fired and the approver chain."""
    return VerdictView(
        verdict.outcome,
        verdict.code,
        [FiredRule(h.rule, h.kind, h.effect, Texts(h.message.zh, h.message.en), dict(h.detail)) for h in verdict.hits],
        [ApproverStep(s.post, list(s.people)) for s in verdict.approvers],
    )
