"""The rule backends: durable_rules behind one lock, one session per ruleset, no threads, and the evaluator's
semantics; the pure-Python reference backend with the same semantics. Each test runs on both unless it is about
durable_rules itself (pinned with DURABLE_ONLY)."""

from __future__ import annotations

import math
import random
import re
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dutyline.engines.rulehost.host as engine_host
from dutyline.engines.rulehost import (
    NotExpressible,
    ReferenceHost,
    RuleBackend,
    RuleHost,
    RuleHostError,
    check_condition,
    condition_json,
    new_backend,
)
from dutyline.expressions import ExpressionError, Negate, Node, parse
from tests.strategies import rule_conditions, rule_events

LIMIT = {"$gt": {"amount": {"$m": "limit"}}}  # the hand-written limit rule of engines/rules.py


def flat_key(path: tuple[str, ...]) -> str:
    return "__".join(path)


def compiled(text: str) -> dict[str, Any]:
    return condition_json(parse(text), flat_key)


def flat(env: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {flat_key((root, name)): value for root, values in env.items() for name, value in values.items()}


DURABLE_ONLY = pytest.mark.parametrize("backend_name", ["durable_rules"])  # about durable_rules itself


@pytest.fixture
def host(backend_name: str) -> Iterator[RuleBackend]:
    rules = new_backend(backend_name)
    yield rules
    rules.close()


# What each construct means: the expression, the attributes, whether it fires (the evaluator agrees, below).
CONSTRUCTS = [
    ("context.amount > resource.limit", {"context": {"amount": 6}, "resource": {"limit": 5}}, True),
    ("context.amount > resource.limit", {"context": {"amount": 5}, "resource": {"limit": 5}}, False),
    ("context.amount > resource.limit", {"context": {"amount": 6}}, False),  # a missing limit orders nothing
    ("context.amount > resource.limit", {"context": {"amount": 6}, "resource": {"limit": "5"}}, False),
    ("context.amount <= 50000", {"context": {"amount": 50000}}, True),
    ("context.amount >= 0.000001", {"context": {"amount": 1e-7}}, False),
    ("context.amount < 1e20", {"context": {"amount": 1e19}}, True),
    ("resource.owner == subject.id", {"resource": {"owner": "u7"}, "subject": {"id": "u7"}}, True),
    ("resource.owner == subject.id", {"resource": {"owner": "u7"}, "subject": {"id": "u8"}}, False),
    ("resource.owner == subject.id", {}, True),  # null == null
    ("resource.owner != subject.id", {"resource": {"owner": "u7"}}, True),
    ("context.n == 1", {"context": {"n": 1.0}}, True),
    ("context.n == 1", {"context": {"n": True}}, False),
    ("context.n == 5", {"context": {"n": "5"}}, False),
    ("context.flag == true", {"context": {"flag": True}}, True),
    ("context.flag == true", {"context": {"flag": 1}}, False),
    ("context.x == null", {"context": {}}, True),
    ("context.x == null", {"context": {"x": 0}}, False),
    ("context.title < 'b'", {"context": {"title": "abc"}}, True),
    ("context.title < 'b'", {"context": {"title": 1}}, False),
    ("context.title > '9'", {"context": {"title": "10"}}, False),  # text order, not numbers
    ("context.title < 'A'", {"context": {"title": '"quoted"'}}, True),  # code point order despite JSON escapes
    ("subject.department in ['Legal', 'Sales']", {"subject": {"department": "Sales"}}, True),
    ("subject.department in ['Legal', 'Sales']", {"subject": {"department": "IT"}}, False),
    ("subject.department not in ['Legal', 'Sales']", {"subject": {"department": "IT"}}, True),
    ("subject.department not in ['Legal', 'Sales']", {"subject": {}}, True),
    ("context.a in [resource.b, 3]", {"context": {"a": "x"}, "resource": {"b": "x"}}, True),
    ("exists(resource.owner)", {"resource": {"owner": ""}}, True),
    ("exists(resource.owner)", {"resource": {}}, False),
    ("not exists(resource.owner)", {"resource": {}}, True),
    ("not (context.amount > 5)", {"context": {}}, True),
    ("not (context.amount > 5)", {"context": {"amount": 6}}, False),
    ("context.a > 1 and context.b > 1", {"context": {"a": 2, "b": 2}}, True),
    ("context.a > 1 and context.b > 1", {"context": {"a": 2, "b": 0}}, False),
    ("context.a > 1 or context.b > 1", {"context": {"b": 2}}, True),
    ("not (context.a > 1 or context.b == 'x')", {"context": {"a": 0, "b": "y"}}, True),
    ("context.amount <= 2 * resource.limit", {"context": {"amount": 10}, "resource": {"limit": 5}}, True),
    ("context.amount <= 2 * resource.limit", {"context": {"amount": 11}, "resource": {"limit": 5}}, False),
    ("context.amount > resource.limit + 10", {"context": {"amount": 12}}, False),  # null arithmetic
    ("context.a / context.b > 1", {"context": {"a": 3, "b": 0}}, False),  # division by zero is null
    ("context.a / context.b == null", {"context": {"a": 3, "b": 0}}, True),
    ("context.a / context.b < 10", {"context": {"a": 7, "b": 2}}, True),
    ("context.a * 10 > 1", {"context": {"a": 1e308}}, False),  # overflow is null
    ("context.a * 2 > 10", {"context": {"a": 6}}, True),
    ("context.a - context.b > context.c * 2", {"context": {"a": 10, "b": 1, "c": 4}}, True),
    ("-context.a > 1", {"context": {"a": -2}}, True),
    ("context.a", {"context": {"a": []}}, False),
    ("context.a", {"context": {"a": [0]}}, True),
    ("context.a", {"context": {"a": 0.0}}, False),
    ("context.a * 2", {"context": {"a": 0.5}}, True),
    ("(context.a > 1) == true", {"context": {"a": 2}}, True),
    ("(context.a > 1) != (context.b > 1)", {"context": {"a": 2, "b": 2}}, False),
    ("startswith(context.title, '草稿')", {"context": {"title": "草稿 v2"}}, True),
    ("startswith(context.title, '草稿')", {"context": {"title": "终稿"}}, False),
    ("not startswith(context.title, 'ab')", {"context": {"title": 7}}, True),
    ("contains(['a', 'b'], context.x)", {"context": {"x": "b"}}, True),
    ("context.tags == ['a', 'b']", {"context": {"tags": ["a", "b"]}}, True),
    ("context.tags == resource.tags", {"context": {"tags": {"k": [1]}}, "resource": {"tags": {"k": [1.0]}}}, True),
    ("context.x == context.y", {"context": {"x": math.nan, "y": math.nan}}, False),
    ("resource['owner-id'] == subject.id", {"resource": {"owner-id": "u1"}, "subject": {"id": "u1"}}, True),
    (
        "context.金额 <= 50000 and resource.部门 == subject.部门",
        {"context": {"金额": 10}, "resource": {"部门": "销售"}, "subject": {"部门": "销售"}},
        True,
    ),
    ("1 < 2 or context.x", {}, True),
    ("false and context.x", {}, False),
]


@pytest.mark.parametrize(("text", "env", "fires"), CONSTRUCTS)
def test_each_construct_fires_exactly_when_the_evaluator_says_so(
    host: RuleBackend, text: str, env: dict, fires: bool
) -> None:
    assert parse(text).evaluate(env) is fires, "the table itself agrees with the evaluator"
    host.load({"rule": compiled(text)})
    assert host.fires("rule", flat(env)) is fires


@pytest.mark.parametrize(
    ("text", "construct"),
    [
        ("len(resource.name) > 3", "len()"),
        ("lower(subject.department) == 'sales'", "lower()"),
        ("upper(subject.department) == 'SALES'", "upper()"),
        ("any_of(subject.roles, ['auditor'])", "any_of()"),
        ("subject.id in resource.approvers", "'in' with an attribute"),
        ("'urgent' in resource.title", "'in' with an attribute"),
        ("resource.title in 'urgent, normal'", "'in' with a text"),
        ("contains(resource.approvers, subject.id)", "'in' with an attribute"),
        ("startswith(resource.title, subject.prefix)", "startswith()"),
    ],
)
def test_what_durable_rules_cannot_express_is_refused_by_name(text: str, construct: str) -> None:
    with pytest.raises(NotExpressible) as caught:
        compiled(text)
    assert construct in str(caught.value)
    assert isinstance(caught.value, ExpressionError), "validation reports it like any other expression error"


def test_an_unknown_name_is_a_key_error(host: RuleBackend) -> None:
    host.load({"limit": LIMIT})
    with pytest.raises(KeyError):
        host.fires("nope", {})


def test_a_hand_written_limit_rule_fires_above_the_limit_only(host: RuleBackend) -> None:
    host.load({"limit": LIMIT})
    assert host.fires("limit", {"amount": 6.0, "limit": 5.0})
    assert not host.fires("limit", {"amount": 5.0, "limit": 5.0})
    assert not host.fires("limit", {"amount": 6.0}), "a missing reference does not match (durable_rules says it does)"
    assert host.fires("limit", {"amount": 2e-7, "limit": 1e-7}), "numbers durable_rules cannot read in exponent form"
    assert host.fired([("limit", {"amount": 1, "limit": 0}), ("limit", {"amount": 0, "limit": 1})]) == [True, False]


@pytest.mark.parametrize(
    ("condition", "complaint"),
    [
        ({"$nex": {"amount": 1}}, "$nex"),
        ({"$gt": {"amount": {"$add": {"$l": 1, "$r": 2}}}}, "two constants"),
        ({"$mt": {"name": "a.*"}}, "$mt"),
        ({"a.b": 1}, "a.b"),
        ({"sid": "0"}, "sid"),
        ({"x#q": 1}, "x#q"),
        ({"$and": []}, "$and"),
    ],
)
def test_unsafe_or_malformed_conditions_are_refused_and_nothing_changes(
    host: RuleBackend, condition: dict, complaint: str
) -> None:
    host.load({"limit": LIMIT})
    with pytest.raises(ValueError, match="rule 'bad'") as caught:
        host.load({"limit": {"$lt": {"amount": 0}}, "bad": condition})
    assert complaint in str(caught.value)
    assert host.names() == {"limit"} and host.fires("limit", {"amount": 6, "limit": 5}), "the old set still answers"


def test_load_does_not_mutate_what_it_is_given(host: RuleBackend) -> None:
    condition = compiled("context.a > resource.b")
    before = repr(condition)
    host.load({"rule": condition})
    assert repr(condition) == before


def test_a_reload_replaces_the_set_and_removed_names_stop_existing(host: RuleBackend) -> None:
    host.load({"over": LIMIT, "vip": compiled("subject.level >= 3")})
    host.load({"over": {"$lt": {"amount": {"$m": "limit"}}}, "owner": compiled("resource.owner == subject.id")})
    assert host.names() == {"over", "owner"}
    assert host.fires("over", {"amount": 4, "limit": 5}), "the new condition answers"
    assert not host.fires("over", {"amount": 6, "limit": 5})
    with pytest.raises(KeyError):
        host.fires("vip", {"subject__level": 5})
    host.load({})
    with pytest.raises(KeyError):
        host.fires("over", {})


@DURABLE_ONLY
def test_an_unchanged_condition_keeps_its_registration_and_equal_ones_share(host: RuleHost) -> None:
    host.load({"a": LIMIT, "b": compiled("context.x == 1")})
    a, b = host.registration("a"), host.registration("b")
    host.load({"a": dict(LIMIT), "b": compiled("context.x == 2"), "c": {"$gt": {"amount": {"$m": "limit"}}}})
    assert host.registration("a") == a, "same content, same ruleset"
    assert host.registration("b") != b
    assert host.registration("c") == a, "identical conditions share one ruleset"


def test_rules_that_never_fired_can_be_unloaded(host: RuleBackend) -> None:
    # durable_rules frees uninitialised pointers when deleting a session that never ran an action: the priming
    # rule makes every session run one first. Unloading rules whose sessions only ever saw misses is the case.
    for generation in range(20):
        rules = {f"r{i}": compiled(f"context.x == {generation * 100 + i}") for i in range(20)}
        host.load(rules)
        assert not any(host.fired((name, {"context__x": -1}) for name in rules))


def test_many_threads_get_right_answers(host: RuleBackend) -> None:
    other = type(host)()  # a second durable_rules host shares the engine, so it must share the lock
    try:
        host.load({"limit": LIMIT, "owner": compiled("resource.owner == subject.id")})
        other.load({"limit": LIMIT})
        wrong: list[str] = []

        def worker(seed: int) -> None:
            rng = random.Random(seed)
            rules = host if seed % 2 else other
            try:
                for _ in range(5000):
                    amount, limit = rng.randint(0, 10), rng.randint(0, 10)
                    if rules.fires("limit", {"amount": amount, "limit": limit}) != (amount > limit):
                        wrong.append(f"limit {amount} {limit}")
                    if rules is host and rng.random() < 0.2:
                        owner = rng.choice(["u1", "u2"])
                        if host.fires("owner", {"resource__owner": owner, "subject__id": "u1"}) != (owner == "u1"):
                            wrong.append(f"owner {owner}")
            except Exception as error:
                wrong.append(repr(error))

        threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert wrong == []
    finally:
        other.close()


def test_far_more_calls_than_the_session_cap_on_one_ruleset(host: RuleBackend) -> None:
    host.load({"limit": LIMIT})
    answers = [host.fires("limit", {"amount": i % 3, "limit": 1}) for i in range(20_000)]
    assert answers == [i % 3 > 1 for i in range(20_000)]


def test_hundreds_of_rulesets_loaded_and_reloaded(host: RuleBackend) -> None:
    for generation in range(5):
        host.load({f"org.rule-{i}": compiled(f"context.amount > {i + generation}") for i in range(300)})
        for i in range(0, 300, 13):
            assert host.fires(f"org.rule-{i}", {"context__amount": i + generation + 1})
            assert not host.fires(f"org.rule-{i}", {"context__amount": i + generation})
    assert len(host.names()) == 300


def test_a_long_run_gives_no_wrong_answer_and_starts_no_thread(host: RuleBackend) -> None:
    before = set(threading.enumerate())
    host.load({"limit": LIMIT})
    rng = random.Random(7)
    wrong = 0
    for _ in range(100_000):
        amount, limit = rng.random(), rng.random()
        wrong += host.fires("limit", {"amount": amount, "limit": limit}) != (amount > limit)
    assert wrong == 0
    assert set(threading.enumerate()) == before, "durable_rules' timer threads are never started"
    assert "durable.engine" not in sys.modules, "the Host with its dispatcher is never even imported"


def test_a_long_disjunction_is_split_across_rules_of_one_ruleset(host: RuleBackend) -> None:
    text = " or ".join(f"(context.a{i} < context.b{i} and not (context.c{i} >= 'm'))" for i in range(8))
    expression = parse(text)
    host.load({"wide": condition_json(expression, flat_key)})
    rng = random.Random(3)
    for _ in range(2000):
        env = {"context": {f"{x}{i}": rng.choice([None, 1, 2, "a", "z"]) for i in range(8) for x in "abc"}}
        assert host.fires("wide", flat(env)) is expression.evaluate(env)


def test_conditions_too_large_for_durable_rules_are_refused_before_loading(host: RuleBackend) -> None:
    with pytest.raises(NotExpressible, match="groups of"):
        compiled(" and ".join(f"(context.a{i} < context.b{i} or context.c{i} == null)" for i in range(8)))
    with pytest.raises(NotExpressible, match="tests"):
        compiled("context.x in [" + ", ".join("1" for _ in range(450)) + "]")
    outside_windows = {"$and": [{"$or": [{"$neq": {"day": "mon"}}, {"$lt": {"minute": 540}}]} for _ in range(16)]}
    with pytest.raises(ValueError, match="at most 15"):
        check_condition(outside_windows)
    check_condition(LIMIT)
    host.load({"limit": LIMIT})
    with pytest.raises(ValueError, match="rule 'windows'"):
        host.load({"limit": LIMIT, "windows": outside_windows})
    assert host.names() == {"limit"}


@DURABLE_ONLY
def test_decisions_go_on_while_a_reload_registers_rules(host: RuleHost) -> None:
    host.load({"limit": LIMIT})
    rules = {f"r{i}": compiled(f"context.amount > {i}") for i in range(200)}
    gaps: list[float] = []
    stop = threading.Event()

    def decide() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            host.fires("limit", {"amount": 2, "limit": 1})
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    worker = threading.Thread(target=decide)
    worker.start()
    started = time.perf_counter()
    host.load({"limit": LIMIT, **rules})
    took = time.perf_counter() - started
    stop.set()
    worker.join()
    assert len(gaps) > 100 and max(gaps) < took / 4, f"a decision waited {max(gaps):.3f} s of a {took:.3f} s reload"


@DURABLE_ONLY
def test_a_condition_loaded_again_is_not_prepared_again(host: RuleHost, monkeypatch: pytest.MonkeyPatch) -> None:
    conditions = {"limit": LIMIT, "owner": compiled("resource.owner == subject.id")}
    host.load(conditions)
    prepared: list[object] = []
    real = engine_host.prepare
    monkeypatch.setattr(engine_host, "prepare", lambda condition: prepared.append(condition) or real(condition))
    host.load({**conditions, "new": compiled("context.x == 1")})
    assert len(prepared) == 1, "only the new condition"


@DURABLE_ONLY
def test_an_action_for_another_event_is_an_error_not_an_answer(host: RuleHost, monkeypatch: pytest.MonkeyPatch) -> None:
    host.load({"limit": LIMIT})
    real = engine_host._engine

    class Foreign:
        """The engine, except that the action it hands back belongs to some other event."""

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        @staticmethod
        def start_action_for_state(handle: int, state: int) -> tuple[str, str]:
            fact, _ = real.start_action_for_state(handle, state)
            return fact, '{"r":{"m":{"id":-5,"sid":"0"}}}'

    monkeypatch.setattr(engine_host, "_engine", Foreign())
    with pytest.raises(RuleHostError, match="no action for it"):
        host.fires("limit", {"amount": 6, "limit": 5})
    monkeypatch.setattr(engine_host, "_engine", real)
    assert host.fires("limit", {"amount": 6, "limit": 5}), "the session is usable afterwards"
    assert not host.fires("limit", {"amount": 4, "limit": 5})


def test_values_durable_rules_would_get_wrong(host: RuleBackend) -> None:
    host.load(
        {
            "equal": compiled("context.x == context.y"),
            "before": compiled("context.x < 'y'"),
            "long": compiled("context.x == 'x'"),
        }
    )
    big = 2**53
    assert not host.fires("equal", {"context__x": big + 1, "context__y": big}), "integer equality stays exact"
    assert host.fires("equal", {"context__x": big + 1, "context__y": big + 1})
    long_text = "x" * 70_000  # durable_rules compares texts modulo 65,536 bytes
    assert not host.fires("equal", {"context__x": long_text, "context__y": long_text[:4464]})
    assert not host.fires("equal", {"context__x": long_text, "context__y": long_text + "y"})
    assert host.fires("equal", {"context__x": long_text, "context__y": "x" * 70_000})
    assert host.fires("before", {"context__x": long_text})
    assert not host.fires("long", {"context__x": long_text})
    assert parse("context.x < 'y'").evaluate({"context": {"x": "\ud800"}}) is False
    assert not host.fires("before", {"context__x": "\ud800"}), "a lone surrogate is ordered like any other text"
    assert host.fires("equal", {"context__x": "\ud800", "context__y": "\ud800"})


def test_documented_differences_from_the_evaluator(host: RuleBackend) -> None:
    # Values no JSON request carries; here so that a change of behaviour is noticed, not as a promise.
    host.load(
        {
            "tiny": compiled("1 / context.x == 0"),
            "tie": compiled("context.x > context.y"),
            "minus": compiled("-context.x"),
        }
    )
    assert parse("-context.x").evaluate({"context": {"x": math.nan}})
    assert not host.fires("minus", {"context__x": math.nan}), "unary minus of NaN is null here, NaN there"
    assert parse("1 / context.x == 0").evaluate({"context": {"x": math.inf}})
    assert not host.fires("tiny", {"context__x": math.inf}), "infinity is no finite operand of arithmetic"
    assert parse("context.x > context.y").evaluate({"context": {"x": 2**53 + 1, "y": 2**53}})
    assert not host.fires("tie", {"context__x": 2**53 + 1, "context__y": 2**53}), "ordered as doubles"


# The specification: for random expressions and events, the rule fires exactly when the evaluator says true.


@pytest.fixture(scope="module")
def shared_host(backend_name: str) -> Iterator[RuleBackend]:
    rules = new_backend(backend_name)
    yield rules
    rules.close()


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=rule_conditions, samples=st.lists(rule_events, min_size=1, max_size=8))
def test_a_compiled_rule_fires_exactly_when_the_expression_holds(
    shared_host: RuleBackend, text: str, samples: list
) -> None:
    expression = parse(text)
    try:
        condition = condition_json(expression, flat_key)
    except NotExpressible:
        return
    shared_host.load({"property": condition})
    negates = _has_negation(expression.tree)
    repeats = _repeats_a_path(text)
    for sample in samples:
        if (negates or repeats) and any(isinstance(value, float) and math.isnan(value) for value in sample.values()):
            # documented: -NaN is null here, NaN in the evaluator; and a NaN compared with itself (one path on both
            # sides, one field of the event) is equal here, as both backends read it. NaN never reaches a rule:
            # every request body and stored document refuses it.
            continue
        env: dict[str, dict[str, Any]] = {"subject": {}, "resource": {}, "context": {}}
        for path, value in sample.items():
            root, name = path.split(".")
            env[root][name] = value
        assert shared_host.fires("property", flat(env)) is expression.evaluate(env), (text, sample)


