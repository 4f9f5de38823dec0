"""Dutyline's exceptions. Each maps to one HTTP status in `dutyline.api.errors`."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class IssueCode(StrEnum):
    """What kind of problem an issue is, for programs (the console, a caller's script): stable, unlike the
    message, which is for people and may be reworded."""

    INVALID = "invalid"  # a value not as expected, of no more particular kind
    SCHEMA = "schema"  # the shape, of no more particular kind below
    WRONG_TYPE = "wrong_type"  # a text where a number belongs, a list where a mapping does
    MISSING_FIELD = "missing_field"
    NOT_ALLOWED = "not_allowed"  # a value outside a closed list (a rule's `kind`, `otherwise`)
    BAD_FORMAT = "bad_format"  # a text not of its form: an id, a currency code, a time of day
    OUT_OF_RANGE = "out_of_range"  # a number below its minimum or above its maximum
    BAD_LENGTH = "bad_length"  # a text, list or mapping too short or too long
    UNKNOWN_KEY = "unknown_key"
    SYNTAX = "syntax"  # YAML or JSON that does not parse
    ENCODING = "encoding"  # not UTF-8
    TOO_LARGE = "too_large"  # beyond a bound: nesting, aliases, rules per pack, size
    NOT_FINITE = "not_finite"  # NaN or an infinity
    NOT_FOUND = "not_found"  # a file or folder that is not there
    DUPLICATE = "duplicate"  # an id, action, identity or duty number given twice
    CYCLE = "cycle"  # reporting lines, departments, groups or inheritance that loop
    UNKNOWN_ORGANISATION = "unknown_organisation"
    UNKNOWN_DEPARTMENT = "unknown_department"
    UNKNOWN_POST = "unknown_post"
    UNKNOWN_PERSON = "unknown_person"
    UNKNOWN_RESOURCE = "unknown_resource"
    UNKNOWN_ACTION = "unknown_action"
    UNKNOWN_TIMEZONE = "unknown_timezone"
    UNKNOWN_CURRENCY = "unknown_currency"
    SOD_CONFLICT = "sod_conflict"  # one person would hold posts separation of duties keeps apart
    OVERLAPPING_ASSIGNMENTS = "overlapping_assignments"
    HEADCOUNT = "headcount"  # more holders than a post's headcount (a warning)
    BAD_WINDOW = "bad_window"  # an impossible date, an end before its start, an acting post without both ends
    BAD_STAND_IN = "bad_stand_in"  # 顶替岗 given where it cannot be
    BAD_HEAD = "bad_head"  # a department's head post elsewhere, or duties with no head to carry them
    BAD_EXPRESSION = "bad_expression"  # a condition that does not parse or type-check
    BAD_BOUNDS = "bad_bounds"  # a minimum above its maximum
    NEEDS_SECOND_PERSON = "needs_second_person"  # four-eyes: the change must be approved by another


# The parameters an issue of each code carries (`Issue.params`), which its sentence in the console's catalogues
# (console/i18n/<lang>.json, `issue.<code>`) quotes. `field` is the name of the key at fault (`default`), the issue's
# `path` its whole place (`rules[0].default`). An issue may also carry `case`, which picks a more particular sentence
# (`issue.<code>.<case>`, which may quote more of them), and `suggestion`: the known id nearest a mistyped one.
# An issue without the parameters its sentence quotes (one made before codes had them) is shown with its `message`.
PARAMS: dict[IssueCode, tuple[str, ...]] = {
    IssueCode.INVALID: ("detail",),
    IssueCode.SCHEMA: ("field", "detail"),
    IssueCode.WRONG_TYPE: ("field", "expected", "got_type", "got"),
    IssueCode.MISSING_FIELD: ("field",),
    IssueCode.NOT_ALLOWED: ("field", "allowed", "got"),
    IssueCode.BAD_FORMAT: ("field", "format", "got"),
    IssueCode.OUT_OF_RANGE: ("field", "bound", "limit", "got"),
    IssueCode.BAD_LENGTH: ("field", "bound", "limit", "unit", "got"),
    IssueCode.UNKNOWN_KEY: ("field", "known"),
    IssueCode.SYNTAX: ("detail",),
    IssueCode.TOO_LARGE: ("detail",),
    IssueCode.NOT_FINITE: ("field", "got"),
    IssueCode.DUPLICATE: ("what", "id", "first_line"),
    IssueCode.CYCLE: ("what", "cycle"),
    IssueCode.UNKNOWN_ORGANISATION: ("id", "checked"),
    IssueCode.UNKNOWN_DEPARTMENT: ("id",),
    IssueCode.UNKNOWN_POST: ("id",),
    IssueCode.UNKNOWN_PERSON: ("id",),
    IssueCode.UNKNOWN_RESOURCE: ("id",),
    IssueCode.UNKNOWN_ACTION: ("id", "resource", "known"),
    IssueCode.UNKNOWN_TIMEZONE: ("id",),
    IssueCode.UNKNOWN_CURRENCY: ("what", "id", "currency", "line"),
    IssueCode.SOD_CONFLICT: ("post", "other", "rule"),
    IssueCode.OVERLAPPING_ASSIGNMENTS: ("post", "other"),
    IssueCode.HEADCOUNT: ("post", "holders", "headcount"),
    IssueCode.BAD_WINDOW: ("start", "end"),
    IssueCode.BAD_HEAD: ("post", "department", "expected"),
    IssueCode.BAD_EXPRESSION: ("field", "detail"),
    IssueCode.BAD_BOUNDS: ("minimum", "maximum"),
}


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem found in a document: where it is, what kind (`code`) and what is wrong, in plain words
    (`message`, English, for logs and callers) and as values (`params`, see `PARAMS`) for a catalogue to word it in
    the reader's language."""

    file: str
    line: int
    path: str
    message: str
    severity: Literal["error", "warning"] = "error"
    code: IssueCode = IssueCode.INVALID
    params: dict[str, str] = field(default_factory=dict, hash=False)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        at = f" ({self.path})" if self.path else ""
        return f"{where}: {self.severity}: {self.message}{at}"


def nearest(value: object, known: Iterable[str]) -> str:
    """The known id a mistyped `value` most likely meant (difflib's closest, if close enough), or ""."""
    if not isinstance(value, str):
        return ""
    # 0.8, not difflib's 0.6: ids made of a word and a number (post_04f8, post_780f) are 0.6 alike, and a typo of
    # a real word (aprove, sales_representativ) is above 0.85.
    found = difflib.get_close_matches(value, sorted(set(known)), n=1, cutoff=0.8)
    return found[0] if found else ""


def did_you_mean(suggestion: str) -> str:
    """The English tail of a message that has a suggestion (the catalogues' `issue.suggestion`)."""
    return f"; did you mean `{suggestion}`?" if suggestion else ""


def in_words(issues: Sequence[Issue], whole: str = "the document") -> str:
    """The first error of `issues` as a message a person can act on: its field (`whole` for the object itself), its
    line (and file, for a file), what is wrong; and how many more there are (every one is in `issues`)."""
    errors = [i for i in issues if i.severity == "error"] or list(issues)
    if not errors:
        return "invalid"
    first = errors[0]
    where = first.path or whole
    place = [] if first.file.startswith("<") else [first.file]
    if first.line:
        place.append(f"line {first.line}")
    located = f"{where} ({', '.join(place)})" if place else where
    more = f" (and {len(errors) - 1} more error(s): see issues)" if len(errors) > 1 else ""
    return f"{located}: {first.message}{more}"


class DutylineError(Exception):
    """Base of every error Dutyline raises on purpose."""


class NotFound(DutylineError):
    pass


class Conflict(DutylineError):
    pass


class Forbidden(DutylineError):
    """The caller may not do this (not an eligible approver, barred by separation of duties); says why."""


class Unreadable(Conflict):
    """A stored version this release cannot read (written by a newer release, or damaged): which one and why.
    A refresh keeps that organisation on its last good compiled version; a request that needs it is a 409."""


class PreconditionFailed(DutylineError):
    """A write based on a stale version (If-Match did not match)."""


class PreconditionRequired(DutylineError):
    """A write to an editable object without If-Match: the caller must say which version it changes."""


class Unauthenticated(DutylineError):
    """No credentials, or ones that are wrong, expired or revoked."""


class TooManyRequests(DutylineError):
    """Too many attempts (failed logins); `retry_after` seconds until the next one is accepted."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Invalid(DutylineError):
    """Input that cannot be accepted; `issues` says every place and why."""

    def __init__(self, message: str, issues: list[Issue] | None = None) -> None:
        super().__init__(message)
        self.issues = issues or []

    @classmethod
    def of(cls, issues: list[Issue], whole: str = "the document") -> Invalid:
        """`Invalid` whose message is the first of `issues` in words (`in_words`)."""
        return cls(in_words(issues, whole), issues)


class Unavailable(DutylineError):
    """A dependency (the database) or a required policy version is not there yet, or the server is at a bound of
    concurrent work; `retry_after` seconds (if given) until a retry may succeed."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
