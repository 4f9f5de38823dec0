"""Questions about the policy as a whole: what a person may do, who may do something, the reporting line.

Each answers on the organisation now, or (`as_of`) as it was in force then, at a moment the caller names in the
organisation's time zone (default: now, or the `as_of` moment). Paging is the HTTP layer's (its tokens are signed
per caller and request); a listing here is the whole list.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.decision import Check
from dutyline.engines.queries import HeldPermission, holders_of, permissions_of, reporting_line
from dutyline.errors import Invalid, Issue, IssueCode, NotFound
from dutyline.orgmodel.windows import moment, when
from dutyline.services.listings import Listing, Listings, subjects_to_decide, who_may
from dutyline.services.policies import PolicyService
from dutyline.services.shapes import Shape, Texts
from dutyline.services.versions import Versions

Kind = Literal["primary", "concurrent", "acting"]


class PersonPermissions(Shape):
    organisation: str
    person: str
    policy_version: int
    at: float
    permissions: list[HeldPermission]


class HeldPost(Shape):
    post: str
    kind: Kind
    valid_from: str | None
    valid_to: str | None


class PersonAllowed(Shape):
    id: str
    posts: list[HeldPost]


class NamedPost(Shape):
    id: str
    name: Texts


class WhoMay(Shape):
    """The people (a page of them) and the posts that may do an action on a resource."""

    organisation: str
    policy_version: int
    resource: str
    action: str
    people: list[PersonAllowed]
    posts: list[NamedPost]
    total_people: int
    next_token: str


class LineHolder(Shape):
    person: str
    kind: Kind
    valid_to: str | None


class LineStep(Shape):
    post: str
    name: Texts
    holders: list[LineHolder]
    vacant: bool


class ReportingLine(Shape):
    organisation: str
    post: str
    holders: list[str]
    line: list[LineStep]


@dataclass(frozen=True, slots=True)
class Asked:
    """The organisation a query answers on, and the moment `as_of` named (None: now)."""

    org: CompiledOrg
    then: float | None
    policy_version: int  # the version the answer says it was decided on

    def at(self, text: str | None) -> float:
        """The moment asked about: `text` in the organisation's zone; else the `as_of` moment; else now."""
        if text is not None:
            return moment(text, self.org.document.timezone)
        return self.then if self.then is not None else time.time()


@dataclass(frozen=True, slots=True)
class WhoListing:
    asked: Asked
    resource: str
    action: str
    at: float
    listing: Listing


class Queries:
    def __init__(self, policies: PolicyService, versions: Versions, listings: Listings) -> None:
        self._policies = policies
        self._versions = versions
        self._listings = listings

    def organisation(self, org_id: str, as_of: str | None = None) -> Asked:
        """The organisation now, or (with `as_of`) as it was in force then, from the version history (a read)."""
        current = self._policies.current
        if as_of is None:
            org = current.get(org_id)
            if org is None:
                raise NotFound(f"organisation {org_id!r} not found")
            return Asked(org, None, current.version)
        known = current.get(org_id)
        then = when(as_of, known.document.timezone if known is not None else None, "as_of").astimezone(dt.UTC)
        past = self._versions.compiled_at(org_id, then)
        if past is None:
            raise NotFound(f"organisation {org_id!r} did not exist at {then.isoformat()}")
        return Asked(past, then.timestamp(), past.version)

    def permissions(self, asked: Asked, person: str, at: str | None) -> PersonPermissions:
        org = asked.org
        person_id = org.identities.get(person)
        if person_id is None:
            raise NotFound(f"person {person!r} not found in {org.id!r}")
        instant = asked.at(at)
        return PersonPermissions(
            org.id, person_id, asked.policy_version, instant, permissions_of(org, person_id, instant)
        )

    async def who(self, asked: Asked, resource: str, action: str, resource_id: str | None, at: float) -> WhoListing:
        """Everyone who may do `action` on `resource` at `at` (kept by `Listings`: a page of a long list costs
        nothing more than its slice)."""
        org = asked.org
        if resource not in org.actions or action not in org.actions[resource]:
            raise Invalid(
                f"{resource!r} has no action {action!r} in {org.id!r}'s catalogue",
                [
                    Issue(
                        "<request>",
                        0,
                        "resource" if resource not in org.actions else "action",
                        "not in the catalogue",
                        code=IssueCode.UNKNOWN_RESOURCE if resource not in org.actions else IssueCode.UNKNOWN_ACTION,
                    )
                ],
            )
        check = Check("", resource, action, at, resource_id=resource_id)
        key = self._listings.key(org, "who", check)
        listing = await self._listings.get(key, subjects_to_decide(org, check), lambda: who_may(org, check))
        return WhoListing(asked, resource, action, at, listing)

    @staticmethod
    def who_page(found: WhoListing, people: Sequence[str], next_token: str) -> WhoMay:
        org = found.asked.org
        return WhoMay(
            organisation=org.id,
            policy_version=found.asked.policy_version,
            resource=found.resource,
            action=found.action,
            people=[
                PersonAllowed(
                    p,
                    [
                        HeldPost(a.post, a.kind, a.valid_from, a.valid_to)
                        for a in org.assignments[p]
                        if a.active(found.at)
                    ],
                )
                for p in people
            ],
            posts=[NamedPost(p, Texts(zh, en)) for p, zh, en in found.listing.posts],
            total_people=len(found.listing.ids),
            next_token=next_token,
        )

    def reporting_line(self, org_id: str, post: str, at: str | None) -> ReportingLine:
        """The posts above `post` (直接上级, then theirs …), each with its holders at the moment."""
        asked = self.organisation(org_id)
        org = asked.org
        if post not in org.posts:
            raise NotFound(f"post {post!r} not found in {org_id!r}")
        instant = asked.at(at)
        names = org.post_names
        line = [
            LineStep(
                s.post,
                Texts(*names.get(s.post, (s.post, s.post))),
                [LineHolder(h.person, h.assignment.kind, h.assignment.valid_to) for h in s.holders],
                vacant=not s.holders,
            )
            for s in reporting_line(org, post, instant)
        ]
        return ReportingLine(org.id, post, [h.person for h in holders_of(org, post, instant)], line)
