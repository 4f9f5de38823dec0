"""Run the whole benchmark suite and write `bench/results/` (results.md, results.json and PNG plots).

    .venv/bin/python -m bench.run            # the full suite: 1k … 1M policy lines (about 15 minutes)
    .venv/bin/python -m bench.run --quick    # a smoke run: 1k and 10k lines, short loads (about 2 minutes)

Every Dutyline figure is measured beside its reference in the same run, on the same generated data: the
in-process decision beside plain `casbin.Enforcer` and `casbin.FastEnforcer`; each HTTP endpoint beside a
trivial endpoint of the same server process; Cerbos (its PDP binary, from npm) with the same organisations as
its policies, checked to agree, and loaded beside Dutyline with a bare Litestar app as the framework's ceiling. Needs PostgreSQL (DUTYLINE_BENCH_POSTGRES_URL, else
DUTYLINE_TEST_POSTGRES_URL, else postgresql://postgres@127.0.0.1:5432/test) and `wrk` on the PATH.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench import cerbos
from bench import service as svc
from bench.changes import Changes
from bench.data import AT, ROOT, prepare
from bench.generate import AT_TEXT, RESOURCES, one_big_org, rule_pack

RESULTS = Path(__file__).resolve().parent / "results"
KINDS = ("move_person", "change_duty", "change_limit")


LOAD: list[tuple[str, float]] = []  # (phase, 1-minute load average when it began): how busy the machine was


def log(message: str) -> None:
    LOAD.append((message, os.getloadavg()[0]))
    print(f"[{time.strftime('%H:%M:%S')}] {message} (load {LOAD[-1][1]:.1f})", file=sys.stderr, flush=True)


def wait_quiet(limit: float, patience: float) -> None:
    """Wait (up to `patience` seconds) until the 1-minute load average is below `limit`: the figures are only
    worth comparing when the benchmark has the machine to itself."""
    deadline = time.monotonic() + patience
    while os.getloadavg()[0] >= limit and time.monotonic() < deadline:
        log(f"waiting for a quiet machine (load below {limit})")
        time.sleep(30)


# --- 1. in-process decisions ---------------------------------------------------------------------------------

# How many requests each Casbin engine is asked per size: the plain Enforcer is linear in the policy (about 2 ms
# at 1k lines, seconds at 1M), so it is sampled; FastEnforcer is cheaper but still 100s of µs.
CASBIN_SAMPLES = {1_000: 300, 10_000: 60, 100_000: 10, 1_000_000: 3}
FAST_SAMPLES = {1_000: 5_000, 10_000: 5_000, 100_000: 3_000, 1_000_000: 2_000}


def inprocess(size: int, folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for engine, samples in (("dutyline", 0), ("fast", FAST_SAMPLES[size]), ("casbin", CASBIN_SAMPLES[size])):
        log(f"in-process: {engine} at {size:,} lines")
        result = subprocess.run(
            [sys.executable, "-m", "bench.inprocess", engine, str(folder), str(samples)],
            capture_output=True,
            text=True,
            cwd=svc.REPO,
            timeout=1800,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{engine} at {size}: {result.stderr[-2000:]}")
        out[engine] = json.loads(result.stdout)
    truth = out["dutyline"].pop("answers")
    for engine in ("fast", "casbin"):
        answers = out[engine].pop("answers")
        out[engine]["disagreements"] = sum(a != b for a, b in zip(truth, answers))
        out[engine]["compared"] = len(answers)
    return out


# --- 1b. Cerbos: the same organisations as its policies, at every size it loads ------------------------------


def cerbos_sizes(sizes: list[int], families: dict[int, tuple[Path, list, int]], results: dict[str, Any]) -> None:
    """Load and agreement per size, smallest first; past a size Cerbos does not load in time, larger ones are
    not tried. Without the binary (no npm, no registry) the run goes on and the report says why."""
    for size in sizes:
        folder, orgs, _ = families[size]
        log(f"cerbos: policies and agreement at {size:,} lines")
        try:
            measured = cerbos.load_and_agree(folder, orgs)
        except cerbos.Unavailable as exc:
            results["cerbos_unavailable"] = str(exc)
            log(f"cerbos unavailable: {exc}")
            return
        results["sizes"][size]["cerbos"] = measured
        if "not_loaded" in measured:
            log(f"cerbos did not load {size:,} lines: {measured['not_loaded']}")
            return


def cerbos_largest(results: dict[str, Any]) -> int | None:
    loaded = [int(s) for s, x in results["sizes"].items() if "ready_s" in x.get("cerbos", {})]
    return max(loaded, default=None)


# --- 4. writes, in process (the core of "effective on the replica that took it") ----------------------------


def writes_inprocess(url: str, changes: Changes, count: int) -> dict[str, Any]:
    """Store a change and refresh this process's PolicyService, as the admin API's write path does."""
    from dutyline.engines.decision import decide
    from dutyline.engines.queries import permissions_of
    from dutyline.services.decisions import DecisionService, Question, subjects_allowed, to_check
    from dutyline.services.policies import PolicyService
    from dutyline.store import orgs as org_store
    from dutyline.store import rule_packs as pack_store
    from dutyline.store.db import make_engine, session_factory

    engine = make_engine(url)
    sessions = session_factory(engine)
    policies = PolicyService(sessions)
    started = time.perf_counter()
    policies.refresh()
    load_s = time.perf_counter() - started
    decisions = DecisionService(policies)
    rows: list[dict[str, Any]] = []
    for i in range(count):
        change = changes.next(KINDS[i % len(KINDS)])
        before = policies.current
        t0 = time.perf_counter()
        with sessions.begin() as session:
            if change.document is not None:
                org_store.save(session, [change.document], author="bench")
            else:
                pack_store.save(session, [("limits", change.pack)], author="bench")
        t1 = time.perf_counter()
        policies.refresh()
        t2 = time.perf_counter()
        p = change.probe
        answer = decisions.answer(
            Question(
                p["subject"]["id"],
                p["resource"]["type"],
                p["action"],
                organisation=p["organisation"],
                at=AT,
                context=p.get("context"),
            )
        )
        t3 = time.perf_counter()
        recompiled = sum(1 for k, v in policies.current.orgs.items() if before.orgs.get(k) is not v)
        rows.append(
            {
                "kind": change.kind,
                "store_ms": (t1 - t0) * 1000,
                "refresh_ms": (t2 - t1) * 1000,
                "total_ms": (t3 - t0) * 1000,
                "recompiled": recompiled,
                "ok": answer.outcome == change.expect,
            }
        )

    # Queries at this size, in process: "who may do X" and "what may Y do"
    import random

    rng = random.Random(5)
    orgs = list(policies.current.orgs.values())
    who, what = [], []
    for _ in range(300):
        org = rng.choice(orgs)
        resource = rng.choice(list(RESOURCES))
        t0 = time.perf_counter()
        subjects_allowed(
            org,
            to_check(Question("", resource, rng.choice(RESOURCES[resource]), at=AT)),
            lambda c, org=org: decide(org, c).allowed,
        )
        who.append((time.perf_counter() - t0) * 1000)
        person = rng.choice(list(org.assignments))
        t0 = time.perf_counter()
        permissions_of(org, person, AT)
        what.append((time.perf_counter() - t0) * 1000)
    del policies, decisions
    engine.dispose()
    gc.collect()
    return {
        "load_s": load_s,
        "changes": rows,
        "who_ms": {"p50": svc.percentile(who, 50), "p99": svc.percentile(who, 99)},
        "what_ms": {"p50": svc.percentile(what, 50), "p99": svc.percentile(what, 99)},
    }


def compile_cost(sizes: list[int]) -> list[dict[str, Any]]:
    """What one change costs if one organisation holds everything: compiling and encoding one huge org."""
    from dutyline.engines.compiler import compile_org, policy_lines
    from dutyline.services.policies import _long_lived
    from dutyline.store.orgs import encode

    out = []
    for size in sizes:
        org = one_big_org(size)
        lines = sum(1 for _ in policy_lines(org))
        with _long_lived():
            t0 = time.perf_counter()
            compile_org(org)
            t1 = time.perf_counter()
            encode(org)
            t2 = time.perf_counter()
        out.append({"lines": lines, "compile_ms": (t1 - t0) * 1000, "encode_ms": (t2 - t1) * 1000})
        log(f"one organisation of {lines:,} lines: compile {out[-1]['compile_ms']:.0f} ms")
    return out


# --- 2, 3, 5, 6: servers -------------------------------------------------------------------------------------


def http_phase(server: svc.Server, requests: dict[str, Any], seconds: float) -> dict[str, Any]:
    plain = requests["plain"][:2000]
    evaluation = svc.encode([svc.evaluation(r, AT_TEXT) for r in plain])
    check = svc.encode([svc.check(r, AT_TEXT) for r in plain])
    batches = svc.encode(
        [{"evaluations": [svc.evaluation(r, AT_TEXT) for r in plain[i : i + 100]]} for i in range(0, len(plain), 100)]
    )
    # warm up every path once (first requests compile routes and open pool connections)
    for path, bodies in (
        ("/bench/echo", evaluation),
        ("/access/v1/evaluation", evaluation),
        ("/v1/check", check),
        ("/access/v1/evaluations", batches),
    ):
        svc.wrk(server.url, path, bodies, 2, 8)
    out: dict[str, Any] = {}
    for name, path, bodies in (
        ("echo", "/bench/echo", evaluation),
        ("evaluation", "/access/v1/evaluation", evaluation),
        ("check", "/v1/check", check),
        ("evaluations_100", "/access/v1/evaluations", batches),
    ):
        log(f"http: {name} (32 connections, {seconds:.0f} s)")
        saturated = svc.wrk(server.url, path, bodies, seconds, 32)
        log(f"http: {name} (4 connections, {seconds / 2:.0f} s)")
        light = svc.wrk(server.url, path, bodies, seconds / 2, 4)
        out[name] = {"saturated": vars(saturated), "light": vars(light)}
    return out


def queries_http(server: svc.Server, orgs: list, count: int) -> dict[str, Any]:
    import random

    rng = random.Random(11)
    who, what, search = [], [], []
    for _ in range(count):
        org = rng.choice(orgs)
        resource = rng.choice(list(RESOURCES))
        action = rng.choice(RESOURCES[resource])
        who.append(("GET", f"/v1/orgs/{org.id}/who?resource={resource}&action={action}&at={AT_TEXT[:10]}", None))
        person = rng.choice(org.people).id
        what.append(("GET", f"/v1/orgs/{org.id}/people/{person}/permissions?at={AT_TEXT[:10]}", None))
        search.append(
            (
                "POST",
                f"/orgs/{org.id}/access/v1/search/subject",
                {
                    "subject": {"type": "user"},
                    "action": {"name": action},
                    "resource": {"type": resource, "id": "r1"},
                    "context": {"time": AT_TEXT},
                },
            )
        )
    with httpx.Client(base_url=server.url, timeout=30) as client:
        return {
            "who": svc.sequential(client, who),
            "what": svc.sequential(client, what),
            "search_subject": svc.sequential(client, search),
        }


def check_outcome(client: httpx.Client, body: dict[str, Any]) -> tuple[str, int]:
    response = client.post("/v1/check", json=body)
    response.raise_for_status()
    result = response.json()
    return result["decision"], result["policy_version"]


def propagation(url: str, servers: list[svc.Server], changes: Changes, count: int) -> dict[str, Any]:
    """Changes through the first replica's admin API; seconds until each replica answers with them."""
    clients = [httpx.Client(base_url=s.url, timeout=30) for s in servers]
    admin: svc.AdminClient | None = None
    via = "admin API of replica 1"
    try:
        admin = svc.AdminClient(servers[0].url, url)
    except Exception as exc:  # the admin API may be unavailable: write through the store, as `import` does
        via = f"the store (as `dutyline import` does; admin API unavailable: {exc})"
        log(f"propagation: {via}")
    store = None
    if admin is None:
        from dutyline.store.db import make_engine, session_factory

        store = session_factory(make_engine(url))
    took: list[float] = []  # the replica that took the change: write answered, then its check shows it
    others: list[float] = []
    after_answer: list[float] = []  # the same, counted from when the writing replica answered (≈ its commit)
    failures: list[str] = []
    kinds: list[str] = []
    for i in range(count):
        change = changes.next(KINDS[i % len(KINDS)])
        kinds.append(change.kind)
        old = {check_outcome(c, change.probe)[0] for c in clients}
        if change.expect in old:
            failures.append(f"{change.kind}: already {change.expect} before the change")
            continue
        etag = admin.etag(change) if admin is not None else ""
        seen: dict[int, float] = {}

        def watch(index: int, started: float) -> None:
            client = clients[index]
            while time.perf_counter() - started < 10:
                if check_outcome(client, change.probe)[0] == change.expect:  # noqa: B023  (joined in the same turn)
                    seen[index] = time.perf_counter() - started  # noqa: B023  (each change's watchers end in its turn)
                    return
                time.sleep(0.002)

        started = time.perf_counter()
        first = 1 if admin is not None else 0
        threads = [threading.Thread(target=watch, args=(i, started)) for i in range(first, len(clients))]
        if admin is not None:
            try:
                admin.apply(change, etag)
            except Exception as exc:
                failures.append(str(exc))
                continue
            for t in threads:
                t.start()
            outcome = check_outcome(clients[0], change.probe)[0]
            took.append(time.perf_counter() - started)
            if outcome != change.expect:
                failures.append(f"{change.kind}: replica 1 answered {outcome} right after taking the change")
        else:
            from dutyline.store import orgs as org_store
            from dutyline.store import rule_packs as pack_store

            with store.begin() as session:  # type: ignore[union-attr]
                if change.document is not None:
                    org_store.save(session, [change.document], author="bench")
                else:
                    pack_store.save(session, [("limits", change.pack)], author="bench")
            for t in threads:
                t.start()
        for t in threads:
            t.join()
        for index in range(first, len(clients)):
            if index in seen:
                others.append(seen[index])
                if admin is not None:
                    after_answer.append(seen[index] - took[-1])
            else:
                failures.append(f"{change.kind}: replica {index + 1} did not answer within 10 s")
        time.sleep(0.05)
    for c in clients:
        c.close()
    return {
        "via": via,
        "took_ms": [x * 1000 for x in took],
        "others_ms": [x * 1000 for x in others],
        "others_after_answer_ms": [x * 1000 for x in after_answer],
        "failures": failures,
        "kinds": kinds,
    }


