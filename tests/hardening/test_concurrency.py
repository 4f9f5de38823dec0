"""Concurrent edits through the admin API, on SQLite and PostgreSQL: of 50 writers holding the same ETag exactly
one wins and 49 get 412; writers that re-read and retry lose no update; the history stays one line and the
audit chain intact."""

from __future__ import annotations

import concurrent.futures
import itertools
import threading
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.api.admin_client import Client, create_admin
from tests.conftest import POSTGRES_URL, REPO, _backends, fresh_database
from tests.hardening.conftest import Stack, load_content
from tests.live import LiveServer

WRITERS = 50


@pytest.fixture(scope="module", params=_backends())
def admin(request: pytest.FixtureRequest, stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """Root's client on a server of each backend (the shared one where it is that backend)."""
    shared = "postgresql" if POSTGRES_URL else "sqlite"
    if request.param == shared:
        yield stack.root
        return
    with fresh_database(request.param, tmp_path_factory.mktemp("concurrency")) as url:
        token = create_admin(url)
        load_content(url)
        server = LiveServer(url)
        try:
            server.wait_ready()
            yield Client(server, token)  # type: ignore[arg-type]
        finally:
            server.stop()


@pytest.fixture
def org(admin: Client) -> str:
    """An organisation of its own (a copy of sales_company), so that its history holds only this test's edits."""
    ident = f"conc_{uuid.uuid4().hex[:8]}"
    document = (
        (REPO / "policies/orgs/sales_company.yaml")
        .read_text(encoding="utf-8")
        .replace("id: sales_company", f"id: {ident}", 1)
    )
    created = admin.post("/admin/orgs", content=document.encode(), headers={"Content-Type": "application/yaml"})
    assert created.status_code == 201, created.text
    return ident


def _clients(admin: Client, n: int) -> list[httpx.Client]:
    """One connection per writer, so that the writes really arrive together."""
    return [
        httpx.Client(base_url=str(admin.http.base_url), headers=dict(admin.http.headers), timeout=60) for _ in range(n)
    ]


def _org_versions(admin: Client, org: str) -> list[int]:
    items = admin.get(f"/admin/orgs/{org}/versions", params={"limit": 1000}).json()["items"]
    return [i["version"] for i in items if i["kind"] == "org"]


def _assert_linear(admin: Client, org: str) -> list[int]:
    """Every version of the document follows the one before it: no two were made from the same base."""
    versions = _org_versions(admin, org)
    assert versions == sorted(versions, reverse=True) and len(set(versions)) == len(versions)
    for newer, older in itertools.pairwise(versions):
        assert admin.get(f"/admin/orgs/{org}/versions/{newer}/diff").json()["previous_version"] == older
    return versions


def test_fifty_writers_with_one_etag_one_wins_and_the_rest_get_412(admin: Client, org: str) -> None:
    path = f"/admin/orgs/{org}/posts/sales_analyst"
    etag = admin.get(path).headers["etag"]
    versions_before = _org_versions(admin, org)
    clients = _clients(admin, WRITERS)
    start = threading.Barrier(WRITERS)

    def write(n: int) -> tuple[int, int]:
        start.wait()
        answer = clients[n].patch(path, json={"headcount": 100 + n}, headers={"If-Match": etag})
        return answer.status_code, n

    with concurrent.futures.ThreadPoolExecutor(WRITERS) as pool:
        results = list(pool.map(write, range(WRITERS)))
    for client in clients:
        client.close()
    statuses = Counter(status for status, _ in results)
    assert statuses == {200: 1, 412: WRITERS - 1}, statuses
    winner = next(n for status, n in results if status == 200)
    assert admin.get(path).json()["headcount"] == 100 + winner, "the stored value is the winner's"
    versions = _assert_linear(admin, org)
    assert len(versions) == len(versions_before) + 1, "one write, one version"
    changes = [
        e
        for e in admin.get("/admin/audit", params={"org": org, "limit": 1000}).json()["items"]
        if e["target"] == f"{org}/posts/sales_analyst"
    ]
    assert len(changes) == 1, changes
    assert admin.get("/admin/audit/verify").json()["ok"]


def test_writers_that_reread_and_retry_lose_no_update(admin: Client, org: str) -> None:
    """Ten writers each add 1 to a counter five times, reading it with its ETag and retrying on 412."""
    path = f"/admin/orgs/{org}/posts/sales_analyst"
    admin.patch(path, json={"headcount": 10}, headers={"If-Match": admin.get(path).headers["etag"]})
    writers, rounds = 10, 5
    clients = _clients(admin, writers)
    start = threading.Barrier(writers)

    def add_ones(n: int) -> int:
        http, retries = clients[n], 0
        start.wait()
        for _ in range(rounds):
            while True:
                current = http.get(path)
                answer = http.patch(
                    path,
                    json={"headcount": current.json()["headcount"] + 1},
                    headers={"If-Match": current.headers["etag"]},
                )
                if answer.status_code == 200:
                    break
                assert answer.status_code == 412, answer.text
                retries += 1
        return retries

    with concurrent.futures.ThreadPoolExecutor(writers) as pool:
        retries = sum(pool.map(add_ones, range(writers)))
    for client in clients:
        client.close()
    assert admin.get(path).json()["headcount"] == 10 + writers * rounds, "no update was lost"
    assert retries > 0, "the writers did collide"
    _assert_linear(admin, org)
    assert admin.get("/admin/audit/verify").json()["ok"]


def test_concurrent_creates_of_one_id_make_one_entity(admin: Client, org: str) -> None:
    clients = _clients(admin, 20)
    start = threading.Barrier(20)
    body = {"id": "contested", "name": {"zh": "争", "en": "contested"}, "department": "business_dept"}

    def create(n: int) -> int:
        start.wait()
        return clients[n].post(f"/admin/orgs/{org}/posts", json=body).status_code

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        statuses = Counter(pool.map(create, range(20)))
    for client in clients:
        client.close()
    assert statuses == {201: 1, 409: 19}, statuses
    assert [p["id"] for p in admin.get(f"/admin/orgs/{org}/posts").json()["items"]].count("contested") == 1
