"""Replicas on one PostgreSQL: real server processes, kept in step by LISTEN/NOTIFY.

The periodic refresh is set to a minute, so a change that shows up on the other replicas within seconds
got there by notification. The bench measures the real propagation time; these tests only bound it.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dutyline.orgmodel.document import Assignment, Names, Organisation, Person
from dutyline.orgmodel.validate import parse_organisation
from tests.api.admin_client import PASSWORD, create_admin
from tests.conftest import POSTGRES_URL, REPO, _backends, fresh_database
from tests.live import LiveServer

needs_postgres = pytest.mark.skipif(not POSTGRES_URL, reason="needs DUTYLINE_TEST_POSTGRES_URL")
NOTIFIED_ONLY = {"DUTYLINE_REFRESH_INTERVAL": "60"}
BOUND = 5.0  # seconds; generous on purpose (the bench reports the p99)


def start(url: str, count: int, extra_env: dict[str, str] | None = None) -> list[LiveServer]:
    """Start `count` servers at once (they migrate and seed the same database concurrently) and wait for all."""
    servers = [
        LiveServer(url, seed_dir=str(REPO / "policies"), extra_env={**NOTIFIED_ONLY, **(extra_env or {})})
        for _ in range(count)
    ]
    try:
        with concurrent.futures.ThreadPoolExecutor(count) as pool:
            list(pool.map(lambda s: s.wait_ready(), servers))
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[LiveServer]]]:
    with fresh_database("postgresql", tmp_path_factory.mktemp("replicas")) as url:
        servers = start(url, 3)
        try:
            yield url, servers
        finally:
            for server in servers:
                server.stop()


def hire(url: str, person: str) -> int:
    """A new person in the sales representative's post, stored directly in the database (as `import` does)."""
    from dutyline.services import orgs
    from dutyline.store.db import make_engine, session_factory

    org: Organisation = parse_organisation(
        (REPO / "policies" / "orgs" / "sales_company.yaml").read_text(encoding="utf-8"), "sales_company.yaml"
    ).organisation
    org.people.append(
        Person(id=person, name=Names(zh="新人", en="New hire"), assignments=[Assignment(post="sales_representative")])
    )
    engine = make_engine(url)
    try:
        [saved] = orgs.save_documents(session_factory(engine), [org], author="test", comment=f"hire {person}")
    finally:
        engine.dispose()
    return saved.version


