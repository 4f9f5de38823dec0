"""The hypothesis strategies of the property tests, in one place: generated organisations, condition-language
text and environments, rule conditions with the events they are fired on, and arbitrary JSON-like values.

Each test module imports what it draws from; the strategies are exactly those the tests were written with (moved
here, not changed), so a failing example found before reproduces after.
"""

from __future__ import annotations

import math

from hypothesis import strategies as st

from dutyline import expressions
from dutyline.orgmodel.document import (
    Assignment,
    Catalogue,
    Department,
    Duty,
    Names,
    Organisation,
    Permission,
    Person,
    Post,
    ResourceGroup,
    ResourceType,
)

# --- organisations (tests/engines/test_agreement.py, test_properties.py) ---------------------------------------

N = Names(zh="名", en="name")
ACTIONS = ["view", "edit", "approve", "delete"]
DAYS = [f"2026-07-{d:02d}" for d in range(1, 29)]


@st.composite
def organisations(draw: st.DrawFn) -> Organisation:
    """A small valid organisation "o": resource types and groups (no cycles), duties with allows and denies at
    three levels, posts that inherit earlier posts, department heads, people with concurrent and acting (windowed,
    on `DAYS`) assignments."""
    n_resources = draw(st.integers(1, 4))
    resources = [
        ResourceType(
            id=f"r{i}", name=N, actions=draw(st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=4, unique=True))
        )
        for i in range(n_resources)
    ]
    groups = []
    for i in range(draw(st.integers(0, 2))):
        # a group may contain earlier groups, never later ones: no cycles
        pool = [r.id for r in resources] + [g.id for g in groups]
        groups.append(
            ResourceGroup(
                id=f"g{i}", name=N, members=draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
            )
        )
    targets = [r.id for r in resources] + [g.id for g in groups]

    def permissions() -> list[Permission]:
        return [
            Permission(
                resource=draw(st.sampled_from(targets)),
                actions=draw(
                    st.one_of(st.just("*"), st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=2, unique=True))
                ),
                effect=draw(st.sampled_from(["allow", "allow", "allow", "deny"])),
            )
            for _ in range(draw(st.integers(0, 2)))
        ]

    def duties(depth: int = 0) -> list[Duty]:
        return [
            Duty(
                number=str(i + 1),
                text="职责",
                permissions=permissions(),
                duties=duties(depth + 1) if depth == 0 else [],
            )
            for i in range(draw(st.integers(0, 2)))
        ]

    n_posts = draw(st.integers(1, 6))
    n_depts = draw(st.integers(1, 2))
    posts = [
        Post(
            id=f"p{i}",
            name=N,
            department=f"d{i % n_depts}",
            inherits=draw(st.lists(st.sampled_from([f"p{j}" for j in range(i)]), max_size=2, unique=True)) if i else [],
            duties=duties(),
        )
        for i in range(n_posts)
    ]
    departments = [
        Department(id=f"d{i}", name=N, head=f"p{i}" if i < n_posts and draw(st.booleans()) else None, duties=duties())
        for i in range(n_depts)
    ]
    departments = [
        d if d.head is None or posts[int(d.head[1:])].department == d.id else Department(id=d.id, name=N)
        for d in departments
    ]
    people = []
    for i in range(draw(st.integers(1, 4))):
        assignments = []
        for post in draw(st.lists(st.sampled_from([p.id for p in posts]), min_size=0, max_size=3, unique=True)):
            if draw(st.booleans()):
                start, end = sorted(draw(st.lists(st.sampled_from(DAYS), min_size=2, max_size=2, unique=True)))
                assignments.append(Assignment(post=post, kind="acting", valid_from=start, valid_to=end))
            else:
                assignments.append(Assignment(post=post, kind="concurrent"))
        people.append(Person(id=f"u{i}", name=N, assignments=assignments))
    return Organisation(
        id="o",
        name=N,
        catalogue=Catalogue(resources=resources, groups=groups),
        common_duties=duties(),
        departments=departments,
        posts=posts,
        people=people,
    )


# --- the condition language (tests/test_expressions.py) --------------------------------------------------------

# Text made of the language's own characters: most of it does not parse, and the parser must say so, not crash.
syntax_soup = st.text(alphabet="()[],.'\"\\ =!<>+-*/&|0123456789eE_abcdnotsruxy金额\n", max_size=200)

