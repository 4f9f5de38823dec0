"""Expressions → durable_rules conditions (`condition_json`), exactly the evaluator's semantics.

The Python evaluator of `dutyline.expressions` is the specification; `condition_json` reproduces it, which a
property test checks on random expressions and events (30,000 expressions, ≈100,000 events: no difference).
Each attribute path the condition reads becomes typed fields of the event, which `fires()` writes from the
caller's flat event value `event[flat_key(path)]` (missing means null), only those the condition uses.
The fields are described in `encoding`.


Arithmetic is null when an operand is not a finite number, a divisor is zero or a step overflows, as in the
evaluator: every step is tested against `#max`/`#min` and every divisor against `#zero`. A comparison whose sides
are not a single field (`a * 2 > 10`, `a + b < c * d`) becomes the sign of their difference, `0 < (a * 2 - 10)`,
exact in IEEE arithmetic for finite numbers. Negation is pushed inward with each test's complement written out.

Supported: `==` `!=` `<` `<=` `>` `>=` between attributes, constants, arithmetic and conditions, either way round;
`in` / `not in` a written list (of constants or attributes); `and` `or` `not`; `exists(path)`;
`startswith(path, "text")`; `contains([list], x)`; the truth of any value; anything without attributes is
computed by the evaluator itself. Not expressible (`NotExpressible`, naming the construct): `len`, `lower`,
`upper`, `any_of`, `contains` and `startswith` over attributes, `in` with an attribute or a text on the right.

Known differences, all for values JSON cannot carry or numbers beyond 2^53: integers beyond ±2^53 are ordered
and computed as doubles (their equality stays exact); NaN and ±infinity are never finite operands, so `-x`,
`1 / x` are null for them (the evaluator keeps `-x` a number); integer arithmetic whose result exceeds 2^53 is
rounded; texts longer than 16 KiB of UTF-8 are ordered by their first 16 KiB; an empty mapping that is not a
dict counts as false; mappings with non-text keys compare by identity.

"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dutyline.engines.rulehost.conditions import NotExpressible, split
from dutyline.engines.rulehost.encoding import canonical_key, escape, hex_text
from dutyline.engines.rulehost.operands import (
    FALSE,
    NEVER,
    RANK,
    TRUE,
    Cond,
    Const,
    Field,
    Formula,
    Listed,
    Num,
    Truth,
    Value,
    all_of,
    any_of,
    conjunction,
    constant_cond,
    disjunction,
    is_plain_number,
    negation,
)
from dutyline.expressions import (
    Arithmetic,
    Call,
    Comparison,
    Expression,
    ListOf,
    Logical,
    Negate,
    Node,
    Not,
    Path,
    arithmetic,
    compare,
    equal,
    is_finite_number,
    node_paths,
    truthy,
    value_of,
)

_ARITHMETIC_OPS = {"+": "$add", "-": "$sub", "*": "$mul", "/": "$div"}
_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_NEGATE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}  # for numbers and texts, never NaN here
_OPERATOR = {"==": "$eq", "!=": "$neq", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}


def condition_json(expression: Expression, flat_key: Callable[[tuple[str, ...]], str]) -> dict[str, Any]:
    """The durable_rules condition (for `{"all": [{"m": ...}]}`) that holds exactly when `expression` does, over
    the typed fields `RuleHost.fires` writes from a flat event keyed by `flat_key(path)`. Raises `NotExpressible`
    naming the construct durable_rules cannot evaluate."""
    compiler = _Compiler(expression.text, flat_key)
    condition = _emit(compiler.condition(expression.tree).yes)
    try:
        split(condition)
    except ValueError as error:
        raise NotExpressible(f"a condition this large: {error}", expression.text) from error
    return condition


def _emit(formula: Formula) -> dict[str, Any]:
    if formula is TRUE:
        return {"#zero": 0.0}
    if formula is FALSE:
        return {"$neq": {"#zero": 0.0}}
    if isinstance(formula, tuple):
        return {f"${formula[0]}": [_emit(item) for item in formula[1]]}
    return formula


def _test(op: str, field: str, operand: Any) -> dict[str, Any]:
    return {field: operand} if op == "==" else {_OPERATOR[op]: {field: operand}}


class _Compiler:
    def __init__(self, text: str, flat_key: Callable[[tuple[str, ...]], str]) -> None:
        self.text = text
        self.flat_key = flat_key

    def refuse(self, construct: str, hint: str = "") -> NotExpressible:
        return NotExpressible(construct, self.text, hint)

    # conditions

    def condition(self, node: Node) -> Cond:
        if not any(True for _ in node_paths(node)):
            return constant_cond(truthy(value_of(node, {})))
        match node:
            case Logical("and", operands):
                return conjunction(*(self.condition(operand) for operand in operands))
            case Logical(_, operands):
                return disjunction(*(self.condition(operand) for operand in operands))
            case Not(operand):
                return negation(self.condition(operand))
            case Comparison(op, left, right):
                return self.comparison(op, left, right)
            case Call(function, args):
                return self.call(function, args)
            case ListOf(items):
                return constant_cond(bool(items))  # a list is true when it is not empty, whatever it holds
        return self.truth(self.value(node))

    def truth(self, value: Value) -> Cond:
        match value:
            case Const(constant):
                return constant_cond(truthy(constant))
            case Field():
                return Cond({value("t"): True}, {value("t"): False})
            case Num(expression, valid, invalid):
                return Cond(all_of(valid, {"$neq": {"#zero": expression}}), any_of(invalid, {"#zero": expression}))
            case Truth(cond):
                return cond
            case Listed(items):
                return constant_cond(bool(items))
        raise AssertionError(value)

    def call(self, function: str, args: tuple[Node, ...]) -> Cond:
        if function == "exists":
            k = self.value(args[0])("k")  # type: ignore[operator]  # the parser makes the argument a path
            return Cond({"$neq": {k: "z"}}, {k: "z"})
        if function == "startswith":
            subject, prefix = self.value(args[0]), self.value(args[1])
            if any(
                not isinstance(v, (Field, Const)) or (isinstance(v, Const) and not isinstance(v.value, str))
                for v in (subject, prefix)
            ):
                return NEVER  # only a text starts with a text (numbers, null, true, lists do not)
            if isinstance(subject, Field) and isinstance(prefix, Const):
                s, low = subject("s"), hex_text(prefix.value)
                high = low + "g"  # above every hex string that starts with `low`, below every other one above it
                return Cond(
                    all_of({"$gte": {s: low}}, {"$lt": {s: high}}),
                    any_of({"$neq": {subject("c"): "s"}}, {"$lt": {s: low}}, {"$gte": {s: high}}),
                )
            raise self.refuse("startswith() with an attribute as the prefix", "startswith")
        if function == "contains":
            return self.membership("in", self.value(args[1]), self.value(args[0]), "contains")
        raise self.refuse(f"{function}() of an attribute", function)

    # values

    def value(self, node: Node) -> Value:
        if not any(True for _ in node_paths(node)):
            return Const(value_of(node, {}))
        match node:
            case Path(root, names):
                key = self.flat_key((root, *names))
                if not key:
                    raise self.refuse(f"the path {'.'.join((root, *names))} (its flat key is empty)")
                return Field(escape(key))
            case Arithmetic(first, rest):
                value = self.value(first)
                for op, operand in rest:
                    value = self.arithmetic(op, value, self.value(operand))
                return value
            case Negate(operand):
                return self.arithmetic("-", Const(0.0), self.value(operand))
            case ListOf(items):
                return Listed(tuple(self.value(item) for item in items))
            case Call(function, _) if function in ("exists", "startswith", "contains", "any_of"):
                return Truth(self.condition(node))
            case Call(function, _):
                raise self.refuse(f"{function}() of an attribute", function)
            case Not() | Logical() | Comparison():
                return Truth(self.condition(node))
        raise AssertionError(node)

    def arithmetic(self, op: str, left: Value, right: Value) -> Value:
        if isinstance(left, Const) and isinstance(right, Const):
            return Const(arithmetic(op, left.value, right.value))
        for side in (left, right):
            if isinstance(side, (Truth, Listed)) or (isinstance(side, Const) and not is_plain_number(side.value)):
                return Const(None)  # arithmetic on anything but numbers is null, whatever the other side holds
            if isinstance(side, Const) and not is_finite_number(side.value):
                raise self.refuse("arithmetic with a number beyond the range of doubles")
        if op == "/" and isinstance(right, Const) and right.value == 0:
            return Const(None)
        (a, a_valid, a_invalid), (b, b_valid, b_invalid) = self.operand(left), self.operand(right)
        expression = {_ARITHMETIC_OPS[op]: {"$l": a, "$r": b}}
        valid = [a_valid, b_valid, {"$gte": {"#max": expression}}, {"$lte": {"#min": expression}}]
        invalid = [a_invalid, b_invalid, {"$lt": {"#max": expression}}, {"$gt": {"#min": expression}}]
        if op == "/" and not isinstance(right, Const):
            valid.append({"$neq": {"#zero": b}})
            invalid.append({"#zero": b})
        # Flat: valid is "every operand a finite number, every divisor non-zero, every step finite"; invalid is
        # any of the opposites. A test computed from a missing or non-finite operand may say anything, but only
        # when another test of the same formula has already decided it; and with finite operands and non-zero
        # divisors no step is NaN, so "not finite" is "above #max or below #min".
        return Num(expression, all_of(*valid), any_of(*invalid))

    def operand(self, value: Value) -> tuple[Any, Formula, Formula]:
        match value:
            case Const(constant):
                return float(constant), TRUE, FALSE
            case Field():
                return {"$m": value("n")}, {value("f"): True}, {value("f"): False}
            case Num(expression, valid, invalid):
                return expression, valid, invalid
        raise AssertionError(value)

    # comparisons

    def comparison(self, op: str, left_node: Node, right_node: Node) -> Cond:
        left = self.value(left_node)
        if op in ("in", "not in"):
            return self.membership(op, left, self.value(right_node), "in")
        right = self.value(right_node)
        if isinstance(left, Listed) or isinstance(right, Listed):
            raise self.refuse("a comparison with a list that holds attributes", "[")
        if RANK[type(left)] > RANK[type(right)]:
            left, right, op = right, left, _FLIP[op]
        if op in ("==", "!="):
            equal = self.equal(left, right)
            return equal if op == "==" else negation(equal)
        return self.order(op, left, right)

    def membership(self, op: str, x: Value, container: Value, hint: str) -> Cond:
        if isinstance(container, Const):
            if isinstance(container.value, tuple):
                items: tuple[Value, ...] = tuple(Const(item) for item in container.value)
            elif isinstance(container.value, str):
                raise self.refuse("'in' with a text on the right (a substring test)", hint)
            else:
                return NEVER  # no list: both `in` and `not in` are false
        elif isinstance(container, Listed):
            items = container.items
        elif isinstance(container, (Num, Truth)):
            return NEVER  # a number, null or a truth value is no list
        else:
            raise self.refuse("'in' with an attribute on the right (membership in a list-valued attribute)", hint)
        for item in items:
            if isinstance(item, Listed):
                raise self.refuse("a list that holds attributes inside a list", "[")
        found = disjunction(*(self.compare_equal(x, item) for item in items))
        return found if op == "in" else negation(found)

    def compare_equal(self, left: Value, right: Value) -> Cond:
        if isinstance(left, Listed):
            raise self.refuse("a comparison with a list that holds attributes", "[")
        if RANK[type(left)] > RANK[type(right)]:
            left, right = right, left
        return self.equal(left, right)

    def equal(self, left: Value, right: Value) -> Cond:
        """`left == right`, with left ranked no higher than right."""
        match left, right:
            case Const(a), Const(b):
                return constant_cond(equal(a, b))
            case Field(), Const(c):
                k, key = left("k"), canonical_key(c)
                return Cond({k: key}, {"$neq": {k: key}})
            case Field(), Field():
                k, other = left("k"), {"$m": right("k")}
                return Cond({k: other}, {"$neq": {k: other}})
            case Field(), Num(expression, valid, invalid):
                n, k = left("n"), left("k")
                return Cond(
                    any_of(all_of(valid, {n: expression}), all_of(invalid, {k: "z"})),
                    any_of(
                        all_of(valid, any_of({"$neq": {left("c"): "n"}}, {"$neq": {n: expression}})),
                        all_of(invalid, {"$neq": {k: "z"}}),
                    ),
                )
            case Field(), Truth(cond):
                k = left("k")
                return Cond(
                    any_of(all_of(cond.yes, {k: "t"}), all_of(cond.no, {k: "f"})),
                    any_of(all_of(cond.yes, {"$neq": {k: "t"}}), all_of(cond.no, {"$neq": {k: "f"}})),
                )
            case Num(), Num():
                difference = {"$sub": {"$l": left.expression, "$r": right.expression}}
                both = all_of(left.valid, right.valid)
                return Cond(
                    any_of(all_of(both, {"#zero": difference}), all_of(left.invalid, right.invalid)),
                    any_of(
                        all_of(both, {"$neq": {"#zero": difference}}),
                        all_of(left.valid, right.invalid),
                        all_of(left.invalid, right.valid),
                    ),
                )
            case Num(expression, valid, invalid), Const(c):
                if c is None:
                    return Cond(invalid, valid)
                if not is_plain_number(c):
                    return NEVER
                if not is_finite_number(c):
                    raise self.refuse("a comparison with a number beyond the range of doubles")
                difference = {"$sub": {"$l": expression, "$r": float(c)}}
                return Cond(all_of(valid, {"#zero": difference}), any_of(invalid, {"$neq": {"#zero": difference}}))
            case Num(), Truth():
                return NEVER  # a number or null never equals true or false
            case Truth(a), Truth(b):
                return Cond(
                    any_of(all_of(a.yes, b.yes), all_of(a.no, b.no)), any_of(all_of(a.yes, b.no), all_of(a.no, b.yes))
                )
            case Truth(cond), Const(c):
                return cond if c is True else negation(cond) if c is False else NEVER
        raise AssertionError((left, right))

    def order(self, op: str, left: Value, right: Value) -> Cond:
        """`left op right` for op in < <= > >=, with left ranked no higher than right."""
        negated = _NEGATE[op]
        match left, right:
            case Const(a), Const(b):
                return constant_cond(compare(op, a, b))
            case (Truth(), _) | (_, Truth()):
                return NEVER  # true and false are not ordered
            case Field(), Const(c):
                if is_plain_number(c):
                    literal: Any = float(c) if is_finite_number(c) else c
                    field, kind = left("n"), "n"
                elif isinstance(c, str):
                    literal, field, kind = hex_text(c), left("s"), "s"
                else:
                    return NEVER
                return Cond(
                    _test(op, field, literal), any_of({"$neq": {left("c"): kind}}, _test(negated, field, literal))
                )
            case Field(), Field():
                # Same class, then one comparison per class: the other one's left field is missing, so it is false.
                same = {left("c"): {"$m": right("c")}}
                numbers, texts = {"$m": right("n")}, {"$m": right("s")}
                return Cond(
                    all_of(same, any_of(_test(op, left("n"), numbers), _test(op, left("s"), texts))),
                    any_of(
                        {"$neq": same},
                        {left("c"): "x"},
                        _test(negated, left("n"), numbers),
                        _test(negated, left("s"), texts),
                    ),
                )
            case Field(), Num(expression, valid, invalid):
                n = left("n")
                return Cond(
                    all_of(valid, _test(op, n, expression)),
                    any_of(invalid, {"$neq": {left("c"): "n"}}, _test(negated, n, expression)),
                )
            case Num(), Num():
                difference = {"$sub": {"$l": left.expression, "$r": right.expression}}
                both = all_of(left.valid, right.valid)
                # a op b  ⇔  0 flip(op) (a - b): the sign of an IEEE difference of finite numbers is exact
                return Cond(
                    all_of(both, _test(_FLIP[op], "#zero", difference)),
                    any_of(left.invalid, right.invalid, _test(_FLIP[negated], "#zero", difference)),
                )
            case Num(expression, valid, invalid), Const(c):
                if not is_plain_number(c):
                    return NEVER
                if not is_finite_number(c):
                    raise self.refuse("a comparison with a number beyond the range of doubles")
                difference = {"$sub": {"$l": expression, "$r": float(c)}}
                return Cond(
                    all_of(valid, _test(_FLIP[op], "#zero", difference)),
                    any_of(invalid, _test(_FLIP[negated], "#zero", difference)),
                )
        raise AssertionError((left, right))
