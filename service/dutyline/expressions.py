"""Conditions written by compliance officers, such as `resource.owner == subject.id`.

A small language, read by a hand-written tokenizer and recursive-descent parser and compiled once into nested
closures, so that evaluating a condition costs a few dictionary look-ups. User text never reaches eval, exec,
compile or any Python parser; attribute names are only ever dictionary keys, never Python attributes; and
parsing is bounded in length, nesting and size, so hostile text gets an `ExpressionError` and nothing else.
Evaluation never raises: a missing attribute is null, and an operation that makes no sense (ordering a string
against a number, arithmetic on text) is false or null. docs/expressions.md describes the language.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from dutyline.errors import Invalid

MAX_LENGTH = 2000
MAX_DEPTH = 32
MAX_PARTS = 500
ROOTS = ("subject", "resource", "action", "context")
# Functions by number of arguments; those in _TESTS give a bool.
_ONE: dict[str, Callable[[Any], Any]] = {
    "len": lambda x: len(x) if isinstance(x, (str, list, tuple, Mapping)) else None,
    "lower": lambda x: x.lower() if isinstance(x, str) else None,
    "upper": lambda x: x.upper() if isinstance(x, str) else None,
    "exists": lambda x: x is not None,  # the parser makes sure its argument is a path
}
_TWO: dict[str, Callable[[Any, Any], Any]] = {
    "contains": lambda container, x: _member(x, container) is True,
    "startswith": lambda s, prefix: isinstance(s, str) and isinstance(prefix, str) and s.startswith(prefix),
    "any_of": lambda a, b: _any_of(a, b),
}
FUNCTIONS = (*_ONE, *_TWO)
_TESTS = frozenset({"exists", "contains", "startswith", "any_of"})
_CONSTANTS: dict[str, bool | None] = {"true": True, "false": False, "null": None}
_KEYWORDS = frozenset({"and", "or", "not", "in", *_CONSTANTS})


class ExpressionError(Invalid):
    """Text that is not a valid expression: what is wrong (`message`) and where (`column`, 1-based)."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"{message} at column {column}")
        self.message = message
        self.column = column


# The syntax tree. Values are null, bool, int, float, str; lists are tuples.


@dataclass(frozen=True, slots=True)
class Constant:
    value: bool | int | float | str | None


@dataclass(frozen=True, slots=True)
class ListOf:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Path:
    root: str
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Call:
    function: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Node


@dataclass(frozen=True, slots=True)
class Logical:
    op: Literal["and", "or"]
    operands: tuple[Node, ...]  # flat: `a or b or c` is one node, so long alternatives do not nest


@dataclass(frozen=True, slots=True)
class Arithmetic:
    first: Node
    rest: tuple[tuple[str, Node], ...]  # flat and left to right: `a - b + c` is ((a - b) + c)


@dataclass(frozen=True, slots=True)
class Comparison:
    op: str  # == != < <= > >= in, not in
    left: Node
    right: Node


