"""Issue 11, items 15 and 16, measured: an unrelated `/v1/check` while other clients list "who may" over one
organisation of 200k policy lines, or wait with `at_least_version` for a version that does not come.

    .venv/bin/python -m bench.exhaustion [--out bench/results/exhaustion.md] [--label TEXT]

One server (`dutyline serve`, default settings, SQLite in a temporary folder) holds `bench.generate.one_big_org`
(about 200,000 lines, 38,000 people) and the seed organisation sales_company. The unrelated check is li_na
contacting a customer in sales_company; it is asked one at a time, 200 times per phase (or for 30 s), while the
load clients (separate processes) run:

- idle: nothing else;
- walking pages: 2 clients each walking every page of `who may view reports` (35,000 people, 1,000 a page), again
  and again: the listing the first page computed serves every page after it;
- cold listings: 2 clients asking listings no one asked before (who may view report r-1, r-2, …: the resource id
  is part of the question, so no listing can be reused): the worst case, each a full computation;
- waiting: 12 clients asking with `at_least_version` one above the current version (each waits
  DUTYLINE_CONSISTENCY_WAIT, 2 s, gets a 503 and asks again); the unrelated requests are a plain check and an
  `as_of` check (which needs a thread).

Run it with the code to compare: the server is started with this process's PYTHONPATH.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.generate import one_big_org
from bench.service import REPO, Server, percentile

CHECK = {
    "organisation": "sales_company",
    "subject": {"id": "li_na"},
    "resource": {"type": "customer"},
    "action": "contact",
}
WHO = "/v1/orgs/one_big_org/who"
SAMPLES = 200
PHASE = 30.0  # seconds at most per measurement (where each request takes seconds, fewer samples)


def prepare(folder: Path) -> str:
    from dutyline.services import orgs
    from dutyline.store import orgs as org_store
    from dutyline.store.db import make_engine, session_factory, upgrade

    url = f"sqlite:///{folder / 'dutyline.db'}"
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        org_store.save(session, [one_big_org(200_000)], author="bench", comment="200k lines")
    orgs.import_paths(sessions, [REPO / "policies" / "orgs" / "sales_company.yaml"], author="bench")
    engine.dispose()
    return url


def timed(client: httpx.Client, method: str, path: str, **kwargs: object) -> tuple[float, int]:
    started = time.perf_counter()
    response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
    return (time.perf_counter() - started) * 1000, response.status_code


def unrelated(base: str, body: dict[str, object] | None = None) -> dict[str, float]:
    """Latencies of the unrelated request: `SAMPLES` of them, or as many as `PHASE` seconds allow."""
    latencies = []
    until = time.monotonic() + PHASE
    with httpx.Client(base_url=base, timeout=120) as client:
        while len(latencies) < SAMPLES and time.monotonic() < until:
            ms, status = timed(client, "POST", "/v1/check", json=body or CHECK)
            assert status == 200, status
            latencies.append(ms)
    return {
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "max": max(latencies),
        "n": len(latencies),
    }


# --- load clients (processes of their own, so that their JSON parsing takes no time from the measuring one) ---


def walk_pages(base: str, stop: Any, counts: Any) -> None:
    with httpx.Client(base_url=base, timeout=120) as client:
        while not stop.is_set():
            token = ""
            while not stop.is_set():
                answer = client.get(
                    WHO, params={"resource": "report", "action": "view", "limit": "1000", "page_token": token}
                )
                counts[0 if answer.status_code == 200 else 1] += 1
                token = answer.json().get("next_token", "") if answer.status_code == 200 else ""
                if not token:
                    break


def cold_listings(base: str, stop: Any, counts: Any, seed: int) -> None:
    # Who may view one report, another report each time: a listing nobody asked for before (the resource id is
    # part of the question: conditions may read it).
    n = 0
    with httpx.Client(base_url=base, timeout=120) as client:
        while not stop.is_set():
            answer = client.get(
                WHO, params={"resource": "report", "action": "view", "resource_id": f"r-{seed}-{n}", "limit": "100"}
            )
            counts[0 if answer.status_code == 200 else 1] += 1
            n += 1


def wait_for_next_version(base: str, stop: Any, counts: Any) -> None:
    with httpx.Client(base_url=base, timeout=120) as client:
        version = client.post("/v1/check", json=CHECK).json()["policy_version"]
        while not stop.is_set():
            answer = client.post("/v1/check", json={**CHECK, "at_least_version": version + 1})
            counts[0 if answer.status_code == 200 else 1] += 1


def under_load(base: str, target, clients: int, probes: dict[str, dict[str, object] | None], *extra: object) -> dict:  # type: ignore[no-untyped-def]
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    counts = context.Array("i", 2)
    processes = [
        context.Process(target=target, args=(base, stop, counts, *((i,) if extra else ()))) for i in range(clients)
    ]
    for process in processes:
        process.start()
    time.sleep(3)  # the clients are started and busy
    results = {name: unrelated(base, body) for name, body in probes.items()}
    stop.set()
    for process in processes:
        process.join(30)
        if process.is_alive():
            process.terminate()
    return {"probes": results, "ok": counts[0], "refused": counts[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "exhaustion.md")
    parser.add_argument("--label", default="this branch")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="dutyline-exhaustion-"))
    url = prepare(folder)
    server = Server(url)
    try:
        server.wait_ready()
        base = server.url
        rows: list[tuple[str, str, dict]] = []
        with httpx.Client(base_url=base, timeout=120) as client:
            first, _ = timed(client, "GET", WHO, params={"resource": "report", "action": "view", "limit": "1000"})
            page = client.get(WHO, params={"resource": "report", "action": "view", "limit": "1000"}).json()
            again, _ = timed(client, "GET", WHO, params={"resource": "report", "action": "view", "limit": "1000"})
            later = []
            token = page["next_token"]
            while token:
                started = time.perf_counter()
                page = client.get(
                    WHO, params={"resource": "report", "action": "view", "limit": "1000", "page_token": token}
                ).json()
                later.append((time.perf_counter() - started) * 1000)
                token = page["next_token"]
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        as_of = {**CHECK, "as_of": now}
        rows.append(("idle", "check", unrelated(base)))
        rows.append(("idle", "as_of check", unrelated(base, as_of)))
        walking = under_load(base, walk_pages, 2, {"check": None})
        rows.append(
            (
                f"2 clients walking pages ({walking['ok']} pages, {walking['refused']} refused)",
                "check",
                walking["probes"]["check"],
            )
        )
        cold = under_load(base, cold_listings, 2, {"check": None}, True)
        rows.append(
            (
                f"2 clients asking cold listings ({cold['ok']} answered, {cold['refused']} refused)",
                "check",
                cold["probes"]["check"],
            )
        )
        waiting = under_load(base, wait_for_next_version, 12, {"check": None, "as_of check": as_of})
        for name in ("check", "as_of check"):
            rows.append(
                (f"12 clients waiting for version + 1 ({waiting['refused']} timed out)", name, waiting["probes"][name])
            )
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    load = os.getloadavg()
    lines = [
        f"# Exhaustion: who at 200k lines, at_least_version waits ({args.label})",
        "",
        (
            f"Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python -m bench.exhaustion`: one server on SQLite, "
            f"{platform.machine()} with {os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} (1 / 5 min; the "
            "machine is shared, so compare rows of one run, not runs)."
        ),
        "",
        "`GET /v1/orgs/one_big_org/who?resource=report&action=view&limit=1000` (35,000 people of 38,000, 10,000 posts):",
        "",
        f"- first page: {first:.0f} ms; the same first page again (another client): {again:.0f} ms",
        (
            f"- pages 2..{len(later) + 1}: median {percentile(later, 50):.0f} ms, slowest {max(later):.0f} ms"
            " (each answer is about 0.6 MB: the 10,000 posts are on every page)"
        ),
        "",
        (
            f"An unrelated `/v1/check` (sales_company), asked one at a time while the load runs ({SAMPLES}, or as many as "
            f"{PHASE:.0f} s allow):"
        ),
        "",
        "| while | request | asked | p50 ms | p99 ms | max ms |",
        "|---|---|---:|---:|---:|---:|",
        *(
            f"| {load_} | {name} | {r['n']} | {r['p50']:.1f} | {r['p99']:.1f} | {r['max']:.1f} |"
            for load_, name, r in rows
        ),
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
