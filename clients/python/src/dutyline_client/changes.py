"""The change stream, `GET /v1/changes` (server-sent events, read with httpx-sse): iterators that reconnect where
they left off, and watchers that empty a `DecisionCache` of answers decided on an older policy version as soon as a
new one is announced.

An iterator yields a `PolicyChange` for each new policy version and a `CaughtUp` whenever it is up to date (once at
the start, once after each replay). It remembers the id of the last event (a policy version); when the stream ends
(the server stopping) or the connection breaks, it connects again with `Last-Event-ID`, so that nothing is missed
and nothing is given twice. A 503 and connection errors are retried with the client's `Retries` (counted afresh
after each stream that opened); a 4xx raises (`Unauthenticated` when the token was revoked meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass

import httpx
import msgspec
from httpx_sse import ServerSentEvent, aconnect_sse, connect_sse

from dutyline_client import models as m
from dutyline_client.cache import DecisionCache
from dutyline_client.core import Retries, _retry_after
from dutyline_client.errors import ClientError, DutylineError, Unreachable, error_of

log = logging.getLogger("dutyline_client")

Change = m.PolicyChange | m.CaughtUp
# What a watcher reads from: a stream from a version (None: from now), told of each response it opens.
StreamFactory = Callable[[int | None, Callable[[httpx.Response | None], None]], Iterator[Change]]
AsyncStreamFactory = Callable[[int | None], AsyncIterator[Change]]
PATH = "/v1/changes"
# Seconds without a byte before the connection is taken as dead: the server sends a keep-alive comment every
# DUTYLINE_CHANGES_KEEPALIVE seconds (15 by default).
READ_TIMEOUT = 60.0
_CHANGE = msgspec.json.Decoder(m.PolicyChange)
_READY = msgspec.json.Decoder(m.CaughtUp)


@dataclass(slots=True)
class _Position:
    """Where a stream is: the `since` asked for, then the id of the last event received."""

    since: int | None
    last_id: int | None = None
    attempt: int = 0

    def request(self, organisations: Sequence[str] | None) -> tuple[list[tuple[str, str]], dict[str, str]]:
        params = [("organisation", o) for o in organisations or ()]
        headers = {"accept": "text/event-stream"}
        if self.last_id is not None:
            headers["last-event-id"] = str(self.last_id)
        elif self.since is not None:
            params.append(("since", str(self.since)))
        return params, headers

    def received(self, event: ServerSentEvent) -> Change | None:
        if event.id and event.id.isdigit():
            self.last_id = int(event.id)
        if event.event == "change":
            return _CHANGE.decode(event.data)
        if event.event == "ready":
            return _READY.decode(event.data)
        return None  # a kind of event this client does not know (a newer server): skipped


def _timeout(http_timeout: httpx.Timeout, read: float) -> httpx.Timeout:
    return httpx.Timeout(connect=http_timeout.connect, read=read, write=http_timeout.write, pool=http_timeout.pool)


def _refused(response: httpx.Response, content: bytes) -> DutylineError:
    return error_of(response.status_code, content, _retry_after(response))


def _wait(retries: Retries, position: _Position, why: Exception, reconnect: bool) -> float:
    """How long to wait before connecting again, or raise `why` when no more tries are left."""
    retriable = not isinstance(why, ClientError)
    if not reconnect or not retriable or position.attempt >= retries.attempts:
        raise why
    retry_after = getattr(why, "retry_after", None)
    delay = retries.delay(position.attempt, retry_after)
    position.attempt += 1
    return delay


def changes(
    http: httpx.Client,
    retries: Retries,
    since: int | None,
    organisations: Sequence[str] | None,
    reconnect: bool,
    read_timeout: float,
    opened: Callable[[httpx.Response | None], None] | None = None,
) -> Iterator[Change]:
    """`opened` is told of each response as it opens (and of None as it closes): a watcher on another thread stops
    a read in progress through it (`ChangeWatcher.stop`)."""
    position = _Position(since)
    timeout = _timeout(http.timeout, read_timeout)
    while True:
        params, headers = position.request(organisations)
        failure: Exception | None = None
        try:
            with connect_sse(http, "GET", PATH, params=params, headers=headers, timeout=timeout) as source:
                response = source.response
                if response.status_code != 200:
                    failure = _refused(response, response.read())
                else:
                    position.attempt = 0
                    if opened is not None:
                        opened(response)
                    for event in source.iter_sse():
                        item = position.received(event)
                        if item is not None:
                            yield item
        except httpx.TransportError as exc:
            failure = Unreachable(f"the change stream broke off ({type(exc).__name__}: {exc})")
        finally:
            if opened is not None:
                opened(None)
        if failure is None:
            if not reconnect:
                return
            failure = Unreachable("the server ended the change stream")  # it is stopping: connect again
        time.sleep(_wait(retries, position, failure, reconnect))


async def achanges(
    http: httpx.AsyncClient,
    retries: Retries,
    since: int | None,
    organisations: Sequence[str] | None,
    reconnect: bool,
    read_timeout: float,
) -> AsyncIterator[Change]:
    position = _Position(since)
    timeout = _timeout(http.timeout, read_timeout)
    while True:
        params, headers = position.request(organisations)
        failure: Exception | None = None
        try:
            async with aconnect_sse(http, "GET", PATH, params=params, headers=headers, timeout=timeout) as source:
                response = source.response
                if response.status_code != 200:
                    failure = _refused(response, await response.aread())
                else:
                    position.attempt = 0
                    async for event in source.aiter_sse():
                        item = position.received(event)
                        if item is not None:
                            yield item
        except httpx.TransportError as exc:
            failure = Unreachable(f"the change stream broke off ({type(exc).__name__}: {exc})")
        if failure is None:
            if not reconnect:
                return
            failure = Unreachable("the server ended the change stream")
        await asyncio.sleep(_wait(retries, position, failure, reconnect))


class _Watching:
    """What both watchers do with what they hear; only how they read and wait differs (a thread, a task)."""

    cache: DecisionCache
    policy_version: int
    error: DutylineError | None
    connected: threading.Event | asyncio.Event

    def _heard(self, item: Change) -> None:
        self.cache.saw_version(item.policy_version)
        self.policy_version = max(self.policy_version, item.policy_version)
        if isinstance(item, m.CaughtUp):
            self.connected.set()

    def _refused(self, exc: ClientError) -> None:
        self.error = exc
        log.error("the change stream refused this client; the decision cache is no longer watched: %s", exc)
        self.cache.clear()

    def _lost(self, exc: Exception) -> None:
        self.connected.clear()
        self.cache.clear()
        log.warning("the change stream is unreachable; decision cache emptied, retrying: %s", exc)


class ChangeWatcher(_Watching):
    """A thread that reads the change stream and empties `cache` of every answer decided on a version older than
    the newest announced (`Client.watch_changes`). While it cannot reach the stream it keeps trying (every
    `restart.max_backoff` seconds once the stream's own retries are spent) and empties the cache each time: changes
    made meanwhile would go unseen. A 4xx (the token revoked, or not allowed) stops it, logged; the cache then falls
    back to its `max_age`."""

    def __init__(self, stream: StreamFactory, cache: DecisionCache, restart: Retries) -> None:
        self.cache = cache
        self.policy_version = 0  # the newest version announced
        self.error: DutylineError | None = None  # what stopped it, if anything did
        self.connected = threading.Event()  # set at each `ready` event, cleared when the stream breaks
        self._factory = stream
        self._restart = restart
        self._stop = threading.Event()
        self._response: httpx.Response | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="dutyline-changes", daemon=True)
        self._thread.start()

    def _opened(self, response: httpx.Response | None) -> None:
        with self._lock:
            self._response = response
        if response is not None and self._stop.is_set():
            _interrupt(response)

    def _run(self) -> None:
        while not self._stop.is_set():
            since = self.policy_version or None
            try:
                for item in self._factory(since, self._opened):
                    if self._stop.is_set():
                        return
                    self._heard(item)
                return
            except ClientError as exc:
                self._refused(exc)
                return
            except Exception as exc:  # out of retries: empty the cache, and try again later
                if self._stop.is_set():
                    return
                self._lost(exc)
                self._stop.wait(self._restart.max_backoff)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop watching: a read in progress is cut off and the thread ends."""
        self._stop.set()
        with self._lock:
            response = self._response
        if response is not None:
            _interrupt(response)
        self._thread.join(timeout)


def _interrupt(response: httpx.Response) -> None:
    """End a read another thread is blocked in: shut the connection's socket down (closing it would not wake the
    reader). Without a socket to reach (another transport), the read ends at the next keep-alive."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class AsyncChangeWatcher(_Watching):
    """`ChangeWatcher` for asyncio: a task on the running loop (`AsyncClient.watch_changes`)."""

    def __init__(self, stream: AsyncStreamFactory, cache: DecisionCache, restart: Retries) -> None:
        self.cache = cache
        self.policy_version = 0
        self.error: DutylineError | None = None
        self.connected = asyncio.Event()
        self._stream = stream
        self._restart = restart
        self._task = asyncio.get_running_loop().create_task(self._run(), name="dutyline-changes")

    async def _run(self) -> None:
        while True:
            try:
                async for item in self._stream(self.policy_version or None):
                    self._heard(item)
                return
            except ClientError as exc:
                self._refused(exc)
                return
            except Exception as exc:
                self._lost(exc)
                await asyncio.sleep(self._restart.max_backoff)

    @property
    def running(self) -> bool:
        return not self._task.done()

    async def stop(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
