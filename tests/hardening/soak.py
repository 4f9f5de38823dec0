"""A sustained mixed load on a real server over loopback: decisions, admin edits and queries at once.

    python -m tests.hardening.soak --minutes 5            # PostgreSQL if DUTYLINE_TEST_POSTGRES_URL is set, else SQLite
    python -m tests.hardening.soak --minutes 5 --database sqlite --output soak.md

Starts `dutyline serve` on a fresh database with the seed organisations and rule packs, then for the given time:

- deciders ask every case of the seed decision tables (`policies/tests/*.yaml`) through `/v1/check` and
  AuthZEN batches, at a fixed moment, and check that each question always gets the same answer;
- editors change a post of an organisation of their own through the admin API (read, PATCH with If-Match,
  retry on 412), and add and remove people;
- queriers ask who may, what a person may, the decision log and the version history.

It samples the server's resident memory every few seconds and prints a Markdown report. It fails (exit 1) on
any error (a 5xx, an unexpected 4xx, a refused connection, a changed answer, a lost edit) or when memory grows
by more than `--max-growth-mib` between the end of the warm-up (a fifth of the run) and the end. Only
loopback addresses are used; every loop stops at the deadline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from ruamel.yaml import YAML

from tests.api.admin_client import create_admin
from tests.conftest import POSTGRES_URL, REPO, fresh_database
from tests.live import LiveServer

MOMENT = "2026-07-06T10:00:00"  # a Monday morning: acting windows and office hours as the tables expect


@dataclass
class Tally:
    """What the workers saw; appended to from many threads (list.append and Counter updates under a lock)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    conflicts: int = 0
    edits: int = 0

    def record(self, kind: str, response: httpx.Response | None, started: float, ok: bool, note: str = "") -> None:
        elapsed = time.perf_counter() - started
        with self.lock:
            self.requests[kind] += 1
            self.statuses[f"{kind} {response.status_code if response is not None else 'no answer'}"] += 1
            self.latencies.setdefault(kind, []).append(elapsed)
            if not ok:
                self.errors.append(f"{kind}: {note or (response.text[:200] if response is not None else '')}")


def _cases() -> list[dict[str, Any]]:
    out = []
    for path in sorted((REPO / "policies/tests").glob("*.yaml")):
        table = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        for case in table["cases"]:
            subject = {"id": case["person"]} if "person" in case else {"id": case["post"], "type": "post"}
            out.append(
                {
                    "organisation": table["org"],
                    "subject": subject,
                    "resource": {"type": case["resource"]},
                    "action": case["action"],
                    "at": str(case.get("at", MOMENT)),
                }
            )
    return out


def _call(
    http: httpx.Client,
    tally: Tally,
    kind: str,
    method: str,
    path: str,
    ok_statuses: tuple[int, ...] = (200,),
    **kwargs: Any,
) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        response = http.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        tally.record(kind, None, started, False, repr(exc))
        return None
    tally.record(kind, response, started, response.status_code in ok_statuses)
    return response


def decider(base: str, deadline: float, tally: Tally, cases: list[dict[str, Any]], seen: dict[str, str]) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        n = 0
        while time.monotonic() < deadline:
            case = cases[n % len(cases)]
            n += 1
            if n % 10:
                answer = _call(http, tally, "decide /v1/check", "POST", "/v1/check", json=case)
                if answer is not None and answer.status_code == 200:
                    key = repr(case)
                    decision = answer.json()["decision"]
                    with tally.lock:
                        expected = seen.setdefault(key, decision)
                    if decision != expected:
                        tally.errors.append(f"answer changed: {case} was {expected}, now {decision}")
            else:  # an AuthZEN batch of ten from one organisation
                batch = [c for c in cases if c["organisation"] == case["organisation"]][:10]
                body = {
                    "evaluations": [
                        {
                            "subject": {"type": c["subject"].get("type", "user"), "id": c["subject"]["id"]},
                            "resource": {"type": c["resource"]["type"], "id": "x"},
                            "action": {"name": c["action"]},
                            "context": {"time": MOMENT + "+08:00"},
                        }
                        for c in batch
                    ]
                }
                _call(
                    http,
                    tally,
                    "decide AuthZEN batch",
                    "POST",
                    f"/orgs/{case['organisation']}/access/v1/evaluations",
                    json=body,
                )


