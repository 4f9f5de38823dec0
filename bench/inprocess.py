"""In-process decision latency and memory, one engine and one size per child process.

`python -m bench.inprocess ENGINE DATA_DIR SAMPLES` prints one JSON object: build time, resident memory the
engine added, per-request latencies (µs) and the decisions, so that the parent can check that every engine
gave the same answers. ENGINE is `dutyline` (the decision index and the full decision service, rules
included), `casbin` (plain `casbin.Enforcer`) or `fast` (`casbin.FastEnforcer`).

A child per measurement keeps the memory figures apart: each engine starts from the same interpreter with
the same imports, and reads the same files the parent wrote for that size.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

from dutyline.content import casbin_model_path
from dutyline.orgmodel.document import Organisation
from dutyline.rulemodel.document import RulePack

ORGS = msgspec.json.Decoder(list[Organisation])
PACKS = msgspec.json.Decoder(list[RulePack])


def rss_bytes() -> int:
    """Resident set size of this process (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed(calls: list[Any], fn: Any, repeat: int = 1, between: Any = None) -> tuple[list[float], list[Any]]:
    """Latency of each call in µs, over `repeat` passes; `between` runs every 1,000 calls, off the clock."""
    clock = time.perf_counter_ns
    latencies: list[float] = []
    answers: list[Any] = []
    for _ in range(repeat):
        answers = []
        for i, args in enumerate(calls):
            if between is not None and i % 1000 == 0:
                between()
            t0 = clock()
            answer = fn(*args)
            latencies.append((clock() - t0) / 1000)
            answers.append(answer)
    return latencies, answers


def summary(latencies: list[float]) -> dict[str, float]:
    return {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99), "n": len(latencies)}


def run_dutyline(data: Path, samples: int) -> dict[str, Any]:
    from dutyline.engines.compiler import compile_org
    from dutyline.engines.decision import Check, decide
    from dutyline.engines.policyset import PolicySet
    from dutyline.engines.rules import NO_FACTS, apply_rules, compile_rules
    from dutyline.services.decision_log import DecisionLog
    from dutyline.services.decisions import DecisionService, Question
    from dutyline.services.policies import PolicyService, _long_lived

    requests = json.loads((data / "requests.json").read_text())
    at = requests["at"]
    base = rss_bytes()
    t0 = time.perf_counter()
    policies = PolicyService(None)  # type: ignore[arg-type]  # no store: the set is put in as refresh() would
    with _long_lived():  # what PolicyService does around a refresh: no GC while building, then frozen
        documents = ORGS.decode((data / "family.json").read_bytes())
        policies.current = PolicySet().replace([compile_org(org, 1) for org in documents], (), 1)
        del documents
        build = time.perf_counter() - t0
        t1 = time.perf_counter()
        packs = PACKS.decode((data / "rules.json").read_bytes())
        rules = {p.org: compile_rules([p], policies.current.orgs[p.org]) for p in packs}
        policies.current = policies.current.replace((), (), 1, rules)
        policies.host.load({n: c for r in rules.values() for n, c in r.rulesets.items()})
        rules_build = time.perf_counter() - t1
    memory = rss_bytes() - base

    current, host = policies.current, policies.host
    engine_calls = [(current.orgs[r[0]], Check(r[1], r[2], r[3], at)) for r in requests["plain"]]
    latencies, answers = timed(engine_calls, decide, repeat=3)
    out: dict[str, Any] = {
        "build_s": build,
        "rules_build_s": rules_build,
        "memory_bytes": memory,
        "engine": summary(latencies),
        "answers": [a.outcome == "allow" for a in answers],
    }

    # The decision with its rules: the duty decision, then the rules indexed for (resource type, action).
    def with_rules(org_id: str, person: str, resource: str, action: str, amount: int | None = None) -> str:
        org = current.orgs[org_id]
        context = {"amount": amount, "currency": "CNY"} if amount is not None else None
        check = Check(person, resource, action, at, context=context)
        return apply_rules(host, org, current.rules.get(org_id), check, decide(org, check), NO_FACTS).outcome

    # The full decision service: organisation resolution, decision, rules, decision id, metrics, log queue.
    log = DecisionLog(None, max_queue=10**9)  # type: ignore[arg-type]  # queued, never written: same cost
    service = DecisionService(policies, log)

    def ask(org: str, person: str, resource: str, action: str, amount: int | None = None) -> str:
        context = {"amount": amount, "currency": "CNY"} if amount is not None else None
        return service.answer(Question(person, resource, action, organisation=org, at=at, context=context)).outcome

    def drain() -> None:
        while not log._queue.empty():
            log._queue.get_nowait()

    for prefix, fn in (("rules", with_rules), ("service", ask)):
        for name in ("plain", "limit_within", "limit_above"):
            calls = [tuple(r) for r in requests[name]]
            # the log writer thread keeps the queue short in a server: here it is emptied every 1,000 calls
            latencies, outcomes = timed(calls, fn, repeat=3, between=drain)
            out[f"{prefix}_{name}"] = summary(latencies)
            out[f"{prefix}_outcomes_{name}"] = sorted({o: outcomes.count(o) for o in set(outcomes)}.items())
    return out


