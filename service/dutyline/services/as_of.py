"""Decisions as of a past moment: against the organisation's version and rule packs in force then."""

from __future__ import annotations

import dataclasses
import datetime as dt

import msgspec

from dutyline.errors import NotFound
from dutyline.orgmodel.windows import when
from dutyline.services.decisions import Answer, DecisionService, Question
from dutyline.services.versions import Versions


class AsOf(msgspec.Struct):
    """Which versions decided an `as_of` check."""

    at: str
    version: int
    rule_versions: dict[str, int]


def answer_as_of(decisions: DecisionService, versions: Versions, question: Question, as_of: str) -> tuple[Answer, AsOf]:
    """Decide `question` on what was in force at `as_of` (naive: in the organisation's time zone as it is now),
    compiled on demand and LRU-cached (`Versions.policy_at`); the question's own `at` defaults to that moment."""
    organisation = question.organisation or ""
    current = decisions.policies.get(organisation)
    then = when(as_of, current.document.timezone if current is not None else None, "as_of").astimezone(dt.UTC)
    if question.at is None:
        question = dataclasses.replace(question, at=then.timestamp())
    with versions.policy_at(organisation, then) as past:
        if past is None:
            raise NotFound(f"organisation {organisation!r} did not exist at {then.isoformat()}")
        answer = decisions.answer(question, past)
        return answer, AsOf(then.isoformat(), past.org.version, dict(past.rule_versions))