def editor(base: str, token: str, org: str, post: str, deadline: float, tally: Tally, done: list[int]) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    path = f"/admin/orgs/{org}/posts/{post}"
    with httpx.Client(base_url=base, timeout=30, headers=auth) as http:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            current = _call(http, tally, "edit: read", "GET", path)
            if current is None or current.status_code != 200:
                continue
            count = current.json().get("headcount", 1)
            changed = _call(
                http,
                tally,
                "edit: PATCH",
                "PATCH",
                path,
                ok_statuses=(200, 412),
                json={"headcount": count + 1},
                headers={"If-Match": current.headers["etag"]},
            )
            if changed is not None and changed.status_code == 200:
                done.append(1)
                with tally.lock:
                    tally.edits += 1
            elif changed is not None and changed.status_code == 412:
                with tally.lock:
                    tally.conflicts += 1
            if n % 5 == 0:  # a person added and removed again
                person = f"soak_{uuid.uuid4().hex[:8]}"
                created = _call(
                    http,
                    tally,
                    "edit: add person",
                    "POST",
                    f"/admin/orgs/{org}/people",
                    ok_statuses=(201,),
                    json={"id": person, "name": {"zh": "临时", "en": "temporary"}},
                )
                if created is not None and created.status_code == 201:
                    _call(
                        http,
                        tally,
                        "edit: remove person",
                        "DELETE",
                        f"/admin/orgs/{org}/people/{person}",
                        headers={"If-Match": created.headers.get("etag") or "*"},
                    )


def querier(base: str, token: str, deadline: float, tally: Tally) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    queries = [
        "/v1/orgs/sales_company/who?resource=expense&action=approve",
        "/v1/orgs/ninger_branch/people/wang_fang/permissions",
        "/v1/orgs/sales_company/posts/sales_representative/reporting-line",
        "/v1/decisions?limit=50",
        "/admin/orgs/sales_company/versions?limit=20",
        "/admin/audit?limit=20",
    ]
    with httpx.Client(base_url=base, timeout=30, headers=auth) as http:
        n = 0
        while time.monotonic() < deadline:
            path = queries[n % len(queries)]
            n += 1
            _call(http, tally, f"query {path.split('?')[0]}", "GET", path)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_load(
    base: str,
    token: str,
    pid: int,
    seconds: float,
    deciders: int = 4,
    editors: int = 2,
    queriers: int = 2,
    sample_every: float = 5.0,
) -> dict[str, Any]:
    """Run the mixed load against a running server; return what happened (see `report`)."""
    admin = httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"})
    org = f"soak_{uuid.uuid4().hex[:8]}"
    document = (
        (REPO / "policies/orgs/sales_company.yaml")
        .read_text(encoding="utf-8")
        .replace("id: sales_company", f"id: {org}", 1)
    )
    created = admin.post("/admin/orgs", content=document.encode(), headers={"Content-Type": "application/yaml"})
    assert created.status_code == 201, created.text
    post, start_count = "sales_analyst", admin.get(f"/admin/orgs/{org}/posts/sales_analyst").json().get("headcount", 1)
    tally, seen, done = Tally(), {}, []
    cases = _cases()
    started = time.monotonic()
    deadline = started + seconds
    threads = [threading.Thread(target=decider, args=(base, deadline, tally, cases, seen)) for _ in range(deciders)]
    threads += [
        threading.Thread(target=editor, args=(base, token, org, post, deadline, tally, done)) for _ in range(editors)
    ]
    threads += [threading.Thread(target=querier, args=(base, token, deadline, tally)) for _ in range(queriers)]
    for thread in threads:
        thread.start()
    samples: list[tuple[float, float, int]] = []
    while time.monotonic() < deadline:
        version = admin.get("/readyz").json().get("policy_version", 0)
        samples.append((time.monotonic() - started, rss_mib(pid), version))
        time.sleep(min(sample_every, max(0.0, deadline - time.monotonic())))
    for thread in threads:
        thread.join(timeout=60)
    samples.append((time.monotonic() - started, rss_mib(pid), admin.get("/readyz").json().get("policy_version", 0)))
    final = admin.get(f"/admin/orgs/{org}/posts/{post}").json().get("headcount", 1)
    if final != start_count + len(done):
        tally.errors.append(f"lost update: headcount {final}, expected {start_count} + {len(done)} edits")
    if not admin.get("/admin/audit/verify").json().get("ok"):
        tally.errors.append("the audit chain is broken")
    admin.close()
    return {
        "seconds": time.monotonic() - started,
        "tally": tally,
        "samples": samples,
        "workers": (deciders, editors, queriers),
    }