def run_casbin(data: Path, samples: int, fast: bool) -> dict[str, Any]:
    import logging

    import casbin

    for name in ("casbin", "casbin.policy", "casbin.enforcer", "casbin.role_manager"):
        logging.getLogger(name).setLevel(logging.WARNING)
    requests = json.loads((data / "requests.json").read_text())
    base = rss_bytes()
    t0 = time.perf_counter()
    # loaded the standard way, from the CSV file (add_policies would be quadratic for FastEnforcer: each
    # add takes len() of its policy, which FastPolicy computes by walking every line)
    policy = str(data / "policy.csv")
    if fast:
        # keys (domain, action): both are plain values on every policy line. Keying on the object would be
        # wrong here: a line may name a resource group, which only g2 relates to the requested type.
        enforcer = _fast_enforcer(casbin, [1, 3], policy)
    else:
        enforcer = casbin.Enforcer(str(casbin_model_path()), policy, enable_log=False)
    build = time.perf_counter() - t0
    gc.collect()
    gc.freeze()  # as Dutyline's PolicyService does with its policy: the loaded policy is exempt from collection
    memory = rss_bytes() - base
    calls = [(f"person:{r[1]}", r[0], r[2], r[3]) for r in requests["plain"][:samples]]
    latencies, answers = timed(calls, enforcer.enforce)
    return {"build_s": build, "memory_bytes": memory, "engine": summary(latencies), "answers": answers}


def _fast_enforcer(casbin: Any, order: list[int], policy: str) -> Any:
    """`casbin.FastEnforcer`, with its model loading fixed: pycasbin 2.8's `FastModel.add_def` drops the
    result of `Model.add_def`, so model loading stops after the first role definition and `g2` is lost
    (KeyError 'g2' on the first grouping policy). This subclass returns it; nothing else differs."""
    from casbin.model import Model
    from casbin.model.model_fast import FastModel
    from casbin.model.policy_fast import FastPolicy

    class Fixed(FastModel):
        def add_def(self, sec: str, key: str, value: Any) -> Any:
            added = Model.add_def(self, sec, key, value)
            if sec == "p" and key == "p":
                self.model[sec][key].policy = FastPolicy(self._cache_key_order)
            return added

    class Enforcer(casbin.FastEnforcer):
        def new_model(self, path: str = "", text: str = "") -> Any:
            model = Fixed(self._cache_key_order)
            if path:
                model.load_model(path)
            else:
                model.load_model_from_text(text)
            return model

    return Enforcer(str(casbin_model_path()), policy, enable_log=False, cache_key_order=order)


def main() -> None:
    engine, data, samples = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    if engine == "dutyline":
        result = run_dutyline(data, samples)
    else:
        result = run_casbin(data, samples, fast=engine == "fast")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