Node = Constant | ListOf | Path | Call | Not | Negate | Logical | Arithmetic | Comparison


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed condition, compiled and ready to evaluate. Two expressions are equal when their text is."""

    text: str
    tree: Node = field(compare=False, repr=False)
    _test: Callable[[Mapping[str, Any]], bool] = field(compare=False, repr=False)
    _paths: frozenset[tuple[str, ...]] = field(compare=False, repr=False)

    def evaluate(self, env: Mapping[str, Any]) -> bool:
        """Whether the condition holds. `env` maps roots ("subject", "resource", "action", "context") to
        dicts of attributes, nested dicts allowed. Never raises: missing attributes are null."""
        return self._test(env)

    def paths(self) -> frozenset[tuple[str, ...]]:
        """Every attribute path the condition reads, e.g. ("resource", "owner")."""
        return self._paths

    def roots(self) -> frozenset[str]:
        """The roots the condition reads, e.g. {"resource", "subject"}."""
        return frozenset(path[0] for path in self._paths)


def parse(text: str) -> Expression:
    """Parse and compile a condition; raise `ExpressionError` saying what is wrong and at which column."""
    if not isinstance(text, str):
        raise ExpressionError(f"a condition must be text, not {type(text).__name__}", 1)
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the condition is longer than {MAX_LENGTH} characters", MAX_LENGTH + 1)
    tree = _Parser(text).parse()
    return Expression(text, tree, _condition(tree), frozenset(node_paths(tree)))


# Tokens


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["name", "string", "number", "symbol", "end"]
    value: Any
    column: int
    source: str  # as written, for messages


_SYMBOLS = ("==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "(", ")", "[", "]", ",", ".")
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n"}
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
# Characters people type by habit from other languages or a Chinese keyboard.
_HINTS = {
    "&": "write 'and'",
    "|": "write 'or'",
    "!": "write 'not'",
    "=": "write '==' to compare",
    "“": 'use a straight quote "',
    "”": 'use a straight quote "',
    "‘": "use a straight quote '",
    "’": "use a straight quote '",
    "（": "use '('",
    "）": "use ')'",
    "，": "use ','",
    "【": "use '['",
    "】": "use ']'",
}


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        start = i
        if ch.isspace():
            i += 1
            continue
        if ch in "\"'":
            value, i = _string(text, i)
            tokens.append(_Token("string", value, start + 1, text[start:i]))
        elif "0" <= ch <= "9":
            match = _NUMBER.match(text, i)
            assert match is not None  # a digit always matches
            source, i = match.group(), match.end()
            number = int(source) if source.isdigit() else float(source)
            if isinstance(number, float) and math.isinf(number):
                raise ExpressionError(f"the number {source} is too large", start + 1)
            tokens.append(_Token("number", number, start + 1, source))
        elif ch.isidentifier():  # a letter, in any script, or _
            i += 1
            while i < n and ("_" + text[i]).isidentifier():
                i += 1
            tokens.append(_Token("name", text[start:i], start + 1, text[start:i]))
        elif symbol := next((s for s in _SYMBOLS if text.startswith(s, i)), None):
            i += len(symbol)
            tokens.append(_Token("symbol", symbol, start + 1, symbol))
        else:
            hint = _HINTS.get(ch)
            raise ExpressionError(f"unexpected {ch!r}" + (f" ({hint})" if hint else ""), start + 1)
    tokens.append(_Token("end", None, n + 1, ""))
    return tokens


def _string(text: str, start: int) -> tuple[str, int]:
    """The value of the string literal opening at `start`, and the index just after it."""
    quote, i = text[start], start + 1
    out: list[str] = []
    while i < len(text):
        ch = text[i]
        if ch == quote:
            return "".join(out), i + 1
        if ch == "\\":
            escape = text[i + 1 : i + 2]
            if not escape:
                break
            if escape not in _ESCAPES:
                raise ExpressionError(f"unknown escape '\\{escape}' (use \\\" \\' \\\\ or \\n)", i + 1)
            out.append(_ESCAPES[escape])
            i += 2
        else:
            out.append(ch)
            i += 1
    raise ExpressionError("unterminated string", start + 1)


# Parser. Grammar, lowest precedence first:
#   or         := and ("or" and)*
#   and        := not ("and" not)*
#   not        := "not" not | comparison
#   comparison := sum [("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in") sum]
#   sum        := product (("+" | "-") product)*
#   product    := unary (("*" | "/") unary)*
#   unary      := "-" unary | primary
#   primary    := string | number | true | false | null | "[" [or ("," or)*] "]"
#               | root ("." name | "[" string "]")+ | function "(" [or ("," or)*] ")" | "(" or ")"


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0
        self.depth = 0  # open brackets, calls, `not`s and `-`s: bounds the recursion of parser and compiler
        self.parts = 0  # values and operators: bounds the size of the tree

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise ExpressionError("the condition is empty", 1)
        node = self.or_()
        if self.peek().kind != "end":
            raise _unexpected(self.peek())
        return node

    # token helpers

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.at + ahead, len(self.tokens) - 1)]

    def take(self) -> _Token:
        token = self.peek()
        self.at += 1
        return token

    def part(self) -> _Token:
        """Take a token that makes a node of the tree: a value or an operator."""
        token = self.take()
        self.parts += 1
        if self.parts > MAX_PARTS:
            message = f"the condition is too large (more than {MAX_PARTS} values and operators)"
            raise ExpressionError(message, token.column)
        return token

    def is_word(self, word: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind == "name" and token.value == word

    def is_symbol(self, *symbols: str) -> bool:
        token = self.peek()
        return token.kind == "symbol" and token.value in symbols

    def expect(self, symbol: str) -> None:
        token = self.take()
        if not (token.kind == "symbol" and token.value == symbol):
            raise _unexpected(token, f"expected '{symbol}'")

    def enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"the condition is nested more than {MAX_DEPTH} levels deep", token.column)

    # grammar

    def or_(self) -> Node:
        return self.logical("or", self.and_)

    def and_(self) -> Node:
        return self.logical("and", self.not_)

    def logical(self, word: Literal["and", "or"], operand: Callable[[], Node]) -> Node:
        operands = [operand()]
        while self.is_word(word):
            self.part()
            operands.append(operand())
        return operands[0] if len(operands) == 1 else Logical(word, tuple(operands))

    def not_(self) -> Node:
        if not self.is_word("not"):
            return self.comparison()
        self.enter(self.part())
        node = Not(self.not_())
        self.depth -= 1
        return node

    def comparison(self) -> Node:
        left = self.sum_()
        op = self.comparison_op()
        if op is None:
            return left
        right = self.sum_()
        column = self.peek().column
        if self.comparison_op() is not None:
            raise ExpressionError("comparisons cannot be chained; join them with 'and'", column)
        return Comparison(op, left, right)

    def comparison_op(self) -> str | None:
        """Take a comparison operator if one is next."""
        if self.is_symbol("==", "!=", "<", "<=", ">", ">="):
            return self.part().value
        if self.is_word("in"):
            self.part()
            return "in"
        if self.is_word("not") and self.is_word("in", 1):
            self.part()
            self.take()
            return "not in"
        return None

    def sum_(self) -> Node:
        return self.arithmetic(("+", "-"), self.product)

    def product(self) -> Node:
        return self.arithmetic(("*", "/"), self.unary)

    def arithmetic(self, symbols: tuple[str, str], operand: Callable[[], Node]) -> Node:
        first = operand()
        rest = []
        while self.is_symbol(*symbols):
            rest.append((self.part().value, operand()))
        return Arithmetic(first, tuple(rest)) if rest else first

    def unary(self) -> Node:
        if not self.is_symbol("-"):
            return self.primary()
        self.enter(self.part())
        operand = self.unary()
        self.depth -= 1
        if isinstance(operand, Constant) and is_number(operand.value):
            return Constant(-operand.value)  # type: ignore[operator]
        return Negate(operand)

    def primary(self) -> Node:
        token = self.part()
        if token.kind in ("string", "number"):
            return Constant(token.value)
        if token.kind == "name":
            name = token.value
            if name in _CONSTANTS:
                return Constant(_CONSTANTS[name])
            if name in ROOTS:
                return self.path(token)
            if name in _KEYWORDS:
                raise _unexpected(token)
            if self.is_symbol("("):
                return self.call(token)
            raise ExpressionError(_unknown_name(name), token.column)
        if token.kind == "symbol" and token.value in ("(", "["):
            self.enter(token)
            if token.value == "(":
                node: Node = self.or_()
                self.expect(")")
            else:
                node = ListOf(self.items("]"))
            self.depth -= 1
            return node
        raise _unexpected(token)

    def path(self, root: _Token) -> Path:
        names = []
        while self.is_symbol(".", "["):
            if self.take().value == ".":
                token = self.take()
                if token.kind != "name":
                    raise _unexpected(token, "expected an attribute name after '.'")
            else:
                token = self.take()
                if token.kind != "string":
                    raise _unexpected(token, "expected a quoted attribute name inside [ ]")
                self.expect("]")
            names.append(token.value)
        if not names:
            raise ExpressionError(f"'{root.value}' needs an attribute, e.g. {root.value}.id", root.column)
        return Path(root.value, tuple(names))

    def call(self, name: _Token) -> Call:
        function = name.value
        if function not in FUNCTIONS:
            raise ExpressionError(f"unknown function '{function}' (known: {', '.join(FUNCTIONS)})", name.column)
        self.enter(self.take())
        args = self.items(")")
        self.depth -= 1
        arity = 1 if function in _ONE else 2
        if len(args) != arity:
            plural = "s" if arity > 1 else ""
            raise ExpressionError(f"{function}() takes {arity} argument{plural}, not {len(args)}", name.column)
        if function == "exists" and not isinstance(args[0], Path):
            raise ExpressionError("exists() takes an attribute path, e.g. exists(resource.owner)", name.column)
        return Call(function, args)

    def items(self, close: str) -> tuple[Node, ...]:
        """Comma-separated expressions up to and including the closing bracket."""
        items: list[Node] = []
        if self.is_symbol(close):
            self.take()
            return ()
        while True:
            items.append(self.or_())
            token = self.take()
            if token.kind == "symbol" and token.value == close:
                return tuple(items)
            if not (token.kind == "symbol" and token.value == ","):
                raise _unexpected(token, f"expected ',' or '{close}'")


def _unexpected(token: _Token, expected: str = "") -> ExpressionError:
    if token.kind == "name" and token.value != token.value.lower() and token.value.lower() in _KEYWORDS:
        expected = f"write '{token.value.lower()}' in lower case"
    if token.kind == "end":
        what = "end of condition"
    else:
        source = token.source if len(token.source) <= 24 else token.source[:21] + "..."
        what = f"'{source}'"
    return ExpressionError(f"unexpected {what}" + (f"; {expected}" if expected else ""), token.column)


def _unknown_name(name: str) -> str:
    if name.lower() in _KEYWORDS or name.lower() in ROOTS:
        return f"unknown name '{name}'; write '{name.lower()}' in lower case"
    if name in FUNCTIONS:
        return f"'{name}' is a function; write {name}(...)"
    return f"unknown name '{name}'; an attribute path starts with subject, resource, action or context"


def node_paths(node: Node) -> Iterator[tuple[str, ...]]:
    """Every attribute path a node of a parsed tree reads (with repeats), in reading order."""
    match node:
        case Path(root, names):
            yield (root, *names)
        case ListOf(items) | Call(_, items) | Logical(_, items):
            for item in items:
                yield from node_paths(item)
        case Not(operand) | Negate(operand):
            yield from node_paths(operand)
        case Arithmetic(first, rest):
            yield from node_paths(first)
            for _, operand in rest:
                yield from node_paths(operand)
        case Comparison(_, left, right):
            yield from node_paths(left)
            yield from node_paths(right)


# Compiler: a tree becomes a closure env -> value. All operations below are total: they give null or false
# instead of raising.

_Run = Callable[[Mapping[str, Any]], Any]


def _condition(node: Node) -> Callable[[Mapping[str, Any]], bool]:
    """A closure giving the node's truth: its value as a bool."""
    run = _compile(node)
    gives_bool = isinstance(node, (Not, Logical, Comparison)) or (
        (isinstance(node, Call) and node.function in _TESTS)
        or (isinstance(node, Constant) and type(node.value) is bool)
    )
    return run if gives_bool else lambda env: truthy(run(env))