def _repeats_a_path(text: str) -> bool:
    paths = re.findall(r"\b(?:subject|resource|context)\.\w+", text)
    return len(paths) != len(set(paths))


def _has_negation(node: Node) -> bool:
    if isinstance(node, Negate):
        return True
    children = [value for value in (getattr(node, slot) for slot in node.__slots__) if value is not None]
    stack = list(children)
    while stack:
        item = stack.pop()
        if isinstance(item, tuple):
            stack.extend(item)
        elif isinstance(item, Negate):
            return True
        elif hasattr(item, "__slots__") and not isinstance(item, str):
            stack.extend(getattr(item, slot) for slot in item.__slots__)
    return False


# The two backends agree: for random conditions (compiled and hand-written) and random facts, durable_rules and
# the reference answer the same, and refuse the same.

numbers = st.one_of(st.integers(-10, 10), st.floats(allow_nan=False), st.sampled_from([0.0, -0.0, 1e-7, 2**53 + 1]))
texts = st.sampled_from(["", "a", "b", "mon", "tue", "u1", "u2"])
dates = st.sampled_from(["2026-10-01", "2026-10-02", "", "mon"])
HAND_WRITTEN = [
    {"$gt": {"amount": {"$m": "limit"}}},  # the rule kinds of engines/rules.py
    {"$gte": {"streak": {"$m": "needed"}}},
    {"other": {"$m": "subject"}},
    {"ok": 0},
    {"$gt": {"risk": {"$m": "tolerance"}}},
    {"$and": [{"$or": [{"$neq": {"day": "mon"}}, {"$lt": {"minute": 540}}, {"$gte": {"minute": 1020}}]}]},
    {"$or": [{"$and": [{"$or": [{"$neq": {"day": "mon"}}, {"$lt": {"minute": 540}}]}]}, {"date": "2026-10-01"}]},
    {"$lt": {"amount": {"$mul": {"$l": {"$m": "limit"}, "$r": 2}}}},
    {"$gt": {"amount": {"$div": {"$l": {"$m": "limit"}, "$r": {"$m": "risk"}}}}},
]
# Each field of the kind engines/rules.py sends it: durable_rules coerces across kinds ("5" == 5), the reference
# does not, and no rule of ours compares across kinds.
RAW_FIELDS = {
    name: (dates if name == "date" else texts) if name in ("other", "subject", "day", "date") else numbers
    for name in [
        "amount",
        "limit",
        "streak",
        "needed",
        "other",
        "subject",
        "ok",
        "risk",
        "tolerance",
        "day",
        "minute",
        "date",
    ]
}


