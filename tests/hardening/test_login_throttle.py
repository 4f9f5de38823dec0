"""Issue 11, item 17: login throttling was per username and address, so a new username each time cost an argon2id
hash (64 MiB) without limit. Now each address also has a budget of tries whatever the usernames
(DUTYLINE_LOGIN_ATTEMPTS_PER_ADDRESS), counted in the database before any password is hashed, and one process
computes at most DUTYLINE_PASSWORD_HASH_CONCURRENCY hashes at once. Real servers; the hashes computed are read from
their /metrics (`dutyline_password_hashes_total{kind="verify"}`)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.api.admin_client import PASSWORD, create_admin
from tests.live import LiveServer


@contextlib.contextmanager
def _servers(database_url: str, count: int, **env: str) -> Iterator[list[LiveServer]]:
    """`count` servers on one database, which holds root (password PASSWORD)."""
    create_admin(database_url)  # root, with PASSWORD
    servers = [LiveServer(database_url, extra_env=env) for _ in range(count)]
    try:
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def server(database_url: str) -> Iterator[LiveServer]:
    with _servers(database_url, 1, DUTYLINE_LOGIN_ATTEMPTS_PER_ADDRESS="8") as (server,):
        yield server


def metric(server: LiveServer, name: str, label: str) -> float:
    """A sample of the server's /metrics (0 when it has none yet)."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    labels = f"{{{label}}}" if label else ""
    found = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def verified(*servers: LiveServer) -> float:
    return sum(metric(s, "dutyline_password_hashes_total", 'kind="verify"') for s in servers)


def from_address(server: LiveServer, address: str) -> httpx.Client:
    """A client whose connections come from `address` (any 127.x.y.z is this host's loopback)."""
    return httpx.Client(base_url=server.url, transport=httpx.HTTPTransport(local_address=address), timeout=60)


def login(client: httpx.Client, username: str, password: str = "not the password") -> httpx.Response:
    return client.post("/admin/login", json={"username": username, "password": password})


def test_new_usernames_from_one_address_are_refused_before_any_hash_is_computed(server: LiveServer) -> None:
    attacker = from_address(server, "127.0.0.9")
    before = verified(server)
    tried = [login(attacker, f"guess_{uuid.uuid4().hex[:8]}").status_code for _ in range(8)]
    assert tried == [401] * 8, "within the address's budget, each try is checked (and costs a hash)"
    assert verified(server) == before + 8
    for _ in range(12):
        refused = login(attacker, f"guess_{uuid.uuid4().hex[:8]}")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1, refused.text
    assert verified(server) == before + 8, "no hash was computed for a refused try"
    assert metric(server, "dutyline_logins_throttled_total", 'by="address"') == 12
    assert login(attacker, "root", PASSWORD).status_code == 429, "from that address, even the right password waits"
    assert login(from_address(server, "127.0.0.10"), "root", PASSWORD).status_code == 200, "other addresses go on"


def test_a_successful_login_gives_its_try_back_to_the_address(database_url: str) -> None:
    """An office behind one address is not locked out by its own logins: only failures (and tries in flight)
    count against the address."""
    with _servers(database_url, 1, DUTYLINE_LOGIN_ATTEMPTS_PER_ADDRESS="3") as (server,):
        office = from_address(server, "127.0.0.12")
        assert [login(office, "root", PASSWORD).status_code for _ in range(6)] == [200] * 6
        assert [login(office, f"typo_{n}").status_code for n in range(3)] == [401] * 3
        assert login(office, "typo_again").status_code == 429


def test_the_address_budget_is_shared_by_every_process_on_the_database(database_url: str) -> None:
    with _servers(database_url, 2, DUTYLINE_LOGIN_ATTEMPTS_PER_ADDRESS="6") as servers:
        clients = [from_address(server, "127.0.0.11") for server in servers]
        before = verified(*servers)
        answers = [login(clients[n % 2], f"guess_{uuid.uuid4().hex[:8]}").status_code for n in range(14)]
        assert answers == [401] * 6 + [429] * 8, "six tries in all, however they are spread over the two"
        assert verified(*servers) == before + 6


def test_parallel_logins_compute_one_hash_at_a_time_when_so_bounded(database_url: str) -> None:
    env = {"DUTYLINE_PASSWORD_HASH_CONCURRENCY": "1", "DUTYLINE_LOGIN_ATTEMPTS_PER_ADDRESS": "100"}
    with _servers(database_url, 1, **env) as (server,):
        addresses = [f"127.0.1.{n}" for n in range(1, 9)]
        with concurrent.futures.ThreadPoolExecutor(len(addresses)) as pool:
            answers = list(pool.map(lambda a: login(from_address(server, a), "root", PASSWORD).status_code, addresses))
        assert answers == [200] * len(addresses), "they queued for the one slot, none was refused"
        assert metric(server, "dutyline_password_hashes_running_peak", "") == 1.0
