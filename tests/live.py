"""Real processes for tests: `dutyline serve` on a loopback port, and a private PostgreSQL cluster that a test
may stop and start (never the shared server on 5432).

A server's stdout and stderr go to a file, never to a pipe: nobody has to read it for the server to go on
writing, and a test can read what it logged (`log_text`). When a test fails, the end of the log of every
server still running is added to its report (the hook in `tests/conftest.py`); servers still running when
the test run ends are stopped.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import ClassVar

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """`dutyline serve` in a child process on a loopback port, its output in `log_path`."""

    running: ClassVar[set[LiveServer]] = set()

    def __init__(
        self,
        database_url: str,
        seed_dir: str = "",
        extra_env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        """`args`: more options of `dutyline serve` (`--host`, `--workers`)."""
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._folder = Path(tempfile.mkdtemp(prefix="dutyline-server-"))
        self.log_path = self._folder / "server.log"
        self._log = self.log_path.open("wb")
        env = {
            **os.environ,
            "DUTYLINE_DATABASE_URL": database_url,
            "DUTYLINE_SEED_DIR": seed_dir,
            "DUTYLINE_REFRESH_INTERVAL": "0.2",
            "DUTYLINE_LOG_LEVEL": "info",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dutyline", "serve", "--port", str(self.port), *args],
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        LiveServer.running.add(self)

    def wait_ready(self, timeout: float = 180) -> None:
        """Until it serves (`/healthz`: started, so migrated and seeded; `/readyz` may say the database is empty).

        A start takes a few seconds on an idle machine; the bound is generous because on a loaded one (every core
        running xdist workers, each starting servers that migrate, seed and compile seven organisations) a start
        has taken over a minute, and a test that failed for that would say nothing about the server."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log_text()[-8000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server did not become ready in {timeout:.0f} s:\n{self.log_text()[-8000:]}")

    def log_text(self, since: int = 0) -> str:
        """The server's output (from character `since`: take `len(log_text())` before, to see what one test caused)."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")[since:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        LiveServer.running.discard(self)
        self._log.close()
        shutil.rmtree(self._folder, ignore_errors=True)


@atexit.register
def _stop_the_forgotten() -> None:
    """A test that failed before its `stop()` leaves no server behind when the run ends."""
    for server in list(LiveServer.running):
        server.stop()


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian layout), or one on PATH; None if there is none."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PrivatePostgres:
    """A throwaway PostgreSQL cluster in a temporary folder, trust auth, on a free loopback port.

    Run as the `postgres` user when we are root (initdb refuses root). `stop()` is a crash (immediate
    shutdown), `start()` brings it back on the same port with the same data."""

    def __init__(self) -> None:
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) installed")
        self._bin = bin_dir
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="dutyline-pg-"))
        self.data = self.folder / "data"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            self._as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.folder, "postgres", "postgres")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            [*self._as_user, str(self._bin / tool), *args], capture_output=True, text=True, timeout=120, cwd=self.folder
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed: {result.stdout}\n{result.stderr}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "postgres.log"), "-o", options, "-w", "start")

    def stop(self, mode: str = "immediate") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        if self.running():
            try:
                self.stop("fast")
            except RuntimeError:
                self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)
