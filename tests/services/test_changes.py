"""The change feed behind `GET /v1/changes`, on each database, with small bounds so that every path is taken: a
subscriber that fell behind what is kept in memory reads the rest from the store, a page at a time, and gets every
version exactly once and in order; a replay from `since` pages through the store too; an organisation filter keeps
the others' versions out; the number of streams is bounded; `close()` ends every stream."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from dutyline.errors import Invalid, Unavailable
from dutyline.orgmodel.document import Assignment, Names, Organisation, Person
from dutyline.orgmodel.validate import parse_organisation
from dutyline.services import orgs
from dutyline.services.changes import ChangeFeed, Event, KeepAlive
from tests.aio import run_apart

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 30.0


def _org(name: str) -> Organisation:
    path = REPO / "policies" / "orgs" / f"{name}.yaml"
    return parse_organisation(path.read_text(encoding="utf-8"), path.name).organisation


def hire(sessions: sessionmaker[Session], org: Organisation, post: str) -> int:
    """A new person in `org` (saved as `dutyline import` saves): the policy version it made."""
    org.people.append(
        Person(id=f"p_{uuid.uuid4().hex[:8]}", name=Names(zh="新人", en="New"), assignments=[Assignment(post=post)])
    )
    [saved] = orgs.save_documents(sessions, [org], author="test", comment="hire")
    return saved.version


async def _always() -> bool:
    return True


async def _take(stream: AsyncIterator[Event | KeepAlive], count: int) -> list[Event]:
    """The next `count` events (keep-alives skipped)."""
    found: list[Event] = []
    while len(found) < count:
        item = await asyncio.wait_for(anext(stream), DEADLINE)
        if isinstance(item, Event):
            found.append(item)
    return found


async def _pumped(feed: ChangeFeed, version: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while feed._head < version:
        assert time.monotonic() < deadline, f"the feed did not reach version {version}"
        await asyncio.sleep(0.01)


def test_a_subscriber_behind_memory_gets_every_version_once_from_the_store(sessions: sessionmaker[Session]) -> None:
    sales, hotel = _org("sales_company"), _org("hotel")

    async def run() -> None:
        feed = ChangeFeed(sessions, page=2, recent=2, keepalive=60)
        await feed.start()
        slow = feed.events(feed.reserve("test"), None, None, lambda org, kind: kind == "org", _always)
        [ready] = await _take(slow, 1)
        assert ready.name == "ready" and ready.id == 0
        made = []
        for index in range(7):  # the slow subscriber reads none of them meanwhile
            org, post = (sales, "sales_representative") if index % 3 else (hotel, "general_manager")
            made.append(await asyncio.to_thread(hire, sessions, org, post))
            feed.applied(made[-1])
            await _pumped(feed, made[-1])
        assert feed._floor > made[0], "the first versions are no longer kept in memory"
        events = await _take(slow, len(made))
        assert [e.id for e in events] == made and {e.name for e in events} == {"change"}
        assert events[0].data.author == "test"  # type: ignore[union-attr]
        # A replay from the beginning pages through the store; one narrowed to hotel hears only hotel.
        replay = feed.events(feed.reserve("test"), 0, None, lambda org, kind: False, _always)
        replayed = await _take(replay, len(made) + 1)
        assert [e.id for e in replayed] == [*made, made[-1]] and replayed[-1].name == "ready"
        assert replayed[0].data.author is None  # type: ignore[union-attr]  # not for this subscriber
        narrowed = feed.events(feed.reserve("test"), 0, frozenset({"hotel"}), lambda org, kind: False, _always)
        ours = [v for i, v in enumerate(made) if i % 3 == 0]
        assert [e.id for e in await _take(narrowed, len(ours) + 1)] == [*ours, made[-1]]
        assert feed.streams == 3
        with pytest.raises(Unavailable):
            ChangeFeed(sessions, max_streams=0).reserve("test")
        with pytest.raises(Invalid, match="since: version"):
            feed.starting_point(made[-1] + 1, "since")
        feed.close()
        for stream in (slow, replay, narrowed):
            assert [item async for item in stream] == [], "close() ends every stream"
        assert feed.streams == 0

    run_apart(run())
