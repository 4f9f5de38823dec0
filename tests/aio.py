"""Running a coroutine from a test: in an event loop of its own thread, because a browser test's Playwright keeps a
loop running in the main thread for the rest of the session (`asyncio.run` there would refuse)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_apart(coroutine: Coroutine[Any, Any, T]) -> T:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