@pytest.fixture(scope="module")
def both() -> Iterator[tuple[RuleHost, ReferenceHost]]:
    engine, reference = RuleHost(), ReferenceHost()
    yield engine, reference
    engine.close()
    reference.close()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=rule_conditions, samples=st.lists(rule_events, min_size=1, max_size=6))
def test_the_two_backends_agree_on_random_conditions_and_facts(
    both: tuple[RuleHost, ReferenceHost], text: str, samples: list
) -> None:
    try:
        condition = condition_json(parse(text), flat_key)
    except NotExpressible:
        return
    engine, reference = both
    engine.load({"property": condition})
    reference.load({"property": condition})
    for sample in samples:
        event = {path.replace(".", "__"): value for path, value in sample.items()}
        assert engine.fires("property", event) is reference.fires("property", event), (text, sample)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    condition=st.sampled_from(HAND_WRITTEN),
    samples=st.lists(st.fixed_dictionaries({}, optional=RAW_FIELDS), min_size=1, max_size=6),
)
def test_the_two_backends_agree_on_hand_written_rules_and_random_facts(
    both: tuple[RuleHost, ReferenceHost], condition: dict, samples: list
) -> None:
    engine, reference = both
    engine.load({"rule": condition})
    reference.load({"rule": condition})
    for event in samples:
        assert engine.fires("rule", event) is reference.fires("rule", event), (condition, event)


def test_dutyline_rules_backend_chooses_the_backend_and_a_wrong_name_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from dutyline.settings import Settings

    monkeypatch.setenv("DUTYLINE_RULES_BACKEND", "reference")
    assert isinstance(new_backend(), ReferenceHost)
    assert Settings.from_env().rules_backend == "reference"
    monkeypatch.setenv("DUTYLINE_RULES_BACKEND", "durable_rules")
    chosen = new_backend()
    assert isinstance(chosen, RuleHost)
    chosen.close()
    monkeypatch.delenv("DUTYLINE_RULES_BACKEND")
    assert Settings.from_env().rules_backend == "durable_rules", "durable_rules unless told otherwise"
    monkeypatch.setenv("DUTYLINE_RULES_BACKEND", "drools")
    with pytest.raises(ValueError, match="DUTYLINE_RULES_BACKEND"):
        new_backend()
