"""`dutyline serve` starts the Litestar app: health and readiness over real HTTP."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import POSTGRES_URL, REPO, fresh_database
from tests.live import LiveServer, free_port


def test_a_fresh_server_loads_the_seed_and_is_ready(seeded_server: LiveServer) -> None:
    health = httpx.get(f"{seeded_server.url}/healthz").json()
    assert health["status"] == "ok"
    ready = httpx.get(f"{seeded_server.url}/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["organisations"] == 7 and body["policy_version"] >= 7 and body["database"] == "ok"


def test_the_servers_own_address_opens_the_console(seeded_server: LiveServer) -> None:
    answer = httpx.get(f"{seeded_server.url}/", timeout=10)
    assert answer.status_code == 302 and answer.headers["location"] == "/console/"
    page = httpx.get(f"{seeded_server.url}/", timeout=10, follow_redirects=True)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]


def test_a_server_with_an_empty_database_is_alive_but_not_ready(database_url: str) -> None:
    server = LiveServer(database_url, seed_dir="")
    try:
        server.wait_ready()
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "not ready"
    finally:
        server.stop()


class Gate:
    """A TCP gate on a loopback port in front of the test PostgreSQL: open, it forwards bytes both ways; shut, it
    drops every connection through it and its port refuses new ones (nothing listens there), as a database that
    went away does. The database itself is real and never touched."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.open()

    def open(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def shut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() in progress; close alone would not
            listener.close()
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # shut
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._connections += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)


@pytest.mark.skipif(not POSTGRES_URL, reason="needs DUTYLINE_TEST_POSTGRES_URL")
def test_healthz_and_readyz_probe_postgresql_on_every_call_and_say_when_it_refuses_connections(tmp_path: Path) -> None:
    with fresh_database("postgresql", tmp_path) as direct:
        address = urlsplit(direct)
        gate = Gate((address.hostname or "127.0.0.1", address.port or 5432))
        user = f"{address.username}@" if address.username else ""
        gated = direct.replace(address.netloc, f"{user}127.0.0.1:{gate.port}", 1)
        server = LiveServer(gated, seed_dir=str(REPO / "policies"))
        try:
            server.wait_ready()
            alive = httpx.get(f"{server.url}/healthz", timeout=10).json()
            assert (alive["status"], alive["database"]) == ("ok", "ok"), alive
            assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200

            gate.shut()
            with pytest.raises(ConnectionRefusedError):  # the URL the server uses now refuses connections
                socket.create_connection(("127.0.0.1", gate.port), timeout=5).close()
            # The very next call says so: a probe each time, not a remembered answer.
            alive = httpx.get(f"{server.url}/healthz", timeout=10)
            assert alive.status_code == 200, alive.text  # alive: restarting would not bring the database back
            assert (alive.json()["status"], alive.json()["database"]) == ("degraded", "unreachable"), alive.text
            ready = httpx.get(f"{server.url}/readyz", timeout=10)
            assert ready.status_code == 503 and ready.json()["database"] == "unreachable", ready.text
            assert ready.json()["policy_version"] >= 7, "the loaded policy is still there"

            gate.open()
            alive = httpx.get(f"{server.url}/healthz", timeout=10).json()
            assert (alive["status"], alive["database"]) == ("ok", "ok"), alive
            assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
        finally:
            gate.shut()
            server.stop()


def test_the_readmes_first_check_is_allowed_as_it_says(seeded_server: LiveServer) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## A first check", 1)[1].split("\n## ", 1)[0]
    [body] = re.findall(r"-d '(\{.*\})'", section)
    [path] = re.findall(r"curl -s http://127\.0\.0\.1:8000(\S+)", section)
    answer = httpx.post(f"{seeded_server.url}{path}", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["decision"] == "allow", answer.json()
    assert answer.json()["reasons"][0]["post"] == "sales_representative"
