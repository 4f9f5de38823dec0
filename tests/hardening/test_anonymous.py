"""Issue 11, item 19: open by default. With DUTYLINE_REQUIRE_AUTH off, anyone who reached the port approved any
approval by naming the approver, and the deployment guide served on 0.0.0.0 that way. Now the decision API refuses
anonymous callers when the server is bound to an address other than loopback, or a request reaches it on one,
unless DUTYLINE_ALLOW_ANONYMOUS=true; and start-up warns whenever it takes anonymous callers."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.api.admin_client import Client, create_admin, token_for
from tests.conftest import REPO
from tests.live import LiveServer, free_port

EXPENSE = {
    "organisation": "sales_company",
    "subject": {"id": "zhao_lei"},
    "resource": {"type": "expense", "id": "exp-19"},
    "action": "submit",
    "context": {"amount": 12000, "currency": "CNY"},
}
SEED = str(REPO / "policies")


@contextlib.contextmanager
def serving(database_url: str, *args: str, **env: str) -> Iterator[LiveServer]:
    server = LiveServer(database_url, seed_dir=SEED, extra_env=env, args=args)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _opened(server: LiveServer, client: httpx.Client | Client) -> str:
    response = client.post("/v1/approvals", json=EXPENSE)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_bound_off_loopback_an_anonymous_caller_cannot_approve_by_naming_the_approver(database_url: str) -> None:
    """`dutyline serve --host 0.0.0.0 --workers 2`, DUTYLINE_REQUIRE_AUTH unset: every worker refuses anonymous
    callers of the decision API (a token still works), and says so at start."""
    admin = create_admin(database_url)
    with serving(database_url, "--host", "0.0.0.0", "--workers", "2") as server:
        root = Client(server, admin)
        machine = Client(server, token_for(root, "root", ["decide"], None, ["sales_company"]))
        approval = _opened(server, machine)
        for _ in range(6):  # requests spread over both workers
            anonymous = httpx.post(f"{server.url}/v1/approvals/{approval}/approve", json={"person": "wang_jianguo"})
            assert anonymous.status_code == 401, anonymous.text
            assert "DUTYLINE_ALLOW_ANONYMOUS is off" in anonymous.json()["message"]
            assert httpx.post(f"{server.url}/v1/check", json=EXPENSE).status_code == 401
        assert root.get(f"/v1/approvals/{approval}").json()["status"] == "pending"
        assert httpx.get(f"{server.url}/healthz").status_code == 200, "health stays open"
        attested = machine.post(f"/v1/approvals/{approval}/approve", json={"person": "wang_jianguo"})
        assert attested.status_code == 200, attested.text
        deadline = time.monotonic() + 10
        while server.log_text().count("refuses anonymous callers") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.log_text().count("bound to 0.0.0.0, not loopback") == 2, "each worker warns"


def test_anonymous_access_off_loopback_only_when_explicitly_allowed_and_then_with_a_warning(
    database_url: str,
) -> None:
    with serving(database_url, "--host", "0.0.0.0", DUTYLINE_ALLOW_ANONYMOUS="true") as server:
        anonymous = httpx.Client(base_url=server.url, timeout=30)
        approval = _opened(server, anonymous)
        approved = anonymous.post(f"/v1/approvals/{approval}/approve", json={"person": "wang_jianguo"})
        assert approved.status_code == 200, "as the setting asked"
        assert "the decision API is open to anyone who reaches 0.0.0.0" in server.log_text()


def test_on_loopback_the_open_api_still_warns_at_start(database_url: str) -> None:
    with serving(database_url) as server:
        assert httpx.post(f"{server.url}/v1/check", json=EXPENSE).status_code == 200, "local callers, as before"
        assert "open to anonymous callers on this host" in server.log_text()
    with serving(database_url, DUTYLINE_REQUIRE_AUTH="true") as server:
        assert "open to" not in server.log_text(), "no warning when credentials are required"


def _outward_address() -> str | None:
    """An address of this machine other than loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.123", 9))  # no packet is sent: this only picks the interface
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_a_request_reaching_the_server_on_another_address_needs_credentials_even_if_settings_say_loopback(
    database_url: str, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """uvicorn started by hand on every interface while DUTYLINE_HOST says 127.0.0.1: what the request arrived on
    decides, so a caller on the network is refused and a local one is not."""
    outward = _outward_address()
    if outward is None:
        pytest.skip("this machine has no address other than loopback")
    port = free_port()
    env = {**os.environ, "DUTYLINE_DATABASE_URL": database_url, "DUTYLINE_SEED_DIR": SEED, "DUTYLINE_HOST": "127.0.0.1"}
    log = (tmp_path / "uvicorn.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "dutyline.app:create_app",
            "--factory",
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
        ],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        local = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{local}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        assert httpx.post(f"{local}/v1/check", json=EXPENSE, timeout=10).status_code == 200
        remote = httpx.post(f"http://{outward}:{port}/v1/check", json=EXPENSE, timeout=10)
        assert remote.status_code == 401, remote.text
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
