"""Real server processes on PostgreSQL: start-up, HTTP throughput and latency, queries, writes and replicas.

Servers are `dutyline serve` child processes on loopback ports, each with the production settings (decision
log on, sampling 1.0) and `DUTYLINE_BENCH_ECHO=1`, which mounts `POST /bench/echo` in the same app: the ceiling
the decision endpoints are compared with, in the same process, under the same load generator.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from bench.changes import Change

REPO = Path(__file__).resolve().parents[1]
LOGS = Path(__file__).resolve().parent / ".data" / "logs"
POSTGRES_URL = (
    os.environ.get("DUTYLINE_BENCH_POSTGRES_URL")
    or os.environ.get("DUTYLINE_TEST_POSTGRES_URL")
    or "postgresql://postgres@127.0.0.1:5432/test"
)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else float("nan")


# --- the database --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def schema() -> Iterator[str]:
    """A schema of its own in the bench PostgreSQL, dropped afterwards; yields the URL that selects it."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine("postgresql+psycopg://" + POSTGRES_URL.split("://", 1)[1])
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{name}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def load(url: str, orgs: list, packs: list) -> float:
    """Store the family and its rule packs (one transaction, as `dutyline import` does); seconds taken."""
    from dutyline.store import orgs as org_store
    from dutyline.store import rule_packs as pack_store
    from dutyline.store.db import make_engine, session_factory, upgrade

    engine = make_engine(url)
    upgrade(engine)
    started = time.perf_counter()
    with session_factory(engine).begin() as session:
        org_store.save(session, orgs, author="bench", comment="generated family")
        pack_store.save(session, [("limits", p) for p in packs], author="bench", comment="generated limits")
    engine.dispose()
    return time.perf_counter() - started


# --- servers -------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli(url: str, *args: str, stdin: str = "") -> str:
    env = {**os.environ, "DUTYLINE_DATABASE_URL": url, "DUTYLINE_SEED_DIR": ""}
    result = subprocess.run(
        [sys.executable, "-m", "dutyline", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"dutyline {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


class Server:
    """`dutyline serve` in a child process; `started` is when it was spawned."""

    def __init__(self, url: str, workers: int = 1, env: dict[str, str] | None = None) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (LOGS / f"server-{self.port}.log").open("w")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dutyline", "serve", "--port", str(self.port), "--workers", str(workers)],
            env={
                **os.environ,
                "DUTYLINE_DATABASE_URL": url,
                "DUTYLINE_SEED_DIR": "",
                "DUTYLINE_LOG_LEVEL": "warning",
                "DUTYLINE_BENCH_ECHO": "1",
                **(env or {}),
            },
            cwd=REPO,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 180) -> float:
        """Seconds from spawning to the first 200 from /readyz (the policy loaded, the database reachable)."""
        return wait_until(
            self.process,
            self.started,
            lambda: answered_ok(httpx.get(f"{self.url}/readyz", timeout=1)),
            timeout,
            "server",
            self.log.name,
        )

    def rss(self) -> int:
        """Resident memory of the server and its worker processes, in bytes."""
        return sum(_rss(pid) for pid in [self.process.pid, *_children(self.process.pid)])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def answered_ok(response: httpx.Response) -> bool:
    return response.status_code == 200


def wait_until(
    process: subprocess.Popen[bytes], started: float, probe: Callable[[], bool], timeout: float, what: str, log: str
) -> float:
    """Seconds from `started` (a `perf_counter` reading) until `probe()` is true: a RuntimeError as soon as the
    process exits, a TimeoutError after `timeout` seconds. A probe that cannot connect yet counts as not ready."""
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}); see {log}")
        try:
            if probe():
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready in {timeout:.0f} s; see {log}")


def rss(pid: int) -> int:
    """Resident memory of one process, in bytes."""
    return _rss(pid)


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


# --- load generation -----------------------------------------------------------------------------------------


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    seconds: float
    connections: int
    tool: str = "wrk"


def wrk(url: str, path: str, bodies: list[bytes], seconds: float = 10, connections: int = 32) -> Load:
    """`wrk` (one thread) POSTing `bodies` in turn to `path`; throughput and latency percentiles."""
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    quoted = ",\n".join("[==[" + b.decode() + "]==]" for b in bodies)
    script.write_text(
        f"local bodies = {{\n{quoted}\n}}\nlocal i = 0\n"
        "local headers = {['Content-Type'] = 'application/json'}\n"
        f"request = function()\n  i = i % #bodies + 1\n  return wrk.format('POST', '{path}', headers, bodies[i])\nend\n"
    )
    try:
        result = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", str(script), url],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
    finally:
        script.unlink()
    out = result.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return Load(rps, _ms(out, "50%"), _ms(out, "99%"), errors, seconds, connections)


def _ms(out: str, label: str) -> float:
    match = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def concurrently(jobs: list[Callable[[], Any]]) -> list[Any]:
    results: list[Any] = [None] * len(jobs)

    def run(i: int) -> None:
        results[i] = jobs[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def sequential(client: httpx.Client, calls: list[tuple[str, str, Any]]) -> dict[str, float]:
    """One request at a time (no load): latency percentiles in ms, as a caller would see them."""
    latencies = []
    for method, path, body in calls:
        t0 = time.perf_counter()
        response = client.request(method, path, json=body)
        latencies.append((time.perf_counter() - t0) * 1000)
        response.raise_for_status()
    return {"p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99), "n": len(latencies)}


# --- request bodies ------------------------------------------------------------------------------------------


def evaluation(r: list, at: str) -> dict[str, Any]:
    return {
        "subject": {"type": "user", "id": r[1]},
        "action": {"name": r[3]},
        "resource": {"type": r[2], "id": "r1"},
        "context": {"organisation": r[0], "time": at},
    }


def check(r: list, at: str) -> dict[str, Any]:
    return {"organisation": r[0], "subject": {"id": r[1]}, "resource": {"type": r[2]}, "action": r[3], "at": at}


def encode(values: list[Any]) -> list[bytes]:
    return [json.dumps(v, ensure_ascii=False, separators=(",", ":")).encode() for v in values]


# --- changes -------------------------------------------------------------------------------------------------


class AdminClient:
    """Writes through a replica's admin API (`PATCH /admin/orgs/{org}/{collection}/{id}`, If-Match)."""

    def __init__(self, url: str, database_url: str) -> None:
        cli(
            database_url,
            "admin",
            "create",
            "bench",
            "--role",
            "system_admin",
            "--password-stdin",
            stdin="bench-password-1234567890\n",
        )
        issued = cli(database_url, "admin", "token", "bench", "--scope", "admin", "--scope", "read", "--all-orgs")
        token = issued.strip().splitlines()[-1]
        self.client = httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"})

    def etag(self, change: Change) -> str:
        # A replica learns of users and roles made elsewhere (here: by the CLI) on its next refresh, within a
        # second: until then a new token is known but its roles are not (403).
        deadline = time.monotonic() + 10
        while True:
            response = self.client.get(f"/admin/orgs/{change.org}/{change.collection}/{change.ident}")
            if response.status_code != 403 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        response.raise_for_status()
        return response.headers["etag"]

    def apply(self, change: Change, etag: str) -> int:
        response = self.client.patch(
            f"/admin/orgs/{change.org}/{change.collection}/{change.ident}",
            json=change.patch,
            headers={"If-Match": etag},
        )
        if response.status_code >= 300:
            raise RuntimeError(f"admin write refused: {response.status_code} {response.text[:300]}")
        return int(response.json().get("version", 0))