def scaling(servers: list[svc.Server], requests: dict[str, Any], seconds: float) -> list[dict[str, Any]]:
    """Decision throughput (/v1/check) with 1, 2, 3 replicas, each driven by its own wrk at once."""
    bodies = svc.encode([svc.check(r, AT_TEXT) for r in requests["plain"][:2000]])
    echo = svc.encode([svc.evaluation(r, AT_TEXT) for r in requests["plain"][:2000]])
    out = []
    for k in range(1, len(servers) + 1):
        log(f"scaling: {k} replica(s)")
        loads = svc.concurrently([lambda s=s: svc.wrk(s.url, "/v1/check", bodies, seconds, 32) for s in servers[:k]])
        # the same for the trivial endpoint: how far this machine lets any endpoint scale (wrk shares the cores)
        ceiling = svc.concurrently(
            [lambda s=s: svc.wrk(s.url, "/bench/echo", echo, seconds / 2, 32) for s in servers[:k]]
        )
        out.append(
            {
                "replicas": k,
                "rps": sum(x.rps for x in loads),
                "p99_ms": max(x.p99_ms for x in loads),
                "echo_rps": sum(x.rps for x in ceiling),
            }
        )
    return out


def step(out: dict[str, Any], name: str, measure: Any) -> None:
    """Run one measurement; a failure is recorded (and reported) instead of losing the whole run."""
    try:
        out[name] = measure()
    except Exception as exc:
        out.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"
        log(f"{name} failed: {exc}")