def _compile(node: Node) -> _Run:
    match node:
        case Constant(value):
            return lambda env: value
        case ListOf(items):
            runs = tuple(_compile(item) for item in items)
            if all(isinstance(item, Constant) for item in items):
                constant = tuple(run({}) for run in runs)
                return lambda env: constant
            return lambda env: tuple(run(env) for run in runs)
        case Path(root, names):
            return _getter(root, names)
        case Not(operand):
            test = _condition(operand)
            return lambda env: not test(env)
        case Negate(operand):
            run = _compile(operand)
            return lambda env: _negate(run(env))
        case Logical(op, operands):
            tests = tuple(_condition(operand) for operand in operands)
            if len(tests) == 2:
                a, b = tests
                return (lambda env: a(env) and b(env)) if op == "and" else (lambda env: a(env) or b(env))
            if op == "and":
                return lambda env: all(test(env) for test in tests)
            return lambda env: any(test(env) for test in tests)
        case Arithmetic(first, rest):
            start = _compile(first)
            steps = tuple((_ARITHMETIC[op], _compile(operand)) for op, operand in rest)

            def arithmetic(env: Mapping[str, Any]) -> Any:
                value = start(env)
                for apply, run in steps:
                    value = apply(value, run(env))
                return value

            return arithmetic
        case Comparison("in" | "not in" as op, left, ListOf(items)) if all(
            isinstance(item, Constant) for item in items
        ):
            # membership in a written list, the usual case: one set look-up (null, bools, numbers, strings)
            keys, x = frozenset(_key(item.value) for item in items), _compile(left)  # type: ignore[union-attr]
            if op == "in":
                return lambda env: _key(x(env)) in keys
            return lambda env: _key(x(env)) not in keys
        case Comparison(op, left, right):
            compare, a, b = _COMPARE[op], _compile(left), _compile(right)
            return lambda env: compare(a(env), b(env))
        case Call(function, (arg,)):
            one, x = _ONE[function], _compile(arg)
            return lambda env: one(x(env))
        case Call(function, (arg1, arg2)):
            two, x, y = _TWO[function], _compile(arg1), _compile(arg2)
            return lambda env: two(x(env), y(env))
    raise AssertionError(f"no compiler for {node!r}")  # the parser makes only the nodes above


