"""The condition language of permissions and rules (docs/expressions.md).

Speed, measured with timeit on the development machine (CPython 3.11.7, one million calls of `evaluate`):
`resource.owner == subject.id` 0.27 µs; `context.amount <= 50000` 0.29 µs;
`subject.department in ["Legal", "Sales"]` 0.30 µs;
`resource.owner == subject.id and context.amount > 2 * resource.limit` 0.9 µs.
Not asserted: machines differ. Parsing and compiling happen once, when a policy is loaded.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dutyline import expressions
from dutyline.errors import Invalid
from dutyline.expressions import MAX_DEPTH, MAX_LENGTH, ExpressionError, parse
from tests.strategies import environments, syntax_soup, token_soup

ENV = {
    "subject": {"id": "u7", "department": "Sales", "level": 3, "roles": ["clerk", "auditor"], "部门": "销售部"},
    "resource": {
        "owner": "u7",
        "department": "Sales",
        "limit": 20000,
        "ownerID": "u9",
        "tags": ["public", "q3"],
        "title": "Quarterly Report",
        "empty": "",
        "nothing": None,
        "in": "a key that looks like a keyword",
    },
    "action": {"name": "edit"},
    "context": {"amount": 30000, "rate": 2.5, "金额": 12000, "order": {"amount": 7, "金额": 88}, "ids": [101, 102]},
}


def holds(text: str, env: dict | None = None) -> bool:
    return parse(text).evaluate(ENV if env is None else env)


def error(text: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    return caught.value


# The examples of docs/expressions.md


def test_the_owner_of_a_record_may_edit_it_and_nobody_else() -> None:
    owner = parse("resource.owner == subject.id")
    assert owner.evaluate(ENV)
    assert not owner.evaluate({**ENV, "subject": {"id": "u8"}})


def test_same_department() -> None:
    assert holds("resource.department == subject.department")
    assert not holds("resource.department == subject.department", {**ENV, "subject": {"department": "Legal"}})


def test_amount_within_a_limit() -> None:
    assert holds("context.amount <= 50000")
    assert not holds("context.amount <= 50000", {"context": {"amount": 50001}})
    assert holds("context.amount > resource.limit")


def test_membership_in_a_written_list() -> None:
    assert holds('subject.department in ["Legal", "Sales"]')
    assert not holds('subject.department in ["Legal", "Audit"]')
    assert holds('subject.department not in ["Legal", "Audit"]')


# Precedence: or < and < not < comparisons < + - < * / < unary -


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true or true and false", True),  # true or (true and false)
        ("(true or true) and false", False),
        ("not false and false", False),  # (not false) and false
        ("not (false and false)", True),
        ("not 1 == 2", True),  # not (1 == 2)
        ("not resource.owner == subject.id", False),
        ("1 + 2 * 3 == 7", True),
        ("(1 + 2) * 3 == 9", True),
        ("10 - 4 - 3 == 3", True),  # left to right
        ("12 / 2 / 3 == 2", True),
        ("10 - 2 + 1 == 9", True),
        ("-2 * -3 == 6", True),
        ("- (1 + 2) == -3", True),
        ("context.amount > 2 * resource.limit - 9999", False),  # 30000 > (2 * 20000) - 9999
        ("1 + 1 == 2 and 2 > 1 or false", True),
        ("false or not true or 1 in [1]", True),
    ],
)
def test_precedence(text: str, expected: bool) -> None:
    assert holds(text) is expected


def test_and_and_or_chains_stay_flat_so_long_alternatives_are_not_too_deep() -> None:
    many = " or ".join(f'subject.id == "u{i}"' for i in range(80))
    assert holds(many)
    assert isinstance(parse(many).tree, expressions.Logical)


def test_comparisons_cannot_be_chained() -> None:
    assert "cannot be chained" in error("1 < context.amount < 3").message


# Every operator


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 == 1", True),
        ("1 == 1.0", True),
        ("1 != 2", True),
        ("1 != 1", False),
        ("2 < 3", True),
        ("3 < 3", False),
        ("3 <= 3", True),
        ("4 > 3", True),
        ("3 > 3", False),
        ("3 >= 3", True),
        ("2.5 >= 2", True),
        ("'apple' < 'banana'", True),
        ("'b' >= 'a'", True),
        ("'q3' in resource.tags", True),
        ("'q4' in resource.tags", False),
        ("'q4' not in resource.tags", True),
        ("'Report' in resource.title", True),  # substring of a string
        ("'report' in resource.title", False),
        ("'report' not in resource.title", True),
        ("[1, 2] == [1, 2]", True),
        ("[1, 2] == [2, 1]", False),
        ("[1, [2, 3]] in [[1, [2, 3]]]", True),
        ("context.order == context.order", True),
        ("3 + 4 == 7", True),
        ("3 - 4 == -1", True),
        ("3 * 4 == 12", True),
        ("7 / 2 == 3.5", True),
        ("context.rate * 2 == 5", True),
        ("not true", False),
        ("not null", True),
        ("true and false", False),
        ("true or false", True),
        ("1 and 'x' and [0]", True),  # truthiness
        ("0 or '' or [] or null", False),
    ],
)
def test_every_operator(text: str, expected: bool) -> None:
    assert holds(text) is expected


# Literals


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1e3 == 1000", True),
        ("1E-2 == 0.01", True),
        ("-2.5 < -2", True),
        ("007 == 7", True),
        (r'"say \"hi\"" == ' + "'say \"hi\"'", True),
        (r"'it\'s' == " + '"it\'s"', True),
        (r'"back\\slash" == ' + "'back\\\\slash'", True),
        (r'len("a\nb") == 3', True),
        ("null == null", True),
        ("true == true", True),
        ("[] == []", True),
        ("len([1, 'two', [3], null]) == 4", True),
    ],
)
def test_literals(text: str, expected: bool) -> None:
    assert holds(text) is expected


def test_a_list_may_hold_attribute_paths() -> None:
    assert holds("subject.id in [resource.owner, resource.ownerID]")
    assert not holds("subject.id in [resource.ownerID, resource.nothing]")


# Null-safety and mismatched types: never an error, never a surprise grant


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("resource.missing == null", True),
        ("resource.nothing == null", True),
        ("resource.missing == resource.nothing", True),
        ("resource.missing != null", False),
        ("resource.missing == 'x'", False),
        ("resource.missing != 'x'", True),
        ("resource.missing < 1", False),
        ("resource.missing >= 1", False),
        ("1 > resource.missing", False),
        ("null <= null", False),
        ("'x' in resource.missing", False),
        ("'x' not in resource.missing", False),  # no list to be absent from: false, like the ordering comparisons
        ("not ('x' in resource.missing)", True),
        ("resource.missing in ['a', null]", True),
        ("resource.missing + 1 == null", True),
        ("-resource.missing == null", True),
        ("context.amount / 0 == null", True),
        ("context.amount / 0.0 == null", True),
        ("resource.owner.name == null", True),  # a path through a string: missing
        ("resource.deep.deeper.deepest == null", True),
        ("context.order.missing.x == null", True),
        ("not resource.missing", True),
        ("resource.missing and true", False),
        ("len(resource.missing) == null", True),
        ("lower(resource.missing) == null", True),
    ],
)
def test_missing_attributes_are_null_and_null_is_safe(text: str, expected: bool) -> None:
    assert holds(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'101' == 101", False),  # callers normalise ids: a string id never equals a numeric one
        ("'101' != 101", True),
        ("101 in ['101']", False),
        ("'101' in context.ids", False),
        ("101 in context.ids", True),
        ("'10' < 9", False),
        ("9 < '10'", False),
        ("'10' < '9'", True),  # strings order as strings, character by character
        ("true == 1", False),  # a bool is not a number
        ("false == 0", False),
        ("1 in [true]", False),
        ("true < 2", False),
        ("true + 1 == null", True),
        ("'a' + 'b' == null", True),  # arithmetic is for numbers only
        ("'a' * 3 == null", True),
        ("[1] + [2] == null", True),
        ("-'a' == null", True),
        ("[1] < [2]", False),
        ("1 in 1", False),
        ("1 in 'a1'", False),
        ("'a' in context.order", False),  # a map is neither a list nor a string
        ("[1] == 1", False),
    ],
)
def test_mismatched_types_are_false_not_errors(text: str, expected: bool) -> None:
    assert holds(text) is expected


def test_a_number_too_large_for_a_float_gives_null_not_an_overflow() -> None:
    env = {"context": {"huge": 10**400, "big": 1e308}}
    assert holds("context.huge * 1.5 == null", env)
    assert holds("context.huge / 3 == null", env)
    assert holds("context.big * 10 == null", env)  # infinity is not a number either
    assert holds("context.huge > 1e308", env)  # comparing is exact and fine


def test_cyclic_values_do_not_recurse_forever() -> None:
    loop: list = []
    loop.append(loop)
    other: list = []
    other.append(other)
    env = {"resource": {"a": loop, "b": other}}
    assert holds("resource.a == resource.a", env)
    assert not holds("resource.a == resource.b", env)
    assert not holds("resource.a in resource.b", env)


def test_number_subclasses_with_odd_comparisons_still_answer_a_bool() -> None:
    class Float(float):  # like numpy.float64, whose < gives a numpy bool
        def __lt__(self, other: object) -> object:
            return "yes"

    assert parse("context.x < 2").evaluate({"context": {"x": Float(1.0)}}) is True


def test_evaluate_always_answers_a_bool() -> None:
    for text in ["resource.owner", "context.amount * 2", "resource.tags", "len(resource.title)", "null"]:
        assert parse(text).evaluate(ENV) in (True, False)
        assert type(parse(text).evaluate(ENV)) is bool


# Attribute names


def test_chinese_attribute_names_by_dot_and_by_bracket() -> None:
    assert holds("subject.部门 == '销售部'")
    assert holds("context.金额 < 50000")
    assert holds('context["金额"] == 12000')
    assert holds("context.order.金额 == 88")
    assert holds('context.order["金额"] > context.order.amount')
    assert parse("context.金额 > 1").paths() == {("context", "金额")}


def test_bracket_access_reaches_names_a_dot_cannot() -> None:
    env = {"resource": {"owner-id": "u1", "ownerID": "u1", "a b": 1}, "subject": {"id": "u1"}}
    assert holds('resource["owner-id"] == subject.id', env)
    assert holds("resource['ownerID'] == subject['id']", env)
    assert holds('resource["a b"] == 1', env)


def test_nested_maps_are_reached_with_more_segments() -> None:
    assert holds("context.order.amount == 7")


def test_keyword_and_function_names_are_ordinary_attribute_names_after_a_dot() -> None:
    assert holds("resource.in == 'a key that looks like a keyword'")
    assert holds("resource.len == null and action.name == 'edit'")


def test_keywords_and_roots_are_lower_case() -> None:
    assert "write 'true' in lower case" in error("resource.owner == True").message
    assert "write 'and' in lower case" in error("true AND true").message
    assert "write 'resource' in lower case" in error("Resource.owner == 1").message


def test_non_dict_maps_are_read_but_objects_are_never_asked_for_attributes() -> None:
    from types import MappingProxyType

    class Record:
        owner = "u7"

    env = {"resource": MappingProxyType({"owner": "u7"}), "subject": {"id": "u7", "record": Record()}}
    assert holds("resource.owner == subject.id", env)
    assert holds("subject.record.owner == null", env)


# Functions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("len(resource.title) == 16", True),
        ("len(resource.tags) == 2", True),
        ("len(context.order) == 2", True),
        ("len(context.amount) == null", True),
        ("len('金额') == 2", True),
        ("lower(resource.title) == 'quarterly report'", True),
        ("upper(subject.department) == 'SALES'", True),
        ("upper(1) == null", True),
        ("contains(resource.tags, 'q3')", True),
        ("contains(resource.tags, 'q9')", False),
        ("contains(resource.title, 'Report')", True),
        ("contains(resource.missing, 'x')", False),
        ("contains(context.ids, '101')", False),
        ("startswith(resource.title, 'Quarter')", True),
        ("startswith(resource.title, 'Report')", False),
        ("startswith(resource.missing, '')", False),
        ("startswith(context.amount, '3')", False),
        ("exists(resource.owner)", True),
        ("exists(resource.empty)", True),  # present, though empty
        ("exists(resource.nothing)", False),  # present but null
        ("exists(resource.missing)", False),
        ("exists(context.order.金额)", True),
        ("any_of(subject.roles, ['auditor', 'admin'])", True),
        ("any_of(subject.roles, ['admin'])", False),
        ("any_of(subject.roles, [])", False),
        ("any_of(subject.roles, resource.missing)", False),
        ("any_of([1, [2]], [[2]])", True),
        ("any_of([1], [true, 1.0])", True),
        ("any_of([1], [true])", False),
        ("len(lower(upper('Ab'))) == 2", True),
    ],
)
def test_functions(text: str, expected: bool) -> None:
    assert holds(text) is expected


def test_any_of_on_two_long_lists_is_fast() -> None:
    env = {"subject": {"a": [f"x{i}" for i in range(20000)]}, "resource": {"b": [f"y{i}" for i in range(20000)]}}
    assert not holds("any_of(subject.a, resource.b)", env)  # hashed: milliseconds, not 400 million comparisons


# What a condition reads


def test_paths_and_roots_list_every_attribute_read() -> None:
    expression = parse(
        'resource.owner == subject.id or (exists(context.order["金额"]) and action.name in ["edit", "view"])'
    )
    assert expression.paths() == {
        ("resource", "owner"),
        ("subject", "id"),
        ("context", "order", "金额"),
        ("action", "name"),
    }
    assert expression.roots() == {"resource", "subject", "context", "action"}
    assert parse("1 == 1").paths() == frozenset()
    assert parse("1 == 1").roots() == frozenset()


def test_an_expression_keeps_its_text_and_equals_another_with_the_same_text() -> None:
    expression = parse("resource.owner == subject.id")
    assert expression.text == "resource.owner == subject.id"
    assert expression == parse("resource.owner == subject.id")
    assert expression != parse("subject.id == resource.owner")
    assert len({expression, parse("resource.owner == subject.id")}) == 1


# Errors: what is wrong and at which column


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("", "the condition is empty", 1),
        ("   ", "the condition is empty", 1),
        ('resource.owner == "u7', "unterminated string", 19),
        ("resource.owner == 'u7\\'", "unterminated string", 19),
        ('"\\t"', "unknown escape '\\t'", 2),
        ("os.system('rm -rf /')", "unknown name 'os'", 1),
        ('__import__("os")', "unknown function '__import__'", 1),
        ("eval('1')", "unknown function 'eval'", 1),
        ("resource.owner ==", "unexpected end of condition", 18),
        ("resource.owner == subject.id and", "unexpected end of condition", 33),
        ("== subject.id", "unexpected '=='", 1),
        ("resource.owner == subject.id)", "unexpected ')'", 29),
        ("(resource.owner == subject.id", "unexpected end of condition; expected ')'", 30),
        ("(resource.owner == subject.id))", "unexpected ')'", 31),
        ("resource.owner = subject.id", "unexpected '=' (write '==' to compare)", 16),
        ("resource.a && resource.b", "unexpected '&' (write 'and')", 12),
        ("resource.a || resource.b", "unexpected '|' (write 'or')", 12),
        ("!resource.a", "unexpected '!' (write 'not')", 1),
        ("context.amount （", "unexpected '（' (use '(')", 16),
        ("resource.owner == “u7”", "unexpected '“'", 19),
        ("resource", "'resource' needs an attribute", 1),
        ("resource.", "expected an attribute name after '.'", 10),
        ("resource.1", "expected an attribute name after '.'", 10),
        ("resource[0]", "expected a quoted attribute name inside [ ]", 10),
        ("resource[subject.id]", "expected a quoted attribute name inside [ ]", 10),
        ('resource["a"', "expected ']'", 13),
        ("[1, 2", "expected ',' or ']'", 6),
        ("[1 2]", "unexpected '2'; expected ',' or ']'", 4),
        ("[1, ]", "unexpected ']'", 5),
        ("len(1, 2)", "len() takes 1 argument, not 2", 1),
        ("contains(resource.tags)", "contains() takes 2 arguments, not 1", 1),
        ("exists('resource.owner')", "exists() takes an attribute path", 1),
        ("len", "'len' is a function", 1),
        ("1 2", "unexpected '2'", 3),
        ("resource.a not resource.b", "unexpected 'not'", 12),
        ("and", "unexpected 'and'", 1),
        ("1e999 > 0", "the number 1e999 is too large", 1),
        ("1 < 2 < 3", "comparisons cannot be chained", 7),
        ("resource.owner ==\n  )", "unexpected ')'", 21),  # a newline counts as one column
        ("resource.owner == @", "unexpected '@'", 19),
        ("subject.id in [1, 2]]", "unexpected ']'", 21),
    ],
)
def test_parse_errors_say_what_and_where(text: str, message: str, column: int) -> None:
    failure = error(text)
    assert message in failure.message
    assert failure.column == column
    assert str(failure) == f"{failure.message} at column {column}"


def test_the_error_is_an_invalid_input_and_names_the_column() -> None:
    failure = error("resource.owner == subject.id)")
    assert isinstance(failure, Invalid)
    assert str(failure) == "unexpected ')' at column 29"


def test_a_condition_that_is_not_text_is_an_expression_error() -> None:
    assert "must be text" in error(42).message  # type: ignore[arg-type]


# Limits: hostile text gets an ExpressionError, never a RecursionError or a long wait


def test_text_longer_than_the_limit_is_refused() -> None:
    parse("1 == 1" + " " * (MAX_LENGTH - 6))
    failure = error("1 == 1" + " " * (MAX_LENGTH - 5))
    assert "longer than 2000 characters" in failure.message
    assert failure.column == MAX_LENGTH + 1


@pytest.mark.parametrize(
    ("opening", "column"),
    [("(", 33), ("[", 33), ("-", 33), ("-(", 33), ("not ", 4 * 32 + 1), ("len(", 4 * 33), ("upper([", 7 * 16 + 6)],
)
def test_deep_nesting_is_refused_at_the_first_level_too_many(opening: str, column: int) -> None:
    failure = error((opening * 1000)[:MAX_LENGTH])
    assert f"nested more than {MAX_DEPTH} levels" in failure.message
    assert failure.column == column


def test_nesting_up_to_the_limit_parses_and_evaluates_even_with_little_stack() -> None:
    deepest = "(" * MAX_DEPTH + "resource.owner == subject.id" + ")" * MAX_DEPTH
    mixed = "not (" * 15 + "-(context.amount) < 0" + ")" * 15  # 15 × 2 + 2 levels
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 500)
    try:
        assert parse(deepest).evaluate(ENV)
        assert parse(mixed).evaluate(ENV) is False  # an odd number of nots of a truth
    finally:
        sys.setrecursionlimit(limit)


def test_too_many_values_and_operators_are_refused() -> None:
    failure = error("1" + " + 1" * 300)
    assert "too large (more than 500 values and operators)" in failure.message
    assert failure.column == 1 + 4 * 250  # the 501st part is the 251st 1


# Injection: either a parse error or a harmless string


@pytest.mark.parametrize(
    "text",
    [
        "().__class__.__bases__",
        "''.__class__.__mro__[1].__subclasses__()",
        "import os",
        "__import__('os').system('id')",
        "exec('import os')",
        "getattr(resource, '__class__')",
        "lambda: 1",
        "resource.owner == subject.id; import os",
        "'; DROP TABLE x; --",
        "resource.owner == ''; DROP TABLE x; --'",
        "resource.owner == 'u7' or 1 == 1 --",
        "{{7*7}}",
        "${jndi:ldap://x}",
        "resource.__class__()",
        "[x for x in ().__class__.__base__.__subclasses__()]",
    ],
)
def test_injection_attempts_are_parse_errors(text: str) -> None:
    error(text)


@pytest.mark.parametrize(
    "payload", ["'; DROP TABLE x; --", '__import__("os").system("id")', "{{7*7}}", "${jndi:ldap://x}", '\\"; 1 == 1']
)
def test_injected_text_inside_quotes_is_only_a_string(payload: str) -> None:
    literal = '"' + payload.replace("\\", "\\\\").replace('"', '\\"') + '"'
    expression = parse(f"resource.owner == {literal}")
    assert expression.evaluate({"resource": {"owner": payload}})
    assert not expression.evaluate(ENV)
    assert expression.paths() == {("resource", "owner")}


def test_python_dunder_names_are_only_missing_attributes() -> None:
    assert holds("resource.__class__ == null")
    assert holds("subject.__dict__ == null and context.__globals__ == null")
    assert parse("resource.__class__.__bases__ == null").paths() == {("resource", "__class__", "__bases__")}


def test_the_module_never_hands_text_to_python() -> None:
    source = Path(expressions.__file__).read_text(encoding="utf-8")
    called = {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}
    assert not called & {"eval", "exec", "compile", "getattr", "__import__", "literal_eval"}


# Properties


@settings(max_examples=500)
@given(st.text(max_size=300))
def test_parsing_any_text_succeeds_or_raises_an_expression_error(text: str) -> None:
    with contextlib.suppress(ExpressionError):
        parse(text)


@settings(max_examples=500)
@given(syntax_soup)
def test_parsing_syntax_soup_succeeds_or_raises_an_expression_error(text: str) -> None:
    with contextlib.suppress(ExpressionError):
        parse(text)


VALID = [
    "resource.owner == subject.id",
    "resource.department != subject.department",
    "context.amount <= 50000 and context.amount > 2 * resource.limit - 1",
    "context.amount / resource.limit >= -2.5 or context.amount * 1e3 < resource.limit + 1",
    "subject.department in ['Legal', 'Sales', 1, null, true]",
    "subject.id in resource.tags or subject.id not in resource.tags",
    "subject.id in [resource.owner, resource.department] or subject.id not in [resource.owner]",
    "resource.owner < subject.id or resource.owner > subject.id or resource.owner >= subject.id",
    "not resource.owner and not (context.order.amount == context['金额'])",
    "-resource.amount == -context.order.金额",
    "resource.tags == subject.tags and resource.order == context.order",
    "len(resource.tags) > 1 and lower(subject.id) == upper(subject.id)",
    "contains(resource.tags, subject.id) or contains(resource.title, subject.department)",
    "startswith(resource.title, subject.id) and exists(context.order.amount)",
    "any_of(subject.tags, resource.tags) or any_of(subject.tags, ['a', 1, [2]])",
    "resource.owner or subject.id or context.order or action.name",
    "resource.owner.id.department == null",
]


@settings(max_examples=300)
@given(environments)
def test_evaluation_never_raises_and_always_answers_a_bool(env: dict) -> None:
    for text in VALID:
        assert type(parse(text).evaluate(env)) is bool


@settings(max_examples=500)
@given(token_soup, environments)
def test_whatever_parses_evaluates_to_a_bool_on_any_environment(text: str, env: dict) -> None:
    try:
        expression = parse(text)
    except ExpressionError:
        return
    assert type(expression.evaluate(env)) is bool
    assert expression.roots() <= set(expressions.ROOTS)
