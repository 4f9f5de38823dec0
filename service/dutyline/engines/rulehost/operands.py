"""What the condition compiler works with: formulas and their complements, and the values a comparison has on
either side (a constant, a field, an arithmetic result, a condition's truth, a written list)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dutyline.expressions import is_number

# A formula: a durable_rules test (dict), or ("and"|"or", formulas), or TRUE / FALSE.
Formula = dict | tuple
TRUE: tuple = ("true",)
FALSE: tuple = ("false",)


def all_of(*formulas: Formula) -> Formula:
    out: list[Formula] = []
    for formula in formulas:
        if formula is FALSE:
            return FALSE
        if formula is TRUE:
            continue
        out.extend(formula[1] if isinstance(formula, tuple) and formula[0] == "and" else [formula])
    return TRUE if not out else out[0] if len(out) == 1 else ("and", out)


def any_of(*formulas: Formula) -> Formula:
    out: list[Formula] = []
    for formula in formulas:
        if formula is TRUE:
            return TRUE
        if formula is FALSE:
            continue
        out.extend(formula[1] if isinstance(formula, tuple) and formula[0] == "or" else [formula])
    return FALSE if not out else out[0] if len(out) == 1 else ("or", out)


@dataclass(frozen=True, slots=True)
class Cond:
    """A condition and its complement, both written without negation."""

    yes: Formula
    no: Formula


ALWAYS = Cond(TRUE, FALSE)
NEVER = Cond(FALSE, TRUE)


def disjunction(*conds: Cond) -> Cond:
    return Cond(any_of(*(c.yes for c in conds)), all_of(*(c.no for c in conds)))


def conjunction(*conds: Cond) -> Cond:
    return Cond(all_of(*(c.yes for c in conds)), any_of(*(c.no for c in conds)))


def negation(cond: Cond) -> Cond:
    return Cond(cond.no, cond.yes)


def constant_cond(truth: bool) -> Cond:
    return ALWAYS if truth else NEVER


# Values a comparison can have on either side.


@dataclass(frozen=True, slots=True)
class Const:
    value: Any


@dataclass(frozen=True, slots=True)
class Field:
    base: str  # the escaped flat key; its fields are base#k, #c, #n, #s, #f and #t

    def __call__(self, tag: str) -> str:
        return f"{self.base}#{tag}"


@dataclass(frozen=True, slots=True)
class Num:
    """An arithmetic result: a durable_rules numeric expression, and when it is a number (else it is null)."""

    expression: Any
    valid: Formula
    invalid: Formula


@dataclass(frozen=True, slots=True)
class Truth:
    cond: Cond


@dataclass(frozen=True, slots=True)
class Listed:
    items: tuple[Any, ...]  # values; a written list with attributes in it


Value = Const | Field | Num | Truth | Listed
RANK = {Field: 0, Num: 1, Truth: 2, Listed: 3, Const: 4}


def is_plain_number(value: Any) -> bool:
    return is_number(value) and value == value
