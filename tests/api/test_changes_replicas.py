"""The change stream across replicas: two servers on one database, a change made through one, heard on the other's
stream. On PostgreSQL the periodic refresh is set to a minute, so the event got there by LISTEN/NOTIFY; on SQLite
the replicas poll (DUTYLINE_REFRESH_INTERVAL, 0.2 s in tests)."""

from __future__ import annotations

import concurrent.futures
import shutil
import uuid
from pathlib import Path

import pytest

from tests.api.admin_client import Client, create_admin
from tests.api.stream import Listener
from tests.api.test_replicas import NOTIFIED_ONLY
from tests.conftest import REPO, _backends, fresh_database
from tests.live import LiveServer

ORG = "sales_company"


def start(url: str, seed: Path, env: dict[str, str]) -> list[LiveServer]:
    """Two replicas started together on one database, seeded with one organisation (quick to start)."""
    (seed / "policies" / "orgs").mkdir(parents=True)
    (seed / "rules").mkdir()
    shutil.copy(REPO / "policies" / "orgs" / f"{ORG}.yaml", seed / "policies" / "orgs")
    shutil.copy(REPO / "rules" / f"{ORG}.yaml", seed / "rules")
    servers = [LiveServer(url, seed_dir=str(seed / "policies"), extra_env=env) for _ in range(2)]
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda s: s.wait_ready(timeout=180), servers))
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


@pytest.mark.parametrize("backend", _backends())
def test_a_change_made_on_one_replica_is_heard_on_the_others_stream(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path) as url:
        token = create_admin(url)
        # PostgreSQL: `start` sets the periodic refresh to a minute (only a notification is that quick); SQLite polls.
        polled = {} if backend == "postgresql" else {"DUTYLINE_REFRESH_INTERVAL": "0.2"}
        env = {**NOTIFIED_ONLY, "DUTYLINE_CHANGES_KEEPALIVE": "0.3", **polled}
        first, second = start(url, tmp_path / "seed", env)
        try:
            root = Client(first, token)
            with Listener(second.url, token) as there, Listener(first.url, token) as here:
                before = there.ready().id
                here.ready()
                person = f"p_{uuid.uuid4().hex[:8]}"
                created = root.post(
                    f"/admin/orgs/{ORG}/people",
                    json={
                        "id": person,
                        "name": {"zh": "新人", "en": "New"},
                        "assignments": [{"post": "sales_representative"}],
                    },
                )
                assert created.status_code == 201, created.text
                version = created.json()["version"]
                heard = there.change(version).data
                assert here.change(version).data == heard
            assert heard["entities"] == [{"organisation": ORG, "kind": "people", "id": person, "change": "added"}]
            # A replay on the other replica reads the store: the same event.
            with Listener(second.url, token, params={"since": before}) as replay:
                replay.ready()
                assert [e.data for e in replay.changes()] == [heard]
            root.close()
        finally:
            for server in (first, second):
                server.stop()
