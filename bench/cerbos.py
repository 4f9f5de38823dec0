"""Cerbos, a real peer: its PDP binary, the same organisations as its policies, agreement and load beside Dutyline.

    .venv/bin/python -m bench.cerbos 10000     # one size on its own: load, agreement, HTTP beside Dutyline's peers

The binary comes from the npm registry (`@cerbos/cerbos-linux-x64`, which holds the Go executable) into
`bench/.cerbos/` on first use. Policies are generated from Dutyline's compiled organisations
(`bench/cerbos_policies.py`) into `bench/.data/<size>/cerbos/`, and `cerbos server` serves them from its `disk`
store on loopback, audit log off. `python -m bench.run` calls `load_and_agree` at every size and `http` at the
largest one Cerbos loaded.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench import cerbos_policies as cp
from bench import service as svc
from bench.generate import rule_pack
from dutyline.engines.compiler import CompiledOrg, compile_org
from dutyline.engines.decision import Check, decide
from dutyline.engines.rules import compile_rules
from dutyline.orgmodel.document import Organisation

VERSION = "0.55.0"
PACKAGE = f"@cerbos/cerbos-linux-x64@{VERSION}"
HOME = Path(__file__).resolve().parent / ".cerbos"
BINARY = HOME / "node_modules" / "@cerbos" / "cerbos-linux-x64" / "cerbos-linux-x64"
READY_TIMEOUT_S = 300.0  # "loads in reasonable time": a size that takes longer is reported as not loaded
AGREEMENT_SAMPLE = 2_000
BATCH = 100


class Unavailable(RuntimeError):
    """The Cerbos binary cannot be had here (no npm, no registry, another platform)."""


def binary() -> Path:
    """The Cerbos executable, installed from npm into `bench/.cerbos/` when missing."""
    if BINARY.exists():
        return BINARY
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise Unavailable(f"{PACKAGE} holds a Linux x86-64 binary; this is {platform.system()} {platform.machine()}")
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("npm is not on the PATH (the Cerbos binary is installed from the npm registry)")
    HOME.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [npm, "install", "--prefix", str(HOME), "--no-audit", "--no-fund", PACKAGE],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0 or not BINARY.exists():
        raise Unavailable(f"npm install {PACKAGE} failed: {result.stderr.strip()[-500:]}")
    return BINARY


class Server:
    """`cerbos server` on loopback ports over a folder of policies (disk store, no watching, audit off)."""

    def __init__(self, policies: Path, max_resources: int = BATCH) -> None:
        executable = binary()
        svc.LOGS.mkdir(parents=True, exist_ok=True)
        self.port, grpc = svc.free_port(), svc.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = policies.parent / f"conf-{self.port}.yaml"
        config.write_text(
            json.dumps(
                {
                    "server": {
                        "httpListenAddr": f"127.0.0.1:{self.port}",
                        "grpcListenAddr": f"127.0.0.1:{grpc}",
                        # the default caps a request at 50 resources: batches of 100 need more
                        "requestLimits": {"maxActionsPerResource": 50, "maxResourcesPerRequest": max_resources},
                    },
                    "storage": {"driver": "disk", "disk": {"directory": str(policies), "watchForChanges": False}},
                    "audit": {"enabled": False},
                    "telemetry": {"disabled": True},
                }
            )
        )
        self.config = config
        self.log = (svc.LOGS / f"cerbos-{self.port}.log").open("w")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [str(executable), "server", f"--config={config}", "--log-level=warn"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "CERBOS_NO_TELEMETRY": "1"},
        )

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> float:
        """Seconds from spawning to the first healthy answer (every policy compiled and indexed)."""
        return svc.wait_until(
            self.process,
            self.started,
            lambda: svc.answered_ok(httpx.get(f"{self.url}/_cerbos/health", timeout=1)),
            timeout,
            "cerbos",
            self.log.name,
        )

    def rss(self) -> int:
        return svc.rss(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        self.config.unlink(missing_ok=True)


class Bare:
    """`bench/bare.py` under uvicorn, one worker: the framework's ceiling."""

    def __init__(self) -> None:
        svc.LOGS.mkdir(parents=True, exist_ok=True)
        self.port = svc.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (svc.LOGS / f"bare-{self.port}.log").open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.bare:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=svc.REPO,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        svc.wait_until(
            self.process,
            time.perf_counter(),
            lambda: svc.answered_ok(httpx.post(self.url + "/", content=b"{}", timeout=1)),
            timeout,
            "bare app",
            self.log.name,
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)
        self.log.close()


