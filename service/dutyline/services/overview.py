"""An organisation's home page in one answer: the state of its policy (revision, policy version, the last change,
changes waiting), what waits for people (approvals, cases), and what HR should look at in the chart now: vacant
posts, posts with more holders than their headcount, people holding posts separation of duties keeps apart, and
acting assignments that start or end this week.

"Now" and "this week" are the organisation's: its time zone names the day, and the week runs Monday to Sunday
there, so that an acting window ending on Sunday in Shanghai is this week's for a reader in London too.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Literal

from sqlalchemy.orm import Session, sessionmaker

from dutyline.engines.compiler import CompiledOrg
from dutyline.errors import NotFound
from dutyline.orgmodel.windows import zone
from dutyline.services.editing.pending import change_view
from dutyline.services.policies import PolicyService
from dutyline.services.shapes import Shape
from dutyline.services.versions import VersionInfo, Versions
from dutyline.store import approvals as approval_store
from dutyline.store import cases as case_store
from dutyline.store import changes as change_store
from dutyline.store import history as org_history
from dutyline.store import rule_packs as pack_store

# How many waiting changes the overview lists (the counts are complete; the approvals page lists them all).
LISTED_CHANGES = 5


class WaitingChange(Shape):
    id: str
    target: str
    method: str
    status: Literal["pending", "scheduled"]
    author: str
    comment: str
    created_at: str
    effective_at: str | None


class PolicyState(Shape):
    """`revision`: the organisation document's own counter; `version`: the policy version that made it;
    `policy_version`: the global policy version now (what checks answer with); `rule_packs`, `rules`: how many
    enabled rules the organisation's packs compile to."""

    revision: int
    version: int
    policy_version: int
    last_change: VersionInfo | None
    rule_packs: int
    rules: int


class ChangesWaiting(Shape):
    """Admin changes waiting: for a second person's approval (`pending`) or for their time (`scheduled`)."""

    pending: int
    scheduled: int
    items: list[WaitingChange]  # the newest few of them


class Waiting(Shape):
    """Business approvals pending, and cases not yet resolved (open or escalated)."""

    approvals: int
    cases_open: int
    cases_escalated: int


class Breach(Shape):
    post: str
    holders: list[str]
    headcount: int


class SodConflict(Shape):
    rule: str
    person: str
    posts: list[str]


class ActingWindow(Shape):
    """An acting assignment whose window starts or ends this week (`starts`, `ends`: which of them)."""

    person: str
    post: str
    stands_in_for: str | None
    valid_from: str | None
    valid_to: str | None
    starts: bool
    ends: bool


class Week(Shape):
    start: str  # Monday, yyyy-mm-dd in the organisation's zone
    end: str  # Sunday


class OrgOverview(Shape):
    organisation: str
    timezone: str
    at: str  # the moment the chart figures are for: now, in the organisation's zone (ISO, with its offset)
    week: Week
    policy: PolicyState
    waiting: Waiting
    vacant_posts: list[str]  # posts with a headcount and nobody holding them now
    headcount_breaches: list[Breach]
    sod_conflicts: list[SodConflict]
    acting_this_week: list[ActingWindow]
    changes: ChangesWaiting | None = None  # only for a caller who may read the organisation's changes


