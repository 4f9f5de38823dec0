"""The rule pack: what one `rules/<org>*.yaml` file holds.

Business rules a compliance officer writes as data: limits and delegation of authority, dynamic separation
of duties, dual control, suitability, time windows, required conditions, notifications, general
conditions, and the case types whose escalation follows the reporting line. The published JSON Schema
(`rules/schema/rules.schema.json`) is generated from these structs (`dutyline schema --rules`).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from dutyline.orgmodel.document import ActionId, Condition, Id, Names

Number = int | float
_BIG = 10**18  # amounts and limits beyond a quintillion are a typing slip, not a limit
# A finite number at least 0 (limits, rates, bounds): NaN and the infinities are refused by the bounds.
Amount = Annotated[int, msgspec.Meta(ge=0, le=_BIG)] | Annotated[float, msgspec.Meta(ge=0, le=float(_BIG))]
Finite = (
    Annotated[int, msgspec.Meta(ge=-_BIG, le=_BIG)] | Annotated[float, msgspec.Meta(ge=-float(_BIG), le=float(_BIG))]
)
Currency = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Z]{3}$", description="An ISO 4217 currency code, upper case: CNY, USD, HKD.")
]
Duration = Annotated[
    str,
    msgspec.Meta(pattern=r"^\d+(\.\d+)?(m|h|d)$", description="A duration: 30m, 4h, 2d."),
]
Clock = Annotated[str, msgspec.Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="A time of day, 08:30.")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Day = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$", description="A date: 2026-10-01.")]
AttributePath = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^(subject|resource|context)(\.[^.\s]+)+$",
        description="Where a value is read from: context.amount, resource.risk_level, subject.department.",
    ),
]


class _Struct(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    pass


class AppliesTo(_Struct, kw_only=True):
    """Which requests a rule looks at: resource types (or groups) and actions; optionally only some posts."""

    resources: Annotated[list[Id], msgspec.Meta(min_length=1)]
    actions: Annotated[list[ActionId], msgspec.Meta(min_length=1)] | Literal["*"] = "*"
    posts: Annotated[
        list[Id], msgspec.Meta(description="Only when the subject acts through one of these posts (default: any).")
    ] = []


class _Rule(_Struct, tag_field="kind", kw_only=True):
    id: Id
    name: Names
    applies_to: AppliesTo
    message: Annotated[Names | None, msgspec.Meta(description="What the decision says when the rule fires.")] = None
    enabled: bool = True
    note: Annotated[str, msgspec.Meta(description="Why the rule is as it is (numbers chosen, sources).")] = ""


class Limit(_Rule, tag="limit", kw_only=True):
    """Delegation of authority: each post may do up to its limit; above it the request needs approval by the
    first superior post whose limit covers it. With `period`, the limit is on the total over that period.

    The amount is counted by its magnitude: -300,000 is as far beyond a 50,000 limit as 300,000. An amount that is
    missing, not a number or not finite needs approval by a post with no limit (and is refused when there is none),
    as does a currency the rule cannot compare."""

    attribute: AttributePath
    limits: Annotated[dict[str, Amount], msgspec.Meta(description="Post id → the most that post may do.")]
    default: Annotated[
        Amount | None, msgspec.Meta(description="Limit of posts not listed (absent: they have no limit).")
    ] = None
    currency: Annotated[
        Currency | None,
        msgspec.Meta(
            description=(
                "The currency the limits are in. Every request must then state context.currency (an ISO 4217 code, "
                "any letter case); one in another currency is converted by `rates`, and one without a rate is "
                "refused."
            )
        ),
    ] = None
    rates: Annotated[
        dict[Currency, Annotated[float, msgspec.Meta(gt=0, le=1e9)]],
        msgspec.Meta(description="Other currency → how many units of `currency` one unit of it counts as."),
    ] = {}
    period: Literal["day", "week", "month"] | None = None


class Separation(_Rule, tag="separation", kw_only=True):
    """Dynamic separation of duties.

    - maker_checker: whoever entered it (`maker`, default context.maker) may not check it;
    - self_approval: nobody approves their own request (`requester`, default context.requester);
    - four_eyes: the last `history` approvals of the same resource are not all by one person.
    """

    check: Literal["maker_checker", "self_approval", "four_eyes"]
    maker: AttributePath = "context.maker"
    requester: AttributePath = "context.requester"
    history: Annotated[int, msgspec.Meta(ge=1, le=100)] = 3


class DualControl(_Rule, tag="dual_control", kw_only=True):
    """The action needs a second, distinct person who holds one of `posts` at that moment."""

    second_person: AttributePath = "context.second_person"
    posts: Annotated[list[Id], msgspec.Meta(min_length=1)]


class Suitability(_Rule, tag="suitability", kw_only=True):
    """A product's risk level may not exceed the customer's assessed tolerance."""

    risk: AttributePath = "resource.risk_level"
    tolerance: AttributePath = "context.customer_risk_tolerance"


class Window(_Struct, kw_only=True):
    name: Names | None = None
    days: list[Weekday] = msgspec.field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
    start: Clock
    end: Clock


class TimeWindow(_Rule, tag="time_window", kw_only=True):
    """The action is allowed only inside one of the windows (in the organisation's time zone), and not at all on a
    holiday."""

    windows: Annotated[list[Window], msgspec.Meta(min_length=1)]
    holidays: Annotated[
        list[Day],
        msgspec.Meta(
            max_length=1000,
            description="Dates (in the organisation's time zone) on which no window opens: public holidays, closures.",
        ),
    ] = []


class Requirement(_Rule, tag="requirement", kw_only=True):
    """When `when` holds, `require` must hold too; otherwise the request is denied or needs approval."""

    when: Condition = "true"
    require: Condition
    otherwise: Literal["deny", "needs_approval"] = "deny"
    approver: Annotated[
        Id | None, msgspec.Meta(description="Post that approves (default: the first superior post).")
    ] = None


class Notification(_Rule, tag="notification", kw_only=True):
    """An allowed request that matches `when` notifies these posts (an obligation on the decision)."""

    when: Condition = "true"
    notify: Annotated[
        list[Id | Literal["superior", "department_heads", "leadership"]],
        msgspec.Meta(
            min_length=1,
            description=(
                "Post ids, or: superior (the requester's direct superior post), department_heads (every "
                "department's head post), leadership (posts with no superior)."
            ),
        ),
    ]


class ConditionRule(_Rule, tag="condition", kw_only=True):
    """A general rule: when `when` holds, the request is denied or needs approval."""

    when: Condition
    effect: Literal["deny", "needs_approval"] = "deny"
    approver: Id | None = None


Rule = Limit | Separation | DualControl | Suitability | TimeWindow | Requirement | Notification | ConditionRule

# What a rule's `message` may quote, `{name}` in either language (`{{` for a brace): what the rule compared.
# Conditions, requirements and notifications quote the attributes their expressions read: `{context.amount}`.
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "limit": ("amount", "limit", "currency", "period"),
    "separation": ("party",),
    "dual_control": ("second_person",),
    "suitability": ("risk", "tolerance"),
    "time_window": ("local_time", "time", "window"),
    "requirement": (),
    "notification": (),
    "condition": (),
}


class EscalationStep(_Struct, kw_only=True):
    after: Duration
    to: Annotated[
        Id | Literal["superior"],
        msgspec.Meta(description="A post id, or superior: the next post up the reporting line."),
    ] = "superior"


class CaseType(_Struct, kw_only=True):
    """A kind of case (complaint, receivable, contract expiry …) and how it escalates while unresolved."""

    id: Id
    name: Names
    owner: Annotated[Id, msgspec.Meta(description="The post a new case is assigned to.")]
    steps: Annotated[list[EscalationStep], msgspec.Meta(min_length=1)]


InputType = Literal["number", "text", "boolean", "person", "currency", "any"]


class InputSpec(_Struct, kw_only=True):
    """What one attribute the pack's rules read must be. A rule that denies or needs approval reads it; when it is
    missing (and not `optional`) or not of this type, that rule answers its effect, naming the attribute."""

    type: InputType = "any"
    minimum: Finite | None = None
    maximum: Finite | None = None
    unit: Annotated[str, msgspec.Meta(max_length=40, description="CNY, %, days … (for people to read)")] = ""
    optional: Annotated[bool, msgspec.Meta(description="Absence is allowed (the condition reads it as null).")] = False
    description: Names | None = None


class RulePack(_Struct, kw_only=True):
    org: Id
    name: Names | None = None
    inputs: Annotated[
        dict[AttributePath, InputSpec],
        msgspec.Meta(description="The request attributes the rules read: type, range and unit of each."),
    ] = {}
    rules: list[Rule] = []
    case_types: list[CaseType] = []


def schema() -> dict:
    """The JSON Schema of a rule pack file, as published in `rules/schema/rules.schema.json`."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://dutyline.dev/schema/rules.schema.json",
        "title": "Dutyline rule pack",
        **msgspec.json.schema(RulePack),
    }
