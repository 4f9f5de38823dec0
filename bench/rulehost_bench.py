"""Latency of RuleHost.fires(): p50/p99 of one whole call, one thread, rules loaded once and reused.

    .venv/bin/python bench/rulehost_bench.py [calls]

Also measures 8 threads sharing one host (throughput: the engine lock serialises them), and a reload of 300 rules.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections.abc import Callable

from dutyline.engines.rulehost import RuleHost, condition_json
from dutyline.expressions import parse


def flat_key(path: tuple[str, ...]) -> str:
    return "__".join(path)


def percentiles(call: Callable[[], object], calls: int) -> tuple[float, float]:
    for _ in range(2000):  # warm up
        call()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(calls):
        start = clock()
        call()
        samples.append(clock() - start)
    samples.sort()
    return samples[len(samples) // 2] / 1000, samples[int(len(samples) * 0.99)] / 1000


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    host = RuleHost()
    host.load(
        {
            "limit": {"$gt": {"amount": {"$m": "limit"}}},
            "compiled_limit": condition_json(parse("context.amount > resource.limit"), flat_key),
            "owner_and_limit": condition_json(
                parse("resource.owner == subject.id and context.amount > 2 * resource.limit"), flat_key
            ),
            "department": condition_json(parse("subject.department in ['Legal', 'Sales', 'Audit']"), flat_key),
        }
    )
    request = {
        "context__amount": 120.0,
        "resource__limit": 50,
        "resource__owner": "u7",
        "subject__id": "u7",
        "subject__department": "Sales",
        "subject__level": 3,
        "context__channel": "web",
    }
    cases = [
        ("hand-written limit, fires", lambda: host.fires("limit", {"amount": 120.0, "limit": 100.0})),
        ("hand-written limit, does not fire", lambda: host.fires("limit", {"amount": 80.0, "limit": 100.0})),
        ("context.amount > resource.limit, fires", lambda: host.fires("compiled_limit", request)),
        ("owner == id and amount > 2 * limit, fires", lambda: host.fires("owner_and_limit", request)),
        ("department in [3 names], fires", lambda: host.fires("department", request)),
    ]
    print(f"{calls} calls each, one thread")
    for name, call in cases:
        p50, p99 = percentiles(call, calls)
        print(f"  {name:45} p50 {p50:6.1f} µs   p99 {p99:6.1f} µs")

    per_thread = calls // 8
    done: list[float] = []

    def worker() -> None:
        start = time.perf_counter()
        for i in range(per_thread):
            host.fires("limit", {"amount": float(i % 200), "limit": 100.0})
        done.append(time.perf_counter() - start)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    print(
        f"8 threads × {per_thread} calls: {8 * per_thread / elapsed:,.0f} calls/s in all "
        f"(slowest thread {max(done):.2f} s, mean {statistics.mean(done):.2f} s)"
    )

    rules = {
        f"org.rule-{i}": condition_json(parse(f"context.amount > {i} and subject.level >= 2"), flat_key)
        for i in range(300)
    }
    start = time.perf_counter()
    host.load(rules)
    first = time.perf_counter() - start
    start = time.perf_counter()
    host.load(rules)
    same = time.perf_counter() - start
    print(f"load 300 new rules: {first * 1000:.0f} ms; the same 300 again: {same * 1000:.0f} ms")
    host.close()


if __name__ == "__main__":
    main()
