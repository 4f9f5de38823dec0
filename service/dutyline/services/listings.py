"""Whole-organisation listings (who may do X, the AuthZEN searches): computed once, paged from memory, and the
big ones computed off the event loop, a bounded number at a time.

A listing decides every candidate (35,000 people for "who may view reports" in a 200k-line organisation: half a
second of CPU). Computed on the event loop, it stalls every other request meanwhile; computed again for each
page, a client walking a listing pays it once per page. So:

- A listing is kept, in order, under (organisation, compiled version, query): a new version is a new key, so a
  kept listing is never stale. Pages are cut from it (`api.paging` keeps every page at the listing's instant).
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
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import msgspec

from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.decision import Check
from dutyline.engines.queries import posts_allowed
from dutyline.errors import Unavailable
from dutyline.services.decisions import actions_allowed, resources_allowed, subjects_allowed
from dutyline.services.metrics import LISTINGS_COMPUTED, LISTINGS_REFUSED, LISTINGS_RUNNING, LISTINGS_SERVED_CACHED

# Candidates (decisions to make) below which a listing is computed in place: about 2 ms of CPU.
_INLINE_BELOW = 2_000

ListingKey = tuple[str, int, str]  # organisation, compiled version, digest of the query


@dataclass(frozen=True, slots=True)
class Listing:
    """A listing's ids in order, and (for "who may") the posts that may, with their names (id, zh, en)."""

    ids: tuple[str, ...]
    posts: tuple[tuple[str, str, str], ...] = ()

    @property
    def size(self) -> int:
        return len(self.ids) + len(self.posts)


def listing_key(org: CompiledOrg, kind: str, *query: Any) -> ListingKey:
    """The key of a listing: everything the answer depends on (the instant included) besides the organisation's
    version, hashed, so that a key is small whatever the query's context holds."""
    digest = hashlib.sha256(msgspec.json.encode([kind, *query])).hexdigest()
    return (org.id, org.version, digest)


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


def who_may(org: CompiledOrg, check: Check) -> Listing:
    """The people who may do the check's action on its resource (id order), and the posts that may."""
    people = subjects_allowed(org, check)
    names = {post.id: (post.id, post.name.zh, post.name.en) for post in org.document.posts}
    posts = posts_allowed(org, check.resource_type, check.action)
    return Listing(tuple(people), tuple(names.get(p, (p, p, p)) for p in posts))


def subjects_to_decide(org: CompiledOrg, check: Check) -> int:
    """How many decisions `who_may` makes (at most): the holders of every post granted the action, and those posts."""
    grantees = org.grantees.get((check.resource_type, check.action), ())
    return len(grantees) + sum(len(org.holders.get(post, ())) for post in grantees)


def subjects_listing(org: CompiledOrg, check: Check) -> Listing:
    return Listing(tuple(subjects_allowed(org, check)))


def resources_listing(org: CompiledOrg, check: Check) -> Listing:
    return Listing(tuple(resources_allowed(org, check)))


def resources_to_decide(org: CompiledOrg, check: Check) -> int:
    return len(org.instance_ids.get(check.resource_type, ()))


def actions_listing(org: CompiledOrg, check: Check) -> Listing:
    return Listing(tuple(actions_allowed(org, check)))


def actions_to_decide(org: CompiledOrg, check: Check) -> int:
    return len(org.action_order.get(check.resource_type, ()))