def check(server: LiveServer, person: str, at_least_version: int | None = None) -> dict:
    body: dict = {
        "organisation": "sales_company",
        "subject": {"id": person},
        "resource": {"type": "customer"},
        "action": "contact",
    }
    if at_least_version is not None:
        body["at_least_version"] = at_least_version
    response = httpx.post(f"{server.url}/v1/check", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def answered(server: LiveServer, person: str, version: int) -> float:
    """Seconds until `server` allows the new person at `version` or later (fails past BOUND)."""
    started = time.monotonic()
    while True:
        result = check(server, person)
        if result["decision"] == "allow":
            assert result["policy_version"] >= version
            return time.monotonic() - started
        assert time.monotonic() - started < BOUND, f"{server.url} still at version {result['policy_version']}"
        time.sleep(0.01)


@pytest.mark.postgres
@needs_postgres
def test_replicas_started_together_share_one_seeded_store(cluster) -> None:  # type: ignore[no-untyped-def]
    _, servers = cluster
    versions = {httpx.get(f"{s.url}/readyz", timeout=5).json()["policy_version"] for s in servers}
    assert len(versions) == 1 and versions.pop() > 0
    assert {check(s, "li_na")["decision"] for s in servers} == {"allow"}


@pytest.mark.postgres
@needs_postgres
def test_a_page_token_from_one_replica_pages_on_at_every_other(cluster) -> None:  # type: ignore[no-untyped-def]
    """Issue 12, item 7: page tokens are signed with a key the replicas share (kept in the database), so a walk
    may go through any of them."""
    _, servers = cluster
    search = {
        "subject": {"type": "user"},
        "action": {"name": "view"},
        "resource": {"type": "regulation", "id": "r"},
        "context": {"time": "2026-10-15T10:00:00+08:00"},
    }
    path = "/orgs/ninger_branch/access/v1/search/subject"
    first = httpx.post(f"{servers[0].url}{path}", json={**search, "page": {"limit": 2}}, timeout=10).json()
    token = first["page"]["next_token"]
    assert token
    pages = [
        httpx.post(f"{s.url}{path}", json={**search, "page": {"limit": 2, "token": token}}, timeout=10) for s in servers
    ]
    assert [p.status_code for p in pages] == [200] * len(servers), [p.text for p in pages]
    assert len({p.text for p in pages}) == 1  # the same page, whoever answers


@pytest.mark.postgres
@needs_postgres
def test_a_change_is_answered_by_every_replica_within_moments(cluster) -> None:  # type: ignore[no-untyped-def]
    url, servers = cluster
    assert check(servers[1], "ma_chao")["decision"] == "deny"
    version = hire(url, "ma_chao")
    for server in servers:
        answered(server, "ma_chao", version)


@pytest.mark.postgres
@needs_postgres
def test_a_replica_started_after_a_change_serves_it(cluster) -> None:  # type: ignore[no-untyped-def]
    url, _ = cluster
    version = hire(url, "he_jing")
    [late] = start(url, 1)
    try:
        result = check(late, "he_jing")
        assert result["decision"] == "allow" and result["policy_version"] >= version
    finally:
        late.stop()


@pytest.mark.postgres
@needs_postgres
def test_at_least_version_makes_a_lagging_replica_catch_up(cluster) -> None:  # type: ignore[no-untyped-def]
    url, _ = cluster
    # no notifications and a minute between refreshes: this replica lags behind every change
    [lagging] = start(url, 1, {"DUTYLINE_LISTEN": "0"})
    try:
        version = hire(url, "zhou_xun")
        stale = check(lagging, "zhou_xun")
        assert stale["decision"] == "deny" and stale["policy_version"] < version
        fresh = check(lagging, "zhou_xun", at_least_version=version)
        assert fresh["decision"] == "allow" and fresh["policy_version"] >= version
    finally:
        lagging.stop()


def test_workers_on_one_port_are_replicas_too(tmp_path: Path) -> None:
    """`dutyline serve --workers 2` (here DUTYLINE_WORKERS): the workers migrate and seed once between them,
    and each picks up a change made elsewhere (on SQLite by polling)."""
    with fresh_database("sqlite", tmp_path) as url:
        server = LiveServer(url, seed_dir=str(REPO / "policies"), extra_env={"DUTYLINE_WORKERS": "2"})
        try:
            server.wait_ready()
            assert {check(server, "li_na")["decision"] for _ in range(10)} == {"allow"}
            version = hire(url, "tang_wei")
            time.sleep(1.0)  # both workers poll every 0.2 s
            answers = [check(server, "tang_wei") for _ in range(20)]
            assert {a["decision"] for a in answers} == {"allow"}
            assert min(a["policy_version"] for a in answers) >= version
        finally:
            server.stop()


LOGIN_WINDOW = 8.0  # seconds; long enough for a handful of logins on a busy machine, short enough to wait out


@pytest.mark.parametrize("backend", _backends())
def test_failed_logins_on_any_replica_count_against_one_limit(backend: str, tmp_path: Path) -> None:
    """Two server processes on one database (PostgreSQL: replicas; SQLite: as `serve --workers 2`) refuse the
    sixth try in a window however the tries are spread, tries at the same moment included, and let the right
    password in once the window has ended."""
    with fresh_database(backend, tmp_path) as url:
        create_admin(url, "ann", role="auditor")
        replicas = start(url, 2, {"DUTYLINE_LOGIN_WINDOW": str(LOGIN_WINDOW)})
        try:
            turns = itertools.cycle(replicas)

            def login(password: str, server: LiveServer | None = None) -> httpx.Response:
                server = server or next(turns)
                body = {"username": "ann", "password": password}
                return httpx.post(f"{server.url}/admin/login", json=body, timeout=30)

            assert [login("wrong password").status_code for _ in range(5)] == [401] * 5, "five tries, spread over both"
            for server in replicas:
                refused = login(PASSWORD, server)
                assert refused.status_code == 429, f"{server.url}: {refused.status_code}"
                assert 1 <= int(refused.headers["retry-after"]) <= LOGIN_WINDOW
            time.sleep(int(refused.headers["retry-after"]) + 0.5)
            assert login(PASSWORD).status_code == 200, "once the window has ended the right password is let in"

            with concurrent.futures.ThreadPoolExecutor(12) as pool:  # the count was cleared by that login
                at_once = Counter(pool.map(lambda n: login("wrong password", replicas[n % 2]).status_code, range(12)))
            assert at_once == Counter({401: 5, 429: 7}), "tries at the same moment on both replicas: still five"
        finally:
            for server in replicas:
                server.stop()
