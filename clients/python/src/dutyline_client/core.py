"""What `Client` and `AsyncClient` share: when to retry and how long to wait, what an answer becomes (a result, an
exception, or the fail-closed answer), the newest policy version seen, and the decision cache. Neither sends
anything here: each sends a `Call` its own way and hands the outcome to `Core.settle`."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import msgspec

from dutyline_client.cache import DecisionCache
from dutyline_client.calls import Call, Unanswered, with_version
from dutyline_client.errors import Unreachable, error_of
from dutyline_client.models import CheckResult
from dutyline_client.version import __version__

log = logging.getLogger("dutyline_client")
T = TypeVar("T")

# The request surely never reached the server: sending it again cannot do anything twice.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Answered by a gateway in front of Dutyline that could not reach it (retried only when sending again is safe).
_GATEWAY = (502, 504)


@dataclass(frozen=True, slots=True)
class Retries:
    """How often and how patiently to ask again after a 503 or a connection error: `attempts` more tries after the
    first, waiting `backoff`, then twice as long each time (at most `max_backoff`, with jitter so that callers do
    not retry in step), or the server's `Retry-After` when it is longer (also at most `max_backoff`)."""

    attempts: int = 3
    backoff: float = 0.1
    max_backoff: float = 2.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        exponential = min(self.max_backoff, self.backoff * 2**attempt)
        wait = exponential * random.uniform(0.5, 1.0)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_backoff))
        return wait


NO_RETRIES = Retries(attempts=0)


@dataclass(frozen=True, slots=True)
class Retry:
    """Send the call again after `delay` seconds."""

    delay: float


def headers(token: str | None) -> dict[str, str]:
    sent = {"user-agent": f"dutyline-client/{__version__}", "accept": "application/json"}
    if token:
        sent["authorization"] = f"Bearer {token}"
    return sent


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the exponential backoff decides


class Core:
    """State and decisions shared by one client's calls."""

    def __init__(self, retries: Retries, fail_open: bool, cache: DecisionCache | None) -> None:
        self.retries = retries
        self.fail_open = fail_open
        self.cache = cache
        self.version_seen = 0  # the newest policy version an answer carried
        self._changed = 0  # the newest version the caller says it made (after_change)

    def after_change(self, policy_version: int) -> None:
        """The caller made a change that created `policy_version`: checks wait for it until an answer shows it."""
        self._changed = max(self._changed, policy_version)
        if self.cache is not None:
            self.cache.saw_version(policy_version)

    def prepare(self, call: Call[T]) -> Call[T]:
        if call.wants_version and self._changed > self.version_seen:
            return with_version(call, self._changed)
        return call

    def cached(self, call: Call[T]) -> T | None:
        if self.cache is None or call.cache_key is None or self._changed > self.version_seen:
            return None
        if call.body is not None and _waits_for(call.body) > self.version_seen:
            return None
        return self.cache.get(call.cache_key, self.version_seen)  # type: ignore[return-value]

    def settle(
        self, call: Call[T], attempt: int, response: httpx.Response | None, error: Exception | None
    ) -> T | Retry:
        """What to do with one try's outcome: a result, a `Retry`, the fallback answer, or raise."""
        if response is None:
            assert error is not None
            may_retry = call.idempotent or isinstance(error, _NEVER_SENT)
            if may_retry and attempt < self.retries.attempts:
                return Retry(self.retries.delay(attempt, None))
            why = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            return self._unanswered(call, "dutyline_unreachable", f"Dutyline could not be reached ({why})")
        status = response.status_code
        if 200 <= status < 300:
            return self._result(call, response.content)
        retryable = status == 503 or (status in _GATEWAY and call.idempotent)
        if not retryable:
            raise error_of(status, response.content)
        if attempt < self.retries.attempts:
            return Retry(self.retries.delay(attempt, _retry_after(response)))
        failure = error_of(status, response.content, _retry_after(response))
        return self._unanswered(call, "dutyline_unavailable", f"Dutyline could not answer ({failure.message})", failure)

    def _result(self, call: Call[T], content: bytes) -> T:
        result = call.decode(content)
        version = getattr(result, "policy_version", None)
        if isinstance(version, int) and version > self.version_seen:
            self.version_seen = version
            if self.cache is not None:
                self.cache.saw_version(version)
        if (
            self.cache is not None
            and call.cache_key is not None
            and isinstance(result, CheckResult)
            and not result.obligations  # the server notifies on each such decision: ask it every time
            and result.approval is None
        ):
            self.cache.put(call.cache_key, result)
        return result

    def _unanswered(self, call: Call[T], code: str, reason: str, failure: Exception | None = None) -> T:
        if call.fallback is None:
            if failure is not None:
                raise failure
            raise Unreachable(reason)
        allow = self.fail_open
        verdict = "allowed (fail open)" if allow else "denied (fail closed)"
        log.warning("%s %s: %s; %s", call.method, call.path, reason, verdict)
        zh = "无法连接 Dutyline" if code == "dutyline_unreachable" else "Dutyline 暂时无法作出决定"
        zh += ",按允许处理(fail open)" if allow else ",按拒绝处理"
        return call.fallback(Unanswered(code, f"{reason}; {verdict}", zh, allow))


def _waits_for(body: bytes) -> int:
    # Only checks carry it, as a top-level key; decoding the body again is cheap beside a round trip.
    decoded: Any = msgspec.json.decode(body)
    value = decoded.get("at_least_version") if isinstance(decoded, dict) else None
    return value if isinstance(value, int) else 0