def service_phase(
    size: int, orgs: list, requests: dict[str, Any], quick: bool, peer_size: int | None = None, peer_orgs: int = 0
) -> dict[str, Any]:
    seconds = 3 if quick else 10
    packs = [rule_pack(o) for o in orgs]
    out: dict[str, Any] = {"size": size}
    with svc.schema() as url:
        log(f"storing {len(orgs):,} organisations in PostgreSQL")
        out["store_load_s"] = svc.load(url, orgs, packs)
        changes = Changes(orgs, packs, AT)
        log("writes in process (store + PolicyService.refresh)")
        out["writes_inprocess"] = writes_inprocess(url, changes, 15 if quick else 90)
        gc.collect()

        log("start-up of one replica")
        first = svc.Server(url)
        servers = [first]
        try:
            out["startup"] = {"ready_s": first.wait_ready(), "rss_bytes": first.rss()}
            out["http"] = http_phase(first, requests, seconds)
            out["rss_after_load_bytes"] = first.rss()
            if peer_size is not None:
                # the family of a smaller size is the first branches of this one: its requests are this server's
                step(out, "peers", lambda: cerbos.http(ROOT / str(peer_size), orgs[:peer_orgs], seconds, log))
            log("queries over HTTP")
            step(out, "queries_http", lambda: queries_http(first, orgs, 50 if quick else 200))
            log("HTTP again, with the decision log sampled at 1 %")
            sampled = svc.Server(url, env={"DUTYLINE_DECISION_LOG_SAMPLE": "0.01"})
            try:
                sampled.wait_ready()
                step(out, "http_log_sampled", lambda: http_phase(sampled, requests, seconds))
            finally:
                sampled.stop()
            log("two more replicas")
            servers += [svc.Server(url), svc.Server(url)]
            for s in servers[1:]:
                s.wait_ready()
            log("propagation between replicas")
            step(out, "propagation", lambda: propagation(url, servers, changes, 10 if quick else 60))
            step(out, "scaling", lambda: scaling(servers, requests, seconds))
        except Exception as exc:  # keep what was measured; the report says what was not
            out.setdefault("errors", {})["service"] = f"{type(exc).__name__}: {exc}"
            log(f"service phase stopped: {exc}")
        finally:
            for s in servers:
                s.stop()
    return out