def _getter(root: str, names: tuple[str, ...]) -> _Run:
    if len(names) == 1:  # the common case, kept to two look-ups
        name = names[0]

        def attribute(env: Mapping[str, Any]) -> Any:
            scope = env.get(root)
            return scope.get(name) if type(scope) is dict else _step(scope, name)

        return attribute

    def path(env: Mapping[str, Any]) -> Any:
        return follow(env.get(root), names)

    return path


def _step(value: Any, name: str) -> Any:
    # Only mapping keys, never Python attributes: `resource.__class__` is a key nobody has, so null.
    return value.get(name) if isinstance(value, (dict, Mapping)) else None


def follow(value: Any, names: Iterable[str]) -> Any:
    """The value at `names` inside `value`, the one attribute-path reader (the evaluator's, and the rules'):
    mapping keys only, never Python attributes; null when the path is absent or runs into a non-object."""
    for name in names:
        value = _step(value, name)
    return value


_LISTS = (list, tuple)
_SCALARS = frozenset({str, int, float, bool, type(None)})
_MAX_VALUE_DEPTH = 32  # equality of nested lists and dicts looks no deeper, so cyclic values cannot recurse forever


def is_number(value: Any) -> bool:
    """Whether a value is a number to the evaluator: an int or a float, never a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def truthy(value: Any) -> bool:
    """The evaluator's truth of a value: null, false, 0, "" and empty lists and mappings are false."""
    if value is None or value is False:
        return False
    if isinstance(value, (int, float, str, list, tuple, dict)):
        return bool(value)
    return True  # other objects: present, so true (and never asked for a __bool__ that might raise)


