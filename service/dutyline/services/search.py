"""AuthZEN search: the subjects, resources or actions that an evaluation would permit.

A search lists what an evaluation of each result would permit at the instant asked, decided as evaluation decides
it: the duty, then the business rules with the request's context and the facts (`DecisionService.permitter`).
What is conditional (needs approval, a second person the context does not name) is not listed. A listing is
computed once per walk and kept (`services.listings`); its pages are the HTTP layer's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Literal

from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.decision import Check
from dutyline.services.decisions import (
    DecisionService,
    Question,
    named_organisation,
    resolve_organisation,
    sole_owner,
    to_check,
)
from dutyline.services.listings import (
    Listing,
    Listings,
    Permits,
    actions_listing,
    actions_to_decide,
    posts_listing,
    resources_listing,
    resources_to_decide,
    subjects_listing,
    subjects_to_decide,
)

SearchKind = Literal["subject", "subject_post", "resource", "action"]
# What each search decides: how many decisions it makes at most (for the pool's choice), and the listing itself.
_KINDS: Mapping[
    SearchKind,
    tuple[Callable[[CompiledOrg, Check], int], Callable[[CompiledOrg, Check, Permits], Listing]],
] = {
    "subject": (subjects_to_decide, subjects_listing),
    "subject_post": (subjects_to_decide, posts_listing),
    "resource": (resources_to_decide, resources_listing),
    "action": (actions_to_decide, actions_listing),
}


class Search:
    def __init__(self, decisions: DecisionService, listings: Listings) -> None:
        self._decisions = decisions
        self._listings = listings

    async def ids(self, kind: SearchKind, question: Question) -> tuple[str, ...]:
        """Every result of the search, in listing order (none when the organisation is not found)."""
        found = resolve_organisation(self._decisions.policies, question)
        if found is None:
            return ()
        to_decide, listing = _KINDS[kind]
        check = to_check(question)
        decisions = self._decisions
        actions = found.action_order.get(check.resource_type, ()) if kind == "action" else (check.action,)
        ruled = None
        if decisions.rules_read_by(found, check.resource_type, tuple(actions)):
            ruled = (decisions.policies.version_of(found.id), decisions.facts.generation)
        permits = decisions.permitter(found, question)
        key = self._listings.key(found, kind, check, ruled)
        result = await self._listings.get(key, to_decide(found, check), lambda: listing(found, check, permits))
        return result.ids

    def subject_search_question(self, question: Question) -> Question:
        """A subject search's organisation: the one the caller names (the path, the context, the resource's
        properties: `named_organisation`); else the only organisation with the resource type (there is no subject
        to locate it by)."""
        named = named_organisation(question) or sole_owner(self._decisions.policies, question.resource_type)
        return replace(question, organisation=named)
