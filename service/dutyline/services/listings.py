"""Whole-organisation listings (who may do X, the AuthZEN searches): computed once, paged from memory, and the
big ones computed off the event loop, a bounded number at a time.

A listing decides every candidate (35,000 people for "who may view reports" in a 200k-line organisation: half a
second of CPU). Computed on the event loop, it stalls every other request meanwhile; computed again for each
page, a client walking a listing pays it once per page. So:

- A listing is kept, in order, under (organisation, compiled version, query): a new version is a new key, so a
  kept listing is never stale. The query's instant counts only as far as assignment windows tell instants
  apart (`Listings.key`), so repeated requests "now" share one listing too. Pages are cut from it (`api.paging`
  keeps every page of one listing at the instant of its first).
  The cache is an LRU bounded in listings and in the ids they hold in all (`DUTYLINE_QUERY_CACHE_ENTRIES`,
  `DUTYLINE_QUERY_CACHE_IDS`); the ids are the compiled organisation's own strings, so a listing costs about a
  pointer per id.
- A listing of more than `_INLINE_BELOW` candidates is computed on a pool of `DUTYLINE_QUERY_WORKERS` threads;
  beyond that many at once the request is refused (503, Retry-After) rather than queued: queued work of this
  kind only grows, and each running one takes interpreter time from the decisions (the GIL: threads do not add
  CPU to pure-Python work, they only keep it off the event loop). Identical requests arriving while one is
  computed wait for that one (they take no slot).
- A small listing is computed in place: handing it to a thread would cost more than it does.

Only the event loop's thread uses the cache and the counters (the pool's results arrive there as callbacks).
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import msgspec

from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.decision import Check, decide
from dutyline.engines.queries import posts_allowed
from dutyline.errors import Unavailable
from dutyline.services.decisions import actions_allowed, posts_permitted, resources_allowed, subjects_allowed
from dutyline.services.metrics import LISTINGS_COMPUTED, LISTINGS_REFUSED, LISTINGS_RUNNING, LISTINGS_SERVED_CACHED

# Candidates (decisions to make) below which a listing is computed in place: about 2 ms of CPU.
_INLINE_BELOW = 2_000
# Compiled organisations whose assignment-window edges are kept (a few hundred bytes to a few MB each).
_EDGES_KEPT = 64

ListingKey = tuple[str, int, str]  # organisation, compiled version, digest of the query


@dataclass(frozen=True, slots=True)
class Listing:
    """A listing's ids in order, and (for "who may") the posts that may, with their names (id, zh, en)."""

    ids: tuple[str, ...]
    posts: tuple[tuple[str, str, str], ...] = ()

    @property
    def size(self) -> int:
        return len(self.ids) + len(self.posts)