class Overview:
    def __init__(self, sessions: sessionmaker[Session], policies: PolicyService, versions: Versions) -> None:
        self._sessions = sessions
        self._policies = policies
        self._versions = versions

    def of(self, org_id: str, with_changes: bool, now: float | None = None) -> OrgOverview:
        """The organisation's overview at `now` (default: this moment); `with_changes`: list the admin changes
        waiting too (the caller may read them)."""
        current = self._policies.current
        org = current.get(org_id)
        if org is None:
            raise NotFound(f"organisation {org_id!r} not found")
        instant = time.time() if now is None else now
        tz = zone(org.document.timezone)
        local = dt.datetime.fromtimestamp(instant, tz)
        monday = local.date() - dt.timedelta(days=local.weekday())
        week_start = dt.datetime.combine(monday, dt.time(), tz).timestamp()
        week_end = dt.datetime.combine(monday + dt.timedelta(days=7), dt.time(), tz).timestamp()
        history = self._versions.history(org_id, 1)
        with self._sessions() as session:
            head = org_history.latest_of(session, org_id, "org")
            packs = pack_store.current(session, org_id)
            approvals = approval_store.status_counts(session, org_id)
            cases = case_store.status_counts(session, org_id)
            changes = change_store.status_counts(session, org_id) if with_changes else {}
            listed = (
                [
                    row
                    for status in change_store.OPEN
                    for row in change_store.query(session, status, None, org_id, LISTED_CHANGES)
                ]
                if with_changes
                else []
            )
        listed.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return OrgOverview(
            organisation=org_id,
            timezone=org.document.timezone,
            at=local.isoformat(timespec="seconds"),
            week=Week(monday.isoformat(), (monday + dt.timedelta(days=6)).isoformat()),
            policy=PolicyState(
                revision=head.revision if head is not None else 0,
                version=head.version if head is not None else org.version,
                policy_version=current.version,
                last_change=history[0] if history else None,
                rule_packs=len(packs),
                rules=sum(1 for p in packs if p.pack is not None for r in p.pack.rules if r.enabled),
            ),
            waiting=Waiting(
                approvals=approvals.get("pending", 0),
                cases_open=cases.get("open", 0),
                cases_escalated=cases.get("escalated", 0),
            ),
            vacant_posts=_vacant(org, instant),
            headcount_breaches=_breaches(org, instant),
            sod_conflicts=_conflicts(org, instant),
            acting_this_week=_acting(org, week_start, week_end),
            changes=ChangesWaiting(
                pending=changes.get("pending", 0),
                scheduled=changes.get("scheduled", 0),
                items=[
                    WaitingChange(
                        r.id,
                        r.target,
                        change_view(r).method,
                        "pending" if r.status == "pending" else "scheduled",
                        r.author,
                        r.comment,
                        r.created_at.isoformat(),
                        r.effective_at.isoformat() if r.effective_at is not None else None,
                    )
                    for r in listed[:LISTED_CHANGES]
                ],
            )
            if with_changes
            else None,
        )


def _holders_now(org: CompiledOrg, at: float) -> dict[str, list[str]]:
    """Post → the people holding it at `at` (acting holders inside their window), in document order."""
    held: dict[str, list[str]] = {post.id: [] for post in org.document.posts}
    for person, windows in org.assignments.items():
        for window in windows:
            if window.active(at) and person not in held.setdefault(window.post, []):
                held[window.post].append(person)
    return held


def _vacant(org: CompiledOrg, at: float) -> list[str]:
    held = _holders_now(org, at)
    return [post.id for post in org.document.posts if post.headcount > 0 and not held[post.id]]


def _breaches(org: CompiledOrg, at: float) -> list[Breach]:
    held = _holders_now(org, at)
    return [
        Breach(post.id, held[post.id], post.headcount)
        for post in org.document.posts
        if len(held[post.id]) > post.headcount
    ]


def _conflicts(org: CompiledOrg, at: float) -> list[SodConflict]:
    out: list[SodConflict] = []
    for rule in org.document.separation_of_duties:
        apart = set(rule.posts)
        for person in org.document.people:
            posts = sorted({w.post for w in org.assignments.get(person.id, ()) if w.post in apart and w.active(at)})
            if len(posts) >= 2:
                out.append(SodConflict(rule.id, person.id, posts))
    return out


def _acting(org: CompiledOrg, start: float, end: float) -> list[ActingWindow]:
    """Acting windows starting in [start, end) or ending in (start, end] (a window's end is exclusive: one
    ending at Monday 00:00 ended last week, on Sunday)."""
    out: list[ActingWindow] = []
    for person in org.document.people:
        for window in org.assignments.get(person.id, ()):
            if window.kind != "acting":
                continue
            starts = window.start is not None and start <= window.start < end
            ends = window.end is not None and start < window.end <= end
            if starts or ends:
                out.append(
                    ActingWindow(
                        person.id,
                        window.post,
                        window.stands_in_for,
                        window.valid_from,
                        window.valid_to,
                        starts,
                        ends,
                    )
                )
    return out
