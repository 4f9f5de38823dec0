"""How long the client waits between tries, and how its cache lets answers go: the parts with no server in them."""

from __future__ import annotations

import msgspec

from dutyline_client import CheckResult, DecisionCache, Retries
from dutyline_client.calls import Unanswered, local_result
from dutyline_client.requests import check_request


def test_the_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    retries = Retries(attempts=5, backoff=0.1, max_backoff=0.5)
    for attempt, ceiling in enumerate([0.1, 0.2, 0.4, 0.5, 0.5]):
        delays = [retries.delay(attempt, None) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (attempt, min(delays), max(delays))


def test_a_retry_after_longer_than_the_backoff_is_waited_for_but_never_beyond_the_cap() -> None:
    retries = Retries(attempts=3, backoff=0.01, max_backoff=2.0)
    assert retries.delay(0, 1.0) == 1.0
    assert retries.delay(0, 60.0) == 2.0


def _answer(version: int) -> CheckResult:
    """An answer decided on `version` (made by the client, as a fail-open one is: no server needed)."""
    made = local_result(check_request("o", "p", "r", "a"), Unanswered("test", "en", "zh", allow=True))
    return msgspec.structs.replace(made, policy_version=version)


def test_a_newer_policy_version_drops_every_answer_decided_on_an_older_one() -> None:
    cache = DecisionCache(maxsize=10, max_age=60)
    old = _answer(4)
    cache.put(b"k", old)
    assert cache.get(b"k", 4) is old
    cache.saw_version(5)
    assert cache.get(b"k", 4) is None and len(cache) == 0
    cache.put(b"k", old)  # an answer decided on an older version than one seen is not kept
    assert len(cache) == 0


def test_an_answer_older_than_max_age_is_not_served() -> None:
    cache = DecisionCache(maxsize=10, max_age=-1)  # every answer is already too old
    answer = _answer(4)
    cache.put(b"k", answer)
    assert cache.get(b"k", 4) is None