# --- the questions, as Cerbos is asked them ------------------------------------------------------------------


def check_body(org: CompiledOrg, person: str, resources: list[tuple[str, str]], at: float) -> dict[str, Any]:
    """`POST /api/check/resources`: one principal (the person's active posts as roles), one action per resource."""
    return {
        "requestId": "bench",
        "principal": {"id": person, "roles": cp.roles(org, person, at)},
        "resources": [
            {"actions": [action], "resource": {"kind": cp.kind(org.id, rtype), "id": f"r{i}"}}
            for i, (rtype, action) in enumerate(resources)
        ],
    }


def authzen_body(org: CompiledOrg, person: str, rtype: str, action: str, at: float) -> dict[str, Any] | None:
    """`POST /access/v1/evaluation`: Cerbos maps `subject.type` to the principal's one role, so only a person with
    exactly one active post can be asked this way (None otherwise)."""
    posts = cp.roles(org, person, at)
    if len(posts) != 1 or posts == [cp.NO_POST]:
        return None
    return {
        "subject": {"type": posts[0], "id": person},
        "action": {"name": action},
        "resource": {"type": cp.kind(org.id, rtype), "id": "r1"},
    }


def _allowed(answer: dict[str, Any]) -> list[bool]:
    return [next(iter(r["actions"].values())) == "EFFECT_ALLOW" for r in answer["results"]]


# --- per size: load and agreement ----------------------------------------------------------------------------


def policies_for(folder: Path, compiled: list[CompiledOrg]) -> tuple[Path, int, float]:
    """The size's Cerbos policies (written once, then reused); their folder, count and seconds to generate."""
    target = folder / "cerbos" / "policies"
    marker = folder / "cerbos" / "count.txt"
    if marker.exists():
        return target, int(marker.read_text()), 0.0
    if target.exists():
        shutil.rmtree(target)
    started = time.perf_counter()
    count = cp.write(compiled, target)
    marker.write_text(str(count))
    return target, count, time.perf_counter() - started


def compiled_family(orgs: list[Organisation]) -> dict[str, CompiledOrg]:
    return {org.id: compile_org(org) for org in orgs}


def touched_by_rules(compiled: dict[str, CompiledOrg], orgs: list[Organisation]) -> set[tuple[str, str, str]]:
    """(organisation, resource type, action) a business rule of the bench's rule packs looks at."""
    out = set()
    for org in orgs:
        for rtype, action in compile_rules([rule_pack(org)], compiled[org.id]).index:
            out.add((org.id, rtype, action))
    return out


def agreement(url: str, compiled: dict[str, CompiledOrg], touched: set, plain: list, at: float) -> dict[str, Any]:
    """The same questions asked of Dutyline's decision core (in process) and of Cerbos (native and AuthZEN)."""
    native = {"compared": 0, "disagreements": 0, "examples": []}
    authzen = {"compared": 0, "disagreements": 0, "examples": [], "multi_post_left_out": 0}
    left_out = 0
    with httpx.Client(base_url=url, timeout=30) as client:
        for org_id, person, rtype, action in plain[:AGREEMENT_SAMPLE]:
            if (org_id, rtype, action) in touched:
                left_out += 1
                continue
            org = compiled[org_id]
            ours = decide(org, Check(person, rtype, action, at)).allowed
            response = client.post("/api/check/resources", json=check_body(org, person, [(rtype, action)], at))
            response.raise_for_status()
            _count(native, ours, _allowed(response.json())[0], (org_id, person, rtype, action))
            body = authzen_body(org, person, rtype, action, at)
            if body is None:
                authzen["multi_post_left_out"] += 1
                continue
            response = client.post("/access/v1/evaluation", json=body)
            response.raise_for_status()
            _count(authzen, ours, bool(response.json()["decision"]), (org_id, person, rtype, action))
    return {"native": native, "authzen": authzen, "touched_by_rules_left_out": left_out}


def _count(tally: dict[str, Any], ours: bool, theirs: bool, question: tuple) -> None:
    tally["compared"] += 1
    if ours != theirs:
        tally["disagreements"] += 1
        if len(tally["examples"]) < 5:
            tally["examples"].append({"question": list(question), "dutyline": ours, "cerbos": theirs})


