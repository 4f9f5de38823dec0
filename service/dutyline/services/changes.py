"""The change stream (`GET /v1/changes`): every new policy version, which organisations, documents and entities it
changed, as it is stored here or on any other replica, and every earlier one from a version the caller names.

A policy version is one stored version of one document (an organisation's, or one of its rule packs), so an event
is one version: its organisation, the document, and the entities added, removed or changed against the document's
version before it (`orgmodel.diff.summarise`, as the version history's diff says). Events are made from the stored
versions, so a replay is exactly what was stored, whichever replica stored it.

How it is fed: `PolicyService` calls `applied(version)` after each swap of the compiled policy, on whichever thread
refreshed (an edit on this replica, the LISTEN/NOTIFY listener on PostgreSQL, the periodic refresh on SQLite). One
pump task then reads the new versions from the store once, for every subscriber, and keeps the newest `recent` of
them in memory. Subscribers hold no queue of their own: each has a cursor (the version it has been given everything
up to) and reads what is after it, from memory while it is recent enough, else from the store a page at a time (a
replay from `since`, or a subscriber that fell behind). So a slow or stalled subscriber costs its cursor and its
connection's send buffer, never memory that grows, and never holds up the pump or the others: nobody waits for it.

Bounds: at most `max_streams` streams at once in a process (one more is a 503 with Retry-After); a comment every
`keepalive` seconds (proxies do not time the stream out, a dead connection is noticed, and the caller's credentials
are looked at again: a revoked token's stream ends); `close()` ends every stream (the server is stopping).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from sqlalchemy.orm import Session, sessionmaker

from dutyline.errors import Invalid, Issue, Unavailable
from dutyline.orgmodel.diff import ORG_COLLECTIONS, PACK_COLLECTIONS, summarise
from dutyline.services.metrics import CHANGE_STREAMS, CHANGE_STREAMS_REFUSED
from dutyline.services.shapes import Shape
from dutyline.store import history
from dutyline.store import orgs as org_store
from dutyline.store.tables import OrgVersionRow

log = logging.getLogger("dutyline.changes")

MAX_VERSION = 2**63 - 1  # a policy version is a 64-bit integer in the store
_RETRY = 1.0  # seconds before the pump reads the store again after it failed


class ChangedDocument(Shape, kw_only=True):
    """The document a version made: the organisation's (`kind` org) or rule pack `name`'s; `revision` its own
    counter; `deleted` when the version deleted it; `fields` the top-level keys other than entities that changed."""

    organisation: str
    kind: Literal["org", "rules"]
    name: str | None = None
    revision: int
    deleted: bool
    fields: list[str] = []


class ChangedEntity(Shape):
    """An entity the version added, removed or changed: `kind` is the collection the admin API names it by
    (departments, posts, people, resources, groups, separation_of_duties; rules, case_types in a rule pack)."""

    organisation: str
    kind: str
    id: str
    change: Literal["added", "removed", "changed"]


class PolicyChange(Shape, kw_only=True):
    """One new policy version (the event's `id` too): when it was stored, the organisations and documents it
    changed, and the entities (at most `DUTYLINE_CHANGES_MAX_ENTITIES`; `entities_truncated` when there were more:
    take the whole organisation as changed). `author` and `comment` are sent only to a caller that may read the
    organisation's version history in the admin API."""

    policy_version: int
    at: str
    organisations: list[str]
    documents: list[ChangedDocument]
    entities: list[ChangedEntity]
    entities_truncated: bool = False
    author: str | None = None
    comment: str | None = None


class CaughtUp(Shape):
    """The `ready` event: the caller has been given every change it may see up to `policy_version` (the event's
    `id`); what follows is live. Sent once the replay from `since` is done (at once without `since`)."""

    policy_version: int


@dataclass(frozen=True, slots=True)
class Event:
    """What a stream sends: `name` change or ready, the id (a policy version) and the data."""

    name: Literal["change", "ready"]
    id: int
    data: PolicyChange | CaughtUp


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """Nothing happened for `keepalive` seconds: a comment line."""


class _Slot:
    """One stream's place under `max_streams`, given back once (when the stream ends, or when it is collected
    without ever having started: an async generator never iterated runs no `finally`)."""

    __slots__ = ("__weakref__", "_caller", "_feed", "_held")

    def __init__(self, feed: ChangeFeed, caller: str) -> None:
        self._feed = feed
        self._caller = caller
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._feed._release(self._caller)


class ChangeFeed:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        max_streams: int = 100,
        max_per_caller: int = 10,
        keepalive: float = 15.0,
        max_entities: int = 1000,
        page: int = 100,
        recent: int = 1024,
    ) -> None:
        self._sessions = sessions
        self.max_streams = max_streams
        self.max_per_caller = max_per_caller
        self._by_caller: collections.Counter[str] = collections.Counter()  # streams open, by caller
        self.keepalive = keepalive
        self._max_entities = max_entities
        self._page = page
        self._recent_size = recent
        # What the events kept in memory may hold in all, beside their number: one import can change thousands of
        # entities, and each event lists up to `max_entities`.
        self._recent_entities = max(recent, 100_000)
        self._held = 0  # entities in `_recent`
        self.streams = 0
        # The pump's state, touched on the event loop only: every version in (floor, head], oldest first.
        self._recent: collections.deque[PolicyChange] = collections.deque()
        self._floor = 0
        self._head = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._signal: asyncio.Event | None = None
        self._moved: asyncio.Event | None = None  # set (and replaced) whenever head moves, or the feed closes
        self._pump: asyncio.Task[None] | None = None
        self._closed = False
        # Events already made, by version (making one reads two versions of a document and compares them).
        self._made: collections.OrderedDict[int, PolicyChange] = collections.OrderedDict()
        self._made_entities = 0
        self._made_lock = threading.Lock()

    # --- lifecycle (the app's lifespan) -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the pump on the running loop, from the newest version stored now."""
        self._loop = asyncio.get_running_loop()
        self._signal, self._moved = asyncio.Event(), asyncio.Event()
        self._head = self._floor = await asyncio.to_thread(self._latest)
        self._pump = asyncio.create_task(self._run_pump(), name="dutyline-changes")

    def applied(self, version: int) -> None:
        """Called by the policy service after it swapped in `version`, on any thread; never blocks."""
        loop, signal = self._loop, self._signal
        if loop is None or signal is None or version <= self._head:
            return
        try:
            loop.call_soon_threadsafe(signal.set)
        except RuntimeError:  # the loop has closed: the server is stopping
            pass

    def close(self) -> None:
        """End every stream (on the event loop): they finish the event they are sending and stop."""
        self._closed = True
        if self._moved is not None:
            self._moved.set()
        if self._pump is not None:
            self._pump.cancel()

    async def _run_pump(self) -> None:
        assert self._signal is not None
        while not self._closed:
            await self._signal.wait()
            self._signal.clear()
            try:
                while await self._pump_page():
                    pass
            except Exception:  # the database may be down: look again in a moment (nothing is lost: it reads after head)
                log.warning("the change stream could not read new policy versions; retrying", exc_info=True)
                await asyncio.sleep(_RETRY)
                self._signal.set()

    async def _pump_page(self) -> bool:
        """Read one page of versions after head into memory and wake the streams; True if there may be more."""
        changes, seen = await asyncio.to_thread(self._read, self._head, None)
        for change in changes:
            self._recent.append(change)
            self._held += len(change.entities)
        while len(self._recent) > self._recent_size or self._held > self._recent_entities:
            dropped = self._recent.popleft()
            self._held -= len(dropped.entities)
            self._floor = dropped.policy_version
        moved = seen > self._head
        self._head = max(self._head, seen)
        if moved and self._moved is not None:
            woken, self._moved = self._moved, asyncio.Event()
            woken.set()
        return len(changes) >= self._page

    # --- streams ----------------------------------------------------------------------------------------------

    def starting_point(self, since: int | None, field: str) -> int | None:
        """Check a `since` (or Last-Event-ID) against the store: a version it has, or 0 (from the beginning).
        Read before the stream starts, so that a bad one is a 400 naming `field` and not a broken stream. History
        is never pruned, so no version is too old."""
        if since is None:
            return None
        latest = self._latest()
        if since > latest:
            raise Invalid(
                f"{field}: version {since} is newer than any stored ({latest}): it was not given by this "
                "deployment's change stream; start again without it (or with since=0 for the whole history)",
                [Issue("<request>", 0, field, f"at most {latest}")],
            )
        return since

    def reserve(self, caller: str) -> _Slot:
        """A place for one more stream of `caller`, or Unavailable (503, Retry-After) at `max_streams`, or at
        `max_per_caller` of this caller's (so that one caller cannot take every place)."""
        if self._closed:
            raise Unavailable("the server is stopping; reconnect (to another replica)", retry_after=1)
        if self.streams >= self.max_streams:
            CHANGE_STREAMS_REFUSED.inc()
            raise Unavailable(
                f"{self.streams} change streams are open on this server already (DUTYLINE_CHANGES_STREAMS); "
                "retry shortly",
                retry_after=5,
            )
        if self._by_caller[caller] >= self.max_per_caller:
            CHANGE_STREAMS_REFUSED.inc()
            raise Unavailable(
                f"{caller} has {self._by_caller[caller]} change streams open on this server already "
                "(DUTYLINE_CHANGES_STREAMS_PER_CALLER); close one, or retry shortly",
                retry_after=5,
            )
        self.streams += 1
        self._by_caller[caller] += 1
        CHANGE_STREAMS.set(self.streams)
        return _Slot(self, caller)

    def _release(self, caller: str) -> None:
        self.streams -= 1
        self._by_caller[caller] -= 1
        if self._by_caller[caller] <= 0:
            del self._by_caller[caller]
        CHANGE_STREAMS.set(self.streams)

    def events(
        self,
        slot: _Slot,
        since: int | None,
        organisations: frozenset[str] | None,
        authors: Callable[[str, str], bool],
        alive: Callable[[], Awaitable[bool]],
    ) -> AsyncIterator[Event | KeepAlive]:
        """The stream of one subscriber: the changes after `since` it may see (organisations None: every one), a
        `ready` event once caught up, then each new change as it comes. `authors(organisation, kind)` says whether
        it may see who made a change and why; `alive()` whether its credentials still stand (asked at each
        keep-alive; False ends the stream)."""
        stream = self._stream(slot, since, organisations, authors, alive)
        weakref.finalize(stream, slot.release)
        return stream

    async def _stream(
        self,
        slot: _Slot,
        since: int | None,
        organisations: frozenset[str] | None,
        authors: Callable[[str, str], bool],
        alive: Callable[[], Awaitable[bool]],
    ) -> AsyncIterator[Event | KeepAlive]:
        try:
            cursor = self._head if since is None else since
            caught_up = since is None
            if caught_up:
                yield Event("ready", cursor, CaughtUp(cursor))
            while not self._closed:
                assert self._moved is not None
                moved = self._moved  # taken before looking: a move while we look or send sets it
                # A replay reads the store, up to what it holds now (`ready` then means caught up with the store, not
                # with this replica); so does a subscriber behind what is kept in memory. A page at a time.
                if not caught_up or cursor < self._floor:
                    try:
                        changes, seen = await asyncio.to_thread(self._read, cursor, organisations)
                    except Exception:  # the database went away: end the stream; the caller resumes from its id
                        log.warning("a change stream could not read the store; ending it", exc_info=True)
                        return
                    more = len(changes) >= self._page
                else:
                    changes, seen, more = self._in_memory(cursor, organisations), self._head, False
                for change in changes:
                    if self._closed:
                        return
                    yield Event("change", change.policy_version, _shown(change, authors))
                cursor = max(cursor, seen)
                if more or changes:
                    continue
                if not caught_up:  # the replay is done: say so once
                    caught_up = True
                    yield Event("ready", cursor, CaughtUp(cursor))
                    continue
                try:
                    await asyncio.wait_for(moved.wait(), self.keepalive)
                except TimeoutError:
                    if not await _standing(alive):
                        return
                    yield KeepAlive()
        finally:
            slot.release()

    def _in_memory(self, cursor: int, organisations: frozenset[str] | None) -> list[PolicyChange]:
        found: list[PolicyChange] = []
        for change in reversed(self._recent):
            if change.policy_version <= cursor:
                break
            if organisations is None or change.organisations[0] in organisations:
                found.append(change)
        found.reverse()
        return found

    # --- the store --------------------------------------------------------------------------------------------

    def _latest(self) -> int:
        with self._sessions() as session:
            return org_store.latest_version(session)

    def _read(self, after: int, organisations: frozenset[str] | None) -> tuple[list[PolicyChange], int]:
        """A page of changes after `after` (of `organisations` only, unless None), and the version seen up to."""
        with self._sessions() as session:
            rows, seen = history.versions_after(session, after, self._page, organisations)
            return [self._change(session, row) for row in rows], seen

    def _change(self, session: Session, row: OrgVersionRow) -> PolicyChange:
        with self._made_lock:
            made = self._made.get(row.version)
            if made is not None:
                self._made.move_to_end(row.version)
                return made
        made = self._make(row, history.previous(session, row))
        with self._made_lock:
            self._made[row.version] = made
            self._made_entities += len(made.entities)
            while len(self._made) > self._recent_size or self._made_entities > self._recent_entities:
                self._made_entities -= len(self._made.popitem(last=False)[1].entities)
        return made

    def _make(self, row: OrgVersionRow, before: OrgVersionRow | None) -> PolicyChange:
        kind: Literal["org", "rules"] = "org" if row.kind == "org" else "rules"
        summary = summarise(_plain(before), _plain(row), ORG_COLLECTIONS if kind == "org" else PACK_COLLECTIONS)
        entities = [
            ChangedEntity(row.org_id, collection, str(ident), change)
            for collection, entry in summary.items()
            if collection != "fields"
            for change in ("added", "removed", "changed")
            for ident in entry[change]
        ]
        document = ChangedDocument(
            organisation=row.org_id,
            kind=kind,
            name=row.name or None,
            revision=row.revision,
            deleted=row.document is None,
            fields=list(summary.get("fields", [])),
        )
        return PolicyChange(
            policy_version=row.version,
            at=row.created_at.isoformat(),
            organisations=[row.org_id],
            documents=[document],
            entities=entities[: self._max_entities],
            entities_truncated=len(entities) > self._max_entities,
            author=row.author,
            comment=row.comment,
        )


async def _standing(alive: Callable[[], Awaitable[bool]]) -> bool:
    """Whether the subscriber's credentials still stand; when that cannot be known (the database is down), no: the
    stream ends, and the caller's reconnection is answered as any request is then."""
    try:
        return await alive()
    except Exception:
        log.warning("a change stream's credentials could not be checked; ending it", exc_info=True)
        return False


def _plain(row: OrgVersionRow | None) -> Any:
    """A stored document as plain data (None: none, or a deletion; a row that cannot be read: nothing to compare)."""
    if row is None or row.document is None:
        return None
    try:
        return json.loads(row.document)
    except ValueError:
        return None


def _shown(change: PolicyChange, authors: Callable[[str, str], bool]) -> PolicyChange:
    """The change as this subscriber may see it: who made it and why only if it may read the history."""
    if authors(change.organisations[0], change.documents[0].kind):
        return change
    return msgspec.structs.replace(change, author=None, comment=None)
