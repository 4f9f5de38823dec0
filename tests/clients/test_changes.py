"""The client's change stream against the live server: `changes()` (sync and async) yields typed events from a
version and goes on live; it reconnects with Last-Event-ID when the connection breaks, missing nothing and
repeating nothing; a bad starting point raises; and the opt-in watcher empties the decision cache as soon as a new
policy version is announced. Changes are made in the store directly, as another replica or `dutyline import`
would (`_change_the_counter`)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dutyline_client import (
    AsyncClient,
    CaughtUp,
    ChangedDocument,
    Client,
    DecisionCache,
    InvalidRequest,
    PolicyChange,
    Retries,
)
from tests.aio import run_apart
from tests.clients.conftest import Dutyline, Sent
from tests.clients.test_behaviour import CHECK, ORG, _change_the_counter, eventually, tries
from tests.live import free_port

DEADLINE = 30.0


def _version(client: Client) -> int:
    return client.check(ORG, "ann", "transaction", "view").policy_version


def _until(stream: Iterator[Any], found: Callable[[list[Any]], bool]) -> list[Any]:
    """Items of the stream until `found` holds for those read (the stream's read timeout bounds each wait)."""
    items: list[Any] = []
    for item in stream:
        items.append(item)
        if found(items):
            return items
    raise AssertionError(f"the stream ended after {items}")


def test_changes_replays_from_since_then_goes_on_live_with_typed_events(dutyline: Dutyline, tmp_path: Path) -> None:
    with Client(dutyline.url, token=dutyline.token) as client:
        before = _version(client)
        made = [_change_the_counter(dutyline.server.database_url, tmp_path) for _ in range(2)]
        stream = client.changes(since=before, organisations=[ORG])
        replayed = _until(stream, lambda items: isinstance(items[-1], CaughtUp))
        assert [c.policy_version for c in replayed[:-1]] == made
        assert all(isinstance(c, PolicyChange) and c.organisations == [ORG] for c in replayed[:-1])
        document = replayed[0].documents[0]
        assert isinstance(document, ChangedDocument) and document.kind == "org" and document.fields == ["name"]
        assert replayed[-1].policy_version >= made[-1]
        live = _change_the_counter(dutyline.server.database_url, tmp_path)
        assert next(stream).policy_version == live
        stream.close()  # type: ignore[attr-defined]


def test_the_async_changes_go_on_live_too(dutyline: Dutyline, tmp_path: Path) -> None:
    async def run() -> tuple[int, int]:
        async with AsyncClient(dutyline.url, token=dutyline.token) as client:
            stream = client.changes()
            ready = await anext(stream)
            assert isinstance(ready, CaughtUp)
            made = await asyncio.to_thread(_change_the_counter, dutyline.server.database_url, tmp_path)
            change = await anext(stream)
            await stream.aclose()  # type: ignore[attr-defined]
            return made, change.policy_version

    made, heard = run_apart(run())
    assert heard == made


def test_a_bad_starting_point_raises_invalid_request_naming_it(dutyline: Dutyline) -> None:
    with Client(dutyline.url, token=dutyline.token) as client, pytest.raises(InvalidRequest) as raised:
        next(client.changes(since=10**15))
    assert [issue.path for issue in raised.value.issues] == ["since"]


class Cutter:
    """A TCP relay on a loopback port in front of the server, which can cut every connection through it at once
    (as a load balancer restarting would), and remembers the head of each request it relayed."""

    def __init__(self, port: int) -> None:
        self.port = free_port()
        self.requests: list[bytes] = []
        self._target = port
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self._listener.accept()
            except OSError:
                return
            far = socket.create_connection(("127.0.0.1", self._target))
            with self._lock:
                self._sockets += [near, far]
            threading.Thread(target=self._pipe, args=(near, far, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(far, near, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, request: bool) -> None:
        first = True
        try:
            while data := source.recv(65536):
                if request and first:
                    self.requests.append(data)
                    first = False
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        with self._lock:
            cut, self._sockets = self._sockets, []
        for end in cut:
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()

    def close(self) -> None:
        self._listener.close()
        self.cut()


def test_a_broken_stream_reconnects_with_last_event_id_and_misses_and_repeats_nothing(
    dutyline: Dutyline, tmp_path: Path
) -> None:
    relay = Cutter(dutyline.server.port)
    try:
        retries = Retries(attempts=20, backoff=0.05, max_backoff=0.5)
        with Client(f"http://127.0.0.1:{relay.port}", token=dutyline.token, retries=retries) as client:
            stream = client.changes(organisations=[ORG])
            ready = next(stream)
            assert isinstance(ready, CaughtUp)
            relay.cut()
            made = _change_the_counter(dutyline.server.database_url, tmp_path)
            items = _until(stream, lambda items: any(getattr(i, "policy_version", 0) >= made for i in items))
            stream.close()  # type: ignore[attr-defined]
        heads = [r.lower() for r in relay.requests if r.startswith(b"GET /v1/changes")]
        assert len(heads) >= 2 and f"last-event-id: {ready.policy_version}".encode() in heads[1], heads
        changes = [i.policy_version for i in items if isinstance(i, PolicyChange)]
        assert changes == [made], items  # once: neither missed while cut off nor given twice
    finally:
        relay.close()


def test_the_watcher_empties_the_cache_as_soon_as_a_new_version_is_announced(
    dutyline: Dutyline, sent: list[Sent], tmp_path: Path
) -> None:
    cache = DecisionCache(max_age=600)  # only the stream can make these answers go
    with Client(dutyline.url, token=dutyline.token, cache=cache) as client:
        watcher = client.watch_changes()
        assert client.watch_changes() is watcher
        assert watcher.connected.wait(DEADLINE)
        first = client.check(ORG, "ann", "transaction", "enter", resource_id="w1", context={"amount": 7})
        assert client.check(ORG, "ann", "transaction", "enter", resource_id="w1", context={"amount": 7}) == first
        assert tries(sent) == [200] and len(cache) == 1, "the second answer came from the cache"
        made = _change_the_counter(dutyline.server.database_url, tmp_path)
        assert eventually(lambda: len(cache) == 0, DEADLINE), "the cache still holds an answer of the old version"
        assert eventually(lambda: watcher.policy_version >= made, DEADLINE)
        third = client.check(ORG, "ann", "transaction", "enter", resource_id="w1", context={"amount": 7})
        assert tries(sent).count(200) == 2 and third.policy_version >= made
    assert not watcher.running, "close() stops the watcher"
    assert [s.operation for s in sent].count("GET /v1/changes") >= 1


def test_the_async_watcher_empties_the_cache_too(dutyline: Dutyline, sent: list[Sent], tmp_path: Path) -> None:
    async def run() -> None:
        cache = DecisionCache(max_age=600)
        async with AsyncClient(dutyline.url, token=dutyline.token, cache=cache) as client:
            watcher = client.watch_changes()
            await asyncio.wait_for(watcher.connected.wait(), DEADLINE)
            await client.check(ORG, "ann", "transaction", "enter", resource_id="w2", context={"amount": 8})
            assert len(cache) == 1
            made = await asyncio.to_thread(_change_the_counter, dutyline.server.database_url, tmp_path)
            deadline = time.monotonic() + DEADLINE
            while len(cache) or watcher.policy_version < made:
                assert time.monotonic() < deadline, "the cache still holds an answer of the old version"
                await asyncio.sleep(0.05)
        assert not watcher.running

    run_apart(run())
    assert tries(sent, CHECK) == [200]


def test_watching_needs_a_cache(dutyline: Dutyline) -> None:
    with Client(dutyline.url, token=dutyline.token) as client, pytest.raises(ValueError, match="cache"):
        client.watch_changes()
