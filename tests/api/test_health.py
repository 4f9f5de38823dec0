"""`dutyline serve` starts the Litestar app: health and readiness over real HTTP."""

from __future__ import annotations

import httpx

from tests.live import LiveServer


def test_a_fresh_server_loads_the_seed_and_is_ready(seeded_server: LiveServer) -> None:
    health = httpx.get(f"{seeded_server.url}/healthz").json()
    assert health["status"] == "ok"
    ready = httpx.get(f"{seeded_server.url}/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["organisations"] == 7 and body["policy_version"] >= 7 and body["database"] == "ok"


def test_a_server_with_an_empty_database_is_alive_but_not_ready(database_url: str) -> None:
    server = LiveServer(database_url, seed_dir="")
    try:
        server.wait_ready()
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "not ready"
    finally:
        server.stop()
