"""Faults: the database goes away under load and comes back, and a decision that fails inside is a deny.

A private PostgreSQL cluster (initdb into a temporary folder, its own port) is stopped and started under a
steady stream of decisions; the shared server on 5432 is never touched.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.api.admin_client import Client, create_admin
from tests.conftest import REPO
from tests.live import LiveServer, PrivatePostgres, postgres_bin

ORG = "sales_company"
# Two questions, both allowed: one the duties alone decide, one the rules decide with facts from the ledger
# (this month's expense total), which the service keeps in memory too.
QUESTIONS = [
    {"organisation": ORG, "subject": {"id": "li_na"}, "resource": {"type": "customer"}, "action": "contact"},
    {
        "organisation": ORG,
        "subject": {"id": "li_na"},
        "resource": {"type": "expense"},
        "action": "submit",
        "context": {"amount": 100, "currency": "CNY"},
    },
]
NEEDS_APPROVAL = {**QUESTIONS[1], "context": {"amount": 8000, "currency": "CNY"}}

pytestmark = pytest.mark.skipif(postgres_bin() is None, reason="needs PostgreSQL's initdb and pg_ctl")


@dataclass
class Stream:
    """Decisions asked back to back on one connection, each answer kept: (status, decision, policy version)."""

    url: str
    answers: list[tuple[float, int, str, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            for n in itertools.count():
                if self._stop.is_set():
                    break
                try:
                    response = http.post("/v1/check", json=QUESTIONS[n % 2])
                    body = response.json() if response.status_code == 200 else {}
                    self.answers.append(
                        (
                            time.monotonic(),
                            response.status_code,
                            body.get("decision", ""),
                            body.get("policy_version", 0),
                        )
                    )
                except httpx.HTTPError as exc:  # a refused or dropped connection is a failure too
                    self.errors.append(repr(exc))
                time.sleep(0.005)

    def stop(self) -> None:
        self._stop.set()

    def since(self, moment: float) -> list[tuple[float, int, str, int]]:
        return [a for a in self.answers if a[0] >= moment]


@pytest.fixture
def cluster() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    pg.start()
    try:
        yield pg
    finally:
        pg.destroy()


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _readyz(server: LiveServer) -> httpx.Response:
    return httpx.get(f"{server.url}/readyz", timeout=10)


def _usage_total(admin: Client) -> float:
    response = admin.get(f"/v1/orgs/{ORG}/usage", params={"person": "li_na", "rule": "monthly_expense_limit"})
    assert response.status_code == 200, response.text
    return response.json()["total"]


def _assert_unavailable(response: httpx.Response, what: str) -> None:
    assert response.status_code == 503, f"{what}: {response.status_code} {response.text}"
    body = response.json()
    assert body["error"] == "unavailable" and "database" in body["message"].lower(), f"{what}: {body}"


def _import(url: str, *paths: str) -> None:
    """`dutyline import` in a process of its own, straight into the database."""
    done = subprocess.run(
        [sys.executable, "-m", "dutyline", "import", *[str(REPO / p) for p in paths]],
        env={**os.environ, "DUTYLINE_DATABASE_URL": url, "DUTYLINE_SEED_DIR": ""},
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_decisions_survive_a_database_outage_and_everything_catches_up_after(cluster: PrivatePostgres) -> None:
    token = create_admin(cluster.url)
    _import(cluster.url, "policies/orgs/sales_company.yaml", "rules/sales_company.yaml")
    server = LiveServer(cluster.url)
    stream: Stream | None = None
    try:
        server.wait_ready()
        admin = Client(server, token)
        before = admin.get(f"/admin/orgs/{ORG}/posts/sales_analyst")
        assert before.status_code == 200, before.text
        total_before = _usage_total(admin)
        version = _readyz(server).json()["policy_version"]
        assert admin.post("/v1/check", json=NEEDS_APPROVAL).json()["decision"] == "needs_approval"

        stream = Stream(server.url)
        thread = threading.Thread(target=stream.run, daemon=True)
        thread.start()
        time.sleep(0.5)

        # --- the database goes away ------------------------------------------------------------------------
        cluster.stop()
        down = time.monotonic()
        _wait(lambda: _readyz(server).status_code == 503, 10, "readyz to report the database unreachable")
        ready = _readyz(server).json()
        assert ready["database"] == "unreachable" and ready["policy_version"] == version
        # Liveness stays 200 (restarting would not bring the database back) but says the database is gone.
        alive = httpx.get(f"{server.url}/healthz", timeout=10)
        assert alive.status_code == 200 and alive.json()["database"] == "unreachable", alive.text
        assert alive.json()["status"] == "degraded", alive.text

        _assert_unavailable(
            admin.post(
                f"/v1/orgs/{ORG}/usage", json={"person": "li_na", "rule": "monthly_expense_limit", "amount": 100}
            ),
            "recording usage",
        )
        _assert_unavailable(
            admin.patch(f"/admin/orgs/{ORG}/posts/sales_analyst", etag=before.headers["etag"], json={"headcount": 7}),
            "an admin edit",
        )
        _assert_unavailable(
            admin.put(
                f"/admin/orgs/{ORG}",
                etag="*",
                content=(REPO / "policies/orgs/sales_company.yaml").read_bytes(),
                headers={"Content-Type": "application/yaml"},
            ),
            "an import through the admin API",
        )
        _assert_unavailable(
            admin.post("/v1/approvals", json=NEEDS_APPROVAL),
            "opening an approval",
        )
        marked = [admin.post("/v1/check", json=QUESTIONS[0], headers={"X-Request-ID": f"outage-{n}"}) for n in range(3)]
        assert [m.status_code for m in marked] == [200] * 3
        time.sleep(2)  # decisions keep flowing while it is down
        outage = stream.since(down)

        # --- and comes back ---------------------------------------------------------------------------------
        cluster.start()
        up = time.monotonic()
        _wait(lambda: _readyz(server).status_code == 200, 30, "readyz to recover without a restart")
        recovered = time.monotonic() - up
        alive = httpx.get(f"{server.url}/healthz", timeout=10).json()
        assert alive["database"] == "ok" and alive["status"] == "ok", alive

        # Nothing of the refused writes was stored.
        assert _usage_total(admin) == total_before
        after = admin.get(f"/admin/orgs/{ORG}/posts/sales_analyst")
        assert after.status_code == 200 and after.headers["etag"] == before.headers["etag"]
        assert "headcount" not in after.json() or after.json()["headcount"] != 7
        assert _readyz(server).json()["policy_version"] == version, "no version was created by the refused writes"
        verified = admin.get("/admin/audit/verify").json()
        assert verified["ok"], verified
        # Decisions made while the database was down reach the decision log once it is back.
        for n in range(3):
            _wait(
                lambda n=n: admin.get("/v1/decisions", params={"request_id": f"outage-{n}"}).json()["items"],
                10,
                f"decision outage-{n} in the log",
            )

        # A change made now through the API is applied and decided on.
        change = admin.patch(
            f"/admin/orgs/{ORG}/posts/sales_analyst", etag=after.headers["etag"], json={"headcount": 3}
        )
        assert change.status_code == 200, change.text
        new_version = change.json()["version"]
        assert new_version > version
        read_back = admin.post("/v1/check", json={**QUESTIONS[0], "at_least_version": new_version}).json()
        assert read_back["policy_version"] >= new_version and read_back["decision"] == "allow"
        # A change made by another process (the CLI, straight into the database) reaches this server by itself.
        _import(cluster.url, "policies/orgs/hotel.yaml")
        _wait(lambda: _readyz(server).json()["policy_version"] > new_version, 10, "the CLI's import to be picked up")
        stream.stop()
        thread.join(timeout=10)

        # --- what the stream saw ----------------------------------------------------------------------------
        statuses = Counter(a[1] for a in stream.answers)
        assert not stream.errors, stream.errors[:3]
        assert set(statuses) == {200}, statuses
        assert len(outage) > 50, f"only {len(outage)} decisions while the database was down"
        assert {a[2] for a in outage} == {"allow"}
        assert {a[3] for a in outage if a[0] < up} == {version}, "made on the policy version in force"
        assert max(a[3] for a in stream.answers) > version, "and after recovery on the new one"
        assert recovered < 30
        assert "unhandled error" not in server.log_text(), server.log_text()[-3000:]
    finally:
        if stream is not None:
            stream.stop()
        server.stop()