class Listings:
    def __init__(self, max_entries: int, max_ids: int, workers: int) -> None:
        self._max_entries = max_entries
        self._max_ids = max_ids
        self._workers = workers
        self._cache: OrderedDict[ListingKey, Listing] = OrderedDict()
        self._ids = 0
        self._computing: dict[ListingKey, asyncio.Future[Listing]] = {}
        self._running = 0
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dutyline-listing")
        self._window_edges: OrderedDict[tuple[str, int], tuple[float, ...]] = OrderedDict()

    def key(self, org: CompiledOrg, kind: str, check: Check, ruled: tuple[int, int] | None = None) -> ListingKey:
        """The key of the listing `kind` of `check` in `org`: everything the answer depends on, hashed (a key is
        small whatever the query's context holds).

        Without business rules (`ruled` None), the instant enters only as the span between two assignment-window
        edges it falls in: the duty decision reads time only through assignment windows
        (`AssignmentWindow.active`, half-open), so every instant of a span has the same listing, and one listing
        asked "now" serves every request until the next edge. A listing some rule applies to (`ruled`: the policy
        version the rules are at and the facts' generation) depends on the exact instant (business hours, limit
        periods) and on the facts (usage totals, approval history): it is kept for its exact instant (so the
        pages of one walk share it) and only until the facts change.
        """
        if ruled is None:
            when: object = bisect.bisect_right(self._edges(org), check.at)
        else:
            when = [check.at, *ruled]
        digest = hashlib.sha256(msgspec.json.encode([kind, when, replace(check, at=0.0)])).hexdigest()
        return (org.id, org.version, digest)

    def _edges(self, org: CompiledOrg) -> tuple[float, ...]:
        """Every instant at which some assignment of `org` starts or ends, in order (kept per compiled version)."""
        key = (org.id, org.version)
        edges = self._window_edges.get(key)
        if edges is None:
            found = {edge for windows in org.assignments.values() for a in windows for edge in (a.start, a.end)}
            found.discard(None)
            edges = self._window_edges[key] = tuple(sorted(found))  # type: ignore[arg-type]
            while len(self._window_edges) > _EDGES_KEPT:
                self._window_edges.popitem(last=False)
        else:
            self._window_edges.move_to_end(key)
        return edges

    async def get(self, key: ListingKey, candidates: int, compute: Callable[[], Listing]) -> Listing:
        """The listing under `key`: kept, being computed, or computed now (in place, or on the pool when it has at
        least `_INLINE_BELOW` candidates). `Unavailable` (503) when the pool is full."""
        kept = self._cache.get(key)
        if kept is not None:
            self._cache.move_to_end(key)
            LISTINGS_SERVED_CACHED.inc()
            return kept
        pending = self._computing.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        if candidates < _INLINE_BELOW:
            LISTINGS_COMPUTED.inc()
            listing = compute()
            self._keep(key, listing)
            return listing
        if self._running >= self._workers:
            LISTINGS_REFUSED.inc()
            raise Unavailable(
                f"{self._running} big listing(s) are being computed already (DUTYLINE_QUERY_WORKERS={self._workers});"
                " retry shortly",
                retry_after=1,
            )
        self._running += 1
        LISTINGS_RUNNING.set(self._running)
        LISTINGS_COMPUTED.inc()
        future = asyncio.get_running_loop().run_in_executor(self._pool, compute)
        self._computing[key] = future
        future.add_done_callback(lambda done: self._finished(key, done))
        # shielded: a client that goes away does not cancel what others may be waiting for
        return await asyncio.shield(future)

    def _finished(self, key: ListingKey, done: asyncio.Future[Listing]) -> None:
        self._running -= 1
        LISTINGS_RUNNING.set(self._running)
        del self._computing[key]
        if not done.cancelled() and done.exception() is None:
            self._keep(key, done.result())

    def _keep(self, key: ListingKey, listing: Listing) -> None:
        if listing.size > self._max_ids or self._max_entries == 0:
            return
        previous = self._cache.pop(key, None)
        if previous is not None:
            self._ids -= previous.size
        self._cache[key] = listing
        self._ids += listing.size
        while len(self._cache) > self._max_entries or self._ids > self._max_ids:
            _, evicted = self._cache.popitem(last=False)
            self._ids -= evicted.size

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


# --- the listings -----------------------------------------------------------------------------------------------


Permits = Callable[[Check], bool]


def who_may(org: CompiledOrg, check: Check) -> Listing:
    """The people whose duties allow the check's action on its resource (id order), and the posts that may (the
    policy as such: `who` answers on the org model, with no request to read business rules against)."""
    people = subjects_allowed(org, check, lambda c: decide(org, c).allowed)
    names = {post.id: (post.id, post.name.zh, post.name.en) for post in org.document.posts}
    posts = posts_allowed(org, check.resource_type, check.action)
    return Listing(tuple(people), tuple(names.get(p, (p, p, p)) for p in posts))


def subjects_to_decide(org: CompiledOrg, check: Check) -> int:
    """How many decisions `who_may` makes (at most): the holders of every post granted the action, and those posts."""
    grantees = org.grantees.get((check.resource_type, check.action), ())
    return len(grantees) + sum(len(org.holders.get(post, ())) for post in grantees)


def subjects_listing(org: CompiledOrg, check: Check, permits: Permits) -> Listing:
    return Listing(tuple(subjects_allowed(org, check, permits)))


def posts_listing(org: CompiledOrg, check: Check, permits: Permits) -> Listing:
    return Listing(tuple(posts_permitted(org, check, permits)))


def resources_listing(org: CompiledOrg, check: Check, permits: Permits) -> Listing:
    return Listing(tuple(resources_allowed(org, check, permits)))


def resources_to_decide(org: CompiledOrg, check: Check) -> int:
    return len(org.instance_ids.get(check.resource_type, ()))


def actions_listing(org: CompiledOrg, check: Check, permits: Permits) -> Listing:
    return Listing(tuple(actions_allowed(org, check, permits)))


def actions_to_decide(org: CompiledOrg, check: Check) -> int:
    return len(org.action_order.get(check.resource_type, ()))