# --- the report ----------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1k and 10k lines, short loads: a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write results (default bench/results)")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="MINUTES",
        help="first wait up to MINUTES for the load average to fall below 1",
    )
    args = parser.parse_args()
    if args.wait_quiet:
        wait_quiet(1.0, args.wait_quiet * 60)
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000, 1_000_000]
    began = time.perf_counter()
    results: dict[str, Any] = {
        "quick": args.quick,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "sizes": {},
    }
    families: dict[int, tuple[Path, list, int]] = {}
    for size in sizes:
        log(f"generating {size:,} lines")
        families[size] = prepare(size)
        folder, _, lines = families[size]
        results["sizes"][size] = {"lines": lines, "orgs": len(families[size][1]), **inprocess(size, folder)}
    cerbos_sizes(sizes, families, results)
    results["compile_one_org"] = compile_cost([1_000, 10_000] if args.quick else [1_000, 10_000, 100_000, 1_000_000])
    largest = sizes[-1]
    folder, orgs, lines = families[largest]
    requests = json.loads((folder / "requests.json").read_text())
    for size in sizes[:-1]:
        families.pop(size)
    # this process now holds a million-line family: keep the collector from scanning it (a full collection
    # would stall the threads that time propagation for a second or more)
    gc.collect()
    gc.freeze()
    peer = cerbos_largest(results)
    peer_orgs = results["sizes"][peer]["orgs"] if peer is not None else 0
    results["service"] = {"lines": lines, **service_phase(largest, orgs, requests, args.quick, peer, peer_orgs)}
    results["elapsed_s"] = time.perf_counter() - began
    results["load"] = LOAD
    from bench.report import write

    write(results, args.out)
    log(f"done in {results['elapsed_s'] / 60:.1f} min: {args.out / 'results.md'}")


if __name__ == "__main__":
    main()