ATTRIBUTES = ["owner", "id", "department", "amount", "limit", "tags", "title", "金额", "order"]
# Any value a caller's JSON, or a Python caller, could put in an environment: huge and non-finite numbers, bytes,
# decimals, bare objects, sets, nested lists, tuples and maps.
attribute_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**400, -(10**400), float("nan"), float("inf"), 0, 0.0, -0.0])
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=4)
    | st.decimals(allow_nan=True)
    | st.builds(object)
    | st.frozensets(st.integers(), max_size=3),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.sampled_from(ATTRIBUTES) | st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=12,
)
environments = st.dictionaries(
    st.sampled_from(expressions.ROOTS),
    st.dictionaries(st.sampled_from(ATTRIBUTES), attribute_values, max_size=6) | attribute_values,
    max_size=4,
)

TOKENS = [
    "resource.owner", "subject.id", "context.amount", "context.order.金额", 'resource["tags"]', "action.name",
    "==", "!=", "<", "<=", ">", ">=", "in", "not", "and", "or", "+", "-", "*", "/", "(", ")", "[", "]", ",",
    "0", "1", "2.5", "1e3", "'x'", '"y"', "true", "false", "null",
    "len(", "lower(", "upper(", "exists(", "contains(", "startswith(", "any_of(",
]  # fmt: skip
# Up to 25 tokens of the language in any order: some parse, most do not.
token_soup = st.lists(st.sampled_from(TOKENS), max_size=25).map(" ".join)


# --- rule conditions and their events (tests/engines/test_rulehost.py) -----------------------------------------

RULE_PATHS = ["subject.a", "resource.b", "context.c", "context.d"]
RULE_CONSTANTS = [
    "null",
    "true",
    "false",
    "0",
    "1",
    "-1",
    "3",
    "2.5",
    "0.1",
    "1e-7",
    "1e20",
    '""',
    '"a"',
    '"b"',
    '"ab"',
    '"é"',
    '"10"',
    '"9"',
    '"\\""',
    '"\\\\"',
    '"\\n"',
    '"中"',
]
RULE_VALUES = [
    None,
    True,
    False,
    0,
    1,
    -1,
    3,
    0.0,
    -0.0,
    2.5,
    0.1,
    0.2,
    0.3,
    1e-7,
    1e20,
    1e308,
    math.nan,
    "",
    "a",
    "b",
    "ab",
    "é",
    "10",
    "9",
    '"',
    "\\",
    "\n",
    "中",
    [],
    [1],
    ["a"],
    [1, 2],
    {},
    {"x": 1},
]

rule_operands = st.recursive(
    st.sampled_from(RULE_PATHS + RULE_CONSTANTS),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda v: f"(-{v})"),
    ),
    max_leaves=4,
)
rule_comparisons = st.one_of(
    st.tuples(rule_operands, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), rule_operands).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    ),
    st.tuples(rule_operands, st.sampled_from(["in", "not in"]), st.lists(rule_operands, max_size=3)).map(
        lambda t: f"({t[0]} {t[1]} [{', '.join(t[2])}])"
    ),
    st.sampled_from(RULE_PATHS).map(lambda p: f"exists({p})"),
    st.tuples(st.sampled_from(RULE_PATHS), st.sampled_from(['""', '"a"', '"é"', '"\\\\"'])).map(
        lambda t: f"startswith({t[0]}, {t[1]})"
    ),
    rule_operands,
)
# A condition's text over `RULE_PATHS`: comparisons, membership, functions, joined by and / or / not.
rule_conditions = st.recursive(
    rule_comparisons,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda c: f"(not {c})"),
        st.tuples(
            inner, st.sampled_from(["==", "!="]), st.sampled_from(["true", "false", "null", "1", *RULE_PATHS])
        ).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
    ),
    max_leaves=5,
)
# An event: some of `RULE_PATHS` (path → value), each absent or one of `RULE_VALUES`.
rule_events = st.fixed_dictionaries({}, optional={p: st.sampled_from(RULE_VALUES) for p in RULE_PATHS})


# --- JSON-like values a request may carry (tests/engines/test_fail_closed_rules.py) ----------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6),
    max_leaves=60,
)
