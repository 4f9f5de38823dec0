"""A subscriber of the change stream for tests: `GET /v1/changes` read on a thread of its own, every event kept in
the order it came, so that a test can wait (with a generous deadline, never a timed assertion) for what it expects.

The server under test sends a keep-alive comment often (DUTYLINE_CHANGES_KEEPALIVE), so the thread sees its stop
flag soon after `close()`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

DEADLINE = 30.0  # seconds: for arrival only, generous on purpose


@dataclass(frozen=True)
class Received:
    event: str
    id: int | None
    data: dict[str, Any]


class Listener:
    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.events: list[Received] = []
        self.comments = 0
        self.status: int | None = None
        self.error: dict[str, Any] | None = None  # the JSON error of a refused stream
        self.ended = threading.Event()  # the server ended the stream (or it was refused, or closed)
        self._opened = threading.Event()
        self._stop = threading.Event()
        sent = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
        self._thread = threading.Thread(target=self._run, args=(base_url, params or {}, sent), daemon=True)
        self._thread.start()
        assert self._opened.wait(DEADLINE), "the stream was not answered"

    def _run(self, base_url: str, params: dict[str, Any], headers: dict[str, str]) -> None:
        try:
            with (
                httpx.Client(base_url=base_url, timeout=DEADLINE) as client,
                client.stream("GET", "/v1/changes", params=params, headers=headers) as response,
            ):
                self.status = response.status_code
                if response.status_code != 200:
                    self.error = json.loads(response.read())
                    return
                self._opened.set()
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith(":"):
                        self.comments += 1
                    elif line:
                        name, _, value = line.partition(":")
                        fields[name] = fields.get(name, "") + value.removeprefix(" ")
                    elif "data" in fields:
                        ident = fields.get("id")
                        self.events.append(
                            Received(
                                fields.get("event", "message"),
                                int(ident) if ident else None,
                                json.loads(fields["data"]),
                            )
                        )
                        fields = {}
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()
            self._opened.set()

    def wait_for(self, found: Callable[[list[Received]], bool], what: str) -> list[Received]:
        """The events so far, once `found` holds for them; fails after DEADLINE seconds without."""
        deadline = time.monotonic() + DEADLINE
        while not found(list(self.events)):
            assert not self.ended.is_set() or found(list(self.events)), f"the stream ended before {what}: {self.events}"
            assert time.monotonic() < deadline, f"no {what} within {DEADLINE} s; got {self.events}"
            time.sleep(0.02)
        return list(self.events)

    def changes(self) -> list[Received]:
        return [e for e in self.events if e.event == "change"]

    def ready(self) -> Received:
        """The first `ready` event (waited for)."""
        events = self.wait_for(lambda events: any(e.event == "ready" for e in events), "ready event")
        return next(e for e in events if e.event == "ready")

    def change(self, version: int) -> Received:
        """The change event of `version` (waited for)."""
        events = self.wait_for(
            lambda events: any(e.id == version and e.event == "change" for e in events), f"change {version}"
        )
        return next(e for e in events if e.id == version and e.event == "change")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(DEADLINE)

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