def equal(a: Any, b: Any, depth: int = 0) -> bool:
    """The evaluator's `==`: numbers by value (1 == 1.0), never across kinds (true != 1, "1" != 1), lists and
    mappings element by element (32 levels deep, then by identity), NaN equal to nothing."""
    kind = type(a)
    if kind is type(b) and kind in _SCALARS:
        return bool(a == b)
    if (is_number(a) and is_number(b)) or (isinstance(a, str) and isinstance(b, str)):
        return bool(a == b)
    if depth < _MAX_VALUE_DEPTH:
        if isinstance(a, _LISTS) and isinstance(b, _LISTS):
            return len(a) == len(b) and all(equal(x, y, depth + 1) for x, y in zip(a, b))
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            return len(a) == len(b) and all(k in b and equal(v, b[k], depth + 1) for k, v in a.items())
    return a is b  # true == 1, "1" == 1 and other mixed kinds are false


def ordered(a: Any, b: Any) -> bool:
    """Whether `a` and `b` can be ordered: two numbers or two strings."""
    return (is_number(a) and is_number(b)) or (isinstance(a, str) and isinstance(b, str))


def _member(x: Any, container: Any) -> bool | None:
    """Whether `x` is in the list, or is a substring of the string; None when that question makes no sense."""
    if isinstance(container, str):
        return x in container if isinstance(x, str) else None
    if isinstance(container, _LISTS):
        return any(equal(x, item) for item in container)
    return None