def load_and_agree(folder: Path, orgs: list[Organisation]) -> dict[str, Any]:
    """At one size: generate the policies, start Cerbos on them (seconds to ready, memory), check agreement."""
    requests = json.loads((folder / "requests.json").read_text())
    compiled = compiled_family(orgs)
    policies, count, generate_s = policies_for(folder, list(compiled.values()))
    out: dict[str, Any] = {"version": VERSION, "policies": count, "generate_s": generate_s}
    server = Server(policies)
    try:
        out["ready_s"] = server.wait_ready()
        out["rss_bytes"] = server.rss()
        out["agreement"] = agreement(
            server.url, compiled, touched_by_rules(compiled, orgs), requests["plain"], requests["at"]
        )
    except TimeoutError as exc:
        out["not_loaded"] = str(exc)
    finally:
        server.stop()
    return out


# --- HTTP beside Dutyline --------------------------------------------------------------------------------------


def bodies(folder: Path, compiled: dict[str, CompiledOrg]) -> dict[str, tuple[str, list[bytes]]]:
    """name → (path, bodies) for the Cerbos loads, from the size's first 2,000 plain requests (as Dutyline's)."""
    requests = json.loads((folder / "requests.json").read_text())
    at, plain = requests["at"], requests["plain"][:2000]
    single = [check_body(compiled[o], p, [(t, a)], at) for o, p, t, a in plain]
    # One principal per request with 100 resources of its own organisation (Cerbos's request has one principal;
    # Dutyline's batch has a subject per item): the types and actions of the next 100 questions.
    batch = []
    for i in range(0, len(plain), BATCH):
        chunk = plain[i : i + BATCH]
        o, p = chunk[0][0], chunk[0][1]
        batch.append(check_body(compiled[o], p, [(t, a) for _, _, t, a in chunk], at))
    evaluations = [b for o, p, t, a in plain if (b := authzen_body(compiled[o], p, t, a, at)) is not None]
    authzen_batches = [
        {"evaluations": evaluations[i : i + BATCH]} for i in range(0, len(evaluations) - BATCH + 1, BATCH)
    ]
    return {
        "cerbos_check": ("/api/check/resources", svc.encode(single)),
        "cerbos_check_100": ("/api/check/resources", svc.encode(batch)),
        "cerbos_authzen": ("/access/v1/evaluation", svc.encode(evaluations)),
        "cerbos_authzen_100": ("/access/v1/evaluations", svc.encode(authzen_batches)),
    }


def _both(url: str, path: str, payload: list[bytes], seconds: float) -> dict[str, Any]:
    svc.wrk(url, path, payload, 2, 8)  # warm up (connections, first compilations)
    saturated = svc.wrk(url, path, payload, seconds, 32)
    light = svc.wrk(url, path, payload, seconds / 2, 4)
    return {"saturated": vars(saturated), "light": vars(light), "path": path}


def http(folder: Path, orgs: list[Organisation], seconds: float, log: Any = None) -> dict[str, Any]:
    """Cerbos's native and AuthZEN endpoints, single and 100 per request, and the bare Litestar app: each at 32
    and 4 connections with the same `wrk` settings as Dutyline's endpoints."""
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    out: dict[str, Any] = {"size": int(folder.name), "version": VERSION}
    compiled = compiled_family(orgs)
    loads = bodies(folder, compiled)
    policies, _, _ = policies_for(folder, list(compiled.values()))
    del compiled
    server = Server(policies)
    try:
        out["ready_s"] = server.wait_ready()
        for name, (path, payload) in loads.items():
            log(f"http: {name} ({seconds:.0f} s at 32, {seconds / 2:.0f} s at 4 connections)")
            out[name] = _both(server.url, path, payload, seconds)
        out["rss_bytes"] = server.rss()
    finally:
        server.stop()
    bare = Bare()
    try:
        bare.wait_ready()
        log("http: bare Litestar app")
        out["bare"] = _both(bare.url, "/", loads["cerbos_authzen"][1], seconds)
    finally:
        bare.stop()
    return out


def main() -> None:
    from bench.data import prepare

    size = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5
    folder, orgs, lines = prepare(size)
    result = {"lines": lines, "load": load_and_agree(folder, orgs), "http": http(folder, orgs, seconds)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