def report(result: dict[str, Any], database: str, max_growth: float) -> tuple[str, bool]:
    tally: Tally = result["tally"]
    samples = result["samples"]
    seconds = result["seconds"]
    warm = [s for s in samples if s[0] >= seconds / 5] or samples
    growth = samples[-1][1] - warm[0][1]
    peak = max(s[1] for s in samples)
    ok = not tally.errors and growth <= max_growth
    lines = [
        (
            f"Soak run of {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: {seconds / 60:.1f} min on {database}, "
            f"{platform.machine()} with {os.cpu_count()} cores; {result['workers'][0]} deciders, {result['workers'][1]} editors, "
            f"{result['workers'][2]} queriers, one server process."
        ),
        "",
        "| requests | count | per second | median ms | p99 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind in sorted(tally.requests):
        times = sorted(tally.latencies[kind])
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        lines.append(
            f"| {kind} | {tally.requests[kind]} | {tally.requests[kind] / seconds:.1f} | "
            f"{statistics.median(times) * 1000:.1f} | {p99 * 1000:.1f} |"
        )
    lines += [
        "",
        (
            f"- edits applied: {tally.edits}; stale ETags answered 412 and retried: {tally.conflicts}; "
            f"policy version {samples[0][2]} → {samples[-1][2]}"
        ),
        (
            f"- server memory (RSS): {samples[0][1]:.0f} MiB at start, {warm[0][1]:.0f} MiB after the warm-up, "
            f"{samples[-1][1]:.0f} MiB at the end (peak {peak:.0f}); growth after warm-up {growth:+.1f} MiB "
            f"(bound {max_growth:.0f} MiB)"
        ),
        f"- errors: {len(tally.errors)}" + (": " + "; ".join(tally.errors[:5]) if tally.errors else ""),
        f"- result: {'PASS' if ok else 'FAIL'}",
    ]
    return "\n".join(lines), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.hardening.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument(
        "--database", choices=["sqlite", "postgresql"], default="postgresql" if POSTGRES_URL else "sqlite"
    )
    parser.add_argument("--deciders", type=int, default=4)
    parser.add_argument("--editors", type=int, default=2)
    parser.add_argument("--queriers", type=int, default=2)
    parser.add_argument("--max-growth-mib", type=float, default=64.0)
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    if args.database == "postgresql" and not POSTGRES_URL:
        parser.error("set DUTYLINE_TEST_POSTGRES_URL for --database postgresql")
    with ExitStack() as stack:
        folder = Path(stack.enter_context(_tempdir()))
        url = stack.enter_context(fresh_database(args.database, folder))
        token = create_admin(url)
        from tests.hardening.conftest import load_content

        load_content(url)
        server = LiveServer(url, extra_env={"DUTYLINE_LOG_LEVEL": "warning"})
        stack.callback(server.stop)
        server.wait_ready()
        result = run_load(
            server.url, token, server.process.pid, args.minutes * 60, args.deciders, args.editors, args.queriers
        )
        text, ok = report(result, args.database, args.max_growth_mib)
        log = server.log_text()
        if "unhandled error" in log or "Traceback" in log:
            ok = False
            text += "\n- the server logged an unhandled error (see its log)"
    print(text)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    return 0 if ok else 1


def _tempdir():  # type: ignore[no-untyped-def]
    import tempfile

    return tempfile.TemporaryDirectory(prefix="dutyline-soak-")


if __name__ == "__main__":
    sys.exit(main())