def _key(value: Any) -> tuple[str, Any] | None:
    """A hashable stand-in with the equality of `equal`, for null, booleans, numbers and strings."""
    if value is None or isinstance(value, bool):
        return ("constant", value)
    if is_number(value):
        return ("number", value) if value == value else None  # NaN equals nothing
    if isinstance(value, str):
        return ("string", str(value))
    return None


def _any_of(a: Any, b: Any) -> bool:
    """Whether two lists share an element. Hashes what it can, so two long lists stay cheap."""
    if not (isinstance(a, _LISTS) and isinstance(b, _LISTS)):
        return False
    keys, others = set(), []
    for item in b:
        key = _key(item)
        if key is None:
            others.append(item)
        else:
            keys.add(key)
    for item in a:
        key = _key(item)
        if key in keys if key is not None else any(equal(item, other) for other in others):
            return True
    return False


def _negate(value: Any) -> Any:
    return -value if is_number(value) else None


def _arithmetic(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def apply(a: Any, b: Any) -> Any:
        if not (is_number(a) and is_number(b)):
            return None
        try:
            result = op(a, b)
        except ArithmeticError:  # division by zero; an int too large for a float
            return None
        return None if isinstance(result, float) and not is_finite_number(result) else result

    return apply


_ARITHMETIC = {
    "+": _arithmetic(operator.add),
    "-": _arithmetic(operator.sub),
    "*": _arithmetic(operator.mul),
    "/": _arithmetic(operator.truediv),
}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": equal,
    "!=": lambda a, b: not equal(a, b),
    "<": lambda a, b: ordered(a, b) and bool(a < b),
    "<=": lambda a, b: ordered(a, b) and bool(a <= b),
    ">": lambda a, b: ordered(a, b) and bool(a > b),
    ">=": lambda a, b: ordered(a, b) and bool(a >= b),
    "in": lambda x, container: _member(x, container) is True,
    # Like the ordering comparisons, `not in` is false when the question makes no sense (a missing list):
    # a condition never holds because its data is absent.
    "not in": lambda x, container: _member(x, container) is False,
}


def is_finite_number(value: Any) -> bool:
    """Whether a value is a finite number: an int or float (never a bool), neither NaN nor an infinity, and
    within the range of doubles (an int beyond it is not finite). The one definition every reader of numbers
    uses (rule inputs, rule hosts, binding digests, org-model sources)."""
    if type(value) is float:
        return math.isfinite(value)
    if not is_number(value):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def arithmetic(op: str, a: Any, b: Any) -> Any:
    """The evaluator's `a op b` for op in + - * /: null unless both are numbers, for a division by zero, and for
    a result that is not finite."""
    return _ARITHMETIC[op](a, b)


def compare(op: str, a: Any, b: Any) -> bool:
    """The evaluator's comparison `a op b` for op in == != < <= > >= in, not in. Orderings hold only between two
    numbers or two texts (never true for anything else, null included); `in` / `not in` are false when the
    container is no list or text."""
    return _COMPARE[op](a, b)


def value_of(node: Node, env: Mapping[str, Any]) -> Any:
    """The value of one node of a parsed tree in `env` (the evaluator itself: for folding constants)."""
    return _compile(node)(env)
