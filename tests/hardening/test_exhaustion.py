"""Issue 11, items 14–16: work one request makes the server do for others, bounded. Real servers, real databases
(SQLite, and PostgreSQL when DUTYLINE_TEST_POSTGRES_URL is set).

14. A batch's shared context was copied into the decision log once per item (0.1 MB → 190 MB): it is stored
    once, read back whole for every decision, and a part above DUTYLINE_DECISION_LOG_MAX_CONTEXT_BYTES is kept
    truncated and marked so.
15. `who` over a 200k-line organisation was computed on the event loop, again for every page: a listing is now
    computed once, off the event loop, a bounded number at a time.
16. A check with `at_least_version` held a thread while it waited: waiting checks now hold none, are answered as
    soon as the version is applied, and are bounded in number.

No timed assertions: what happens while something else is still under way is shown by the order of events (a
gauge of `/metrics` says what is under way), and waits for a condition have deadlines only to fail rather than
hang.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import text

from tests.conftest import REPO, _backends, fresh_database, run_cli
from tests.live import LiveServer

# --- helpers ------------------------------------------------------------------------------------------------


def metric(server: LiveServer, name: str) -> float:
    """One sample of the server's /metrics (a counter's `_total`, a gauge's own name)."""
    for line in httpx.get(f"{server.url}/metrics", timeout=10).text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not in /metrics")


def eventually(condition: Callable[[], bool], what: str, deadline: float = 60.0) -> None:
    """Wait until `condition()` holds; fail (naming `what`) if it does not within `deadline` seconds."""
    until = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > until:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.01)


class Call(threading.Thread):
    """One HTTP request on a thread of its own; `response` once it has been answered."""

    def __init__(self, method: str, url: str, **kwargs: Any) -> None:
        super().__init__(daemon=True)
        self.method, self.url, self.kwargs = method, url, kwargs
        self.response: httpx.Response | None = None
        self.start()

    def run(self) -> None:
        self.response = httpx.request(self.method, self.url, timeout=120, **self.kwargs)

    def result(self) -> httpx.Response:
        self.join(120)
        assert self.response is not None, f"{self.method} {self.url} was not answered"
        return self.response


def sql(database_url: str, statement: str) -> Any:
    from dutyline.store.db import make_engine

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(statement)).one()
    finally:
        engine.dispose()


def serve(database_url: str, seed: bool = True, **settings: str) -> LiveServer:
    server = LiveServer(database_url, seed_dir=str(REPO / "policies") if seed else "", extra_env=settings)
    server.wait_ready(120)
    return server


def compact(value: Any) -> bytes:
    """JSON as the server encodes it (no spaces), for sizes and digests."""
    return msgspec.json.encode(value)


# --- 14. the decision log -------------------------------------------------------------------------------------

LIMIT = 16_384  # DUTYLINE_DECISION_LOG_MAX_CONTEXT_BYTES of the log server


@pytest.fixture(scope="module", params=_backends())
def log_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, str]]:
    with fresh_database(request.param, tmp_path_factory.mktemp("log")) as url:
        server = serve(url, DUTYLINE_DECISION_LOG_MAX_CONTEXT_BYTES=str(LIMIT))
        try:
            yield server, url
        finally:
            server.stop()


def log_size(url: str) -> tuple[int, int, int, int]:
    """(decision rows, their stored characters, parts, the parts' stored characters)."""
    rows = sql(
        url,
        "SELECT count(*), coalesce(sum(length(request) + length(reasons) + coalesce(length(parts), 0)), 0)"
        " FROM decision_log",
    )
    parts = sql(url, "SELECT count(*), coalesce(sum(length(body)), 0) FROM decision_log_parts")
    return int(rows[0]), int(rows[1]), int(parts[0]), int(parts[1])


def logged(server: LiveServer, url: str, request_id: str, count: int) -> list[dict[str, Any]]:
    """The `count` decisions of one request, read back through `GET /v1/decisions` once all are written."""
    eventually(
        lambda: int(sql(url, f"SELECT count(*) FROM decision_log WHERE request_id = '{request_id}'")[0]) >= count,
        f"{count} decisions of {request_id} in the log",
    )
    answer = httpx.get(f"{server.url}/v1/decisions", params={"request_id": request_id, "limit": 1000}, timeout=30)
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert len(items) == count
    return items


def memo_context(size: int) -> dict[str, Any]:
    """A context of about `size` bytes of JSON: many keys, plus what the rules of sales_company may read."""
    context: dict[str, Any] = {"organisation": "sales_company", "amount": 10}
    for n in range(size // 520):
        context[f"memo_{n:04d}"] = f"{n:04d}" + "m" * 496
    return context


def test_an_authzen_batch_logs_its_shared_context_once(log_server: tuple[LiveServer, str]) -> None:
    server, url = log_server
    context = memo_context(12_000)
    items = 300
    body = {
        "subject": {"type": "user", "id": "zhao_lei"},
        "action": {"name": "view"},
        "context": context,
        "evaluations": [{"resource": {"type": "budget", "id": f"budget-{i}"}} for i in range(items)],
    }
    before = log_size(url)
    answer = httpx.post(
        f"{server.url}/access/v1/evaluations", json=body, headers={"X-Request-ID": "batch-shared"}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["evaluations"]) == items
    read_back = logged(server, url, "batch-shared", items)
    rows, row_chars, parts, part_chars = (now - then for now, then in zip(log_size(url), before))

    size = len(compact(context))
    assert rows == items
    assert parts == 1 and part_chars == size, "the shared context is stored once, whole (it is under the bound)"
    assert row_chars < items * 1_000, (
        f"each row holds a reference, not the context: {row_chars / items:.0f} chars a row"
    )
    assert row_chars + part_chars < 2 * items * 1_000 + size  # was items × size: 3.6 MB for this batch
    for item in read_back:
        assert item["request"]["context"] == context, "each decision reads back with its whole effective context"
        assert "truncated" not in item["request"]
    assert {item["resource_id"] for item in read_back} == {f"budget-{i}" for i in range(items)}


def test_equal_contexts_of_a_checks_batch_are_stored_once(log_server: tuple[LiveServer, str]) -> None:
    server, url = log_server
    context = memo_context(3_000)
    checks = [
        {
            "organisation": "sales_company",
            "subject": {"id": "zhao_lei"},
            "resource": {"type": "budget", "id": f"b{i}"},
            "action": "view",
            "context": json.loads(json.dumps(context)),
        }  # a copy each: equal, not the same object
        for i in range(200)
    ]
    before = log_size(url)
    answer = httpx.post(
        f"{server.url}/v1/checks", json={"checks": checks}, headers={"X-Request-ID": "checks-equal"}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    read_back = logged(server, url, "checks-equal", len(checks))
    rows, row_chars, parts, part_chars = (now - then for now, then in zip(log_size(url), before))
    assert (rows, parts, part_chars) == (len(checks), 1, len(compact(context)))
    assert row_chars < len(checks) * 1_000
    assert all(item["request"]["context"] == context for item in read_back)


def test_a_context_above_the_bound_is_logged_truncated_and_marked(log_server: tuple[LiveServer, str]) -> None:
    server, url = log_server
    context = memo_context(4 * LIMIT)
    whole = compact(context)
    truncated_before = metric(server, "dutyline_decision_log_truncated_total")
    before = log_size(url)
    answer = httpx.post(
        f"{server.url}/access/v1/evaluations",
        headers={"X-Request-ID": "batch-huge"},
        timeout=30,
        json={
            "subject": {"type": "user", "id": "zhao_lei"},
            "action": {"name": "view"},
            "context": context,
            "evaluations": [{"resource": {"type": "budget", "id": f"budget-{i}"}} for i in range(50)],
        },
    )
    assert answer.status_code == 200, answer.text
    read_back = logged(server, url, "batch-huge", 50)
    _, _, parts, part_chars = (now - then for now, then in zip(log_size(url), before))
    assert parts == 1 and part_chars <= LIMIT, "what one row may hold is bounded, and the part is still stored once"
    for item in read_back:
        kept = item["request"]["context"]
        assert kept and len(kept) < len(context)
        assert all(context[key] == value for key, value in kept.items()), "what is kept is the caller's, unchanged"
        assert item["request"]["truncated"] == [
            {
                "part": "context",
                "bytes": len(whole),
                "kept_bytes": len(compact(kept)),
                "sha256": hashlib.sha256(whole).hexdigest(),
            }
        ], "never silently: the reader sees it was cut, from how much, and the digest of the whole"
    assert metric(server, "dutyline_decision_log_truncated_total") >= truncated_before + 1
    assert "logged truncated (DUTYLINE_DECISION_LOG_MAX_CONTEXT_BYTES)" in server.log_text()


# --- 15. listings over a 200k-line organisation -------------------------------------------------------------


@pytest.fixture(scope="module")
def big_org() -> Any:
    from bench.generate import one_big_org

    return one_big_org(200_000)


@pytest.fixture(scope="module", params=_backends())
def big_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, big_org: Any
) -> Iterator[LiveServer]:
    """A server deciding for one organisation of about 200,000 policy lines (38,000 people), one big listing at a
    time (DUTYLINE_QUERY_WORKERS=1)."""
    from dutyline.store import orgs as org_store
    from dutyline.store.db import make_engine, session_factory, upgrade

    with fresh_database(request.param, tmp_path_factory.mktemp("big")) as url:
        engine = make_engine(url)
        upgrade(engine)
        with session_factory(engine).begin() as session:
            org_store.save(session, [big_org], author="tests", comment="200k lines")
        engine.dispose()
        server = serve(url, seed=False, DUTYLINE_QUERY_WORKERS="1")
        try:
            yield server
        finally:
            server.stop()


WHO = "/v1/orgs/one_big_org/who"


def test_paging_a_big_listing_computes_it_once(big_server: LiveServer) -> None:
    computed = metric(big_server, "dutyline_listings_computed_total")
    cached = metric(big_server, "dutyline_listings_served_cached_total")
    people: list[str] = []
    pages = 0
    token = ""
    while True:
        params = {"resource": "report", "action": "view", "at": "2026-07-20", "limit": "1000", "page_token": token}
        answer = httpx.get(f"{big_server.url}{WHO}", params=params, timeout=60)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        people += [p["id"] for p in page["people"]]
        pages += 1
        token = page["next_token"]
        if not token:
            break
    assert pages > 30 and len(people) == page["total_people"] == len(set(people))
    assert people == sorted(people)
    assert metric(big_server, "dutyline_listings_computed_total") == computed + 1, "computed for the first page only"
    assert metric(big_server, "dutyline_listings_served_cached_total") == cached + pages - 1

    # Another client asking the same again (another instant of the same assignment windows) is not recomputed.
    again = httpx.get(
        f"{big_server.url}{WHO}", params={"resource": "report", "action": "view", "at": "2026-07-21"}, timeout=60
    )
    assert again.json()["total_people"] == len(people)
    assert metric(big_server, "dutyline_listings_computed_total") == computed + 1

    # The AuthZEN subject search pages the same way.
    computed = metric(big_server, "dutyline_listings_computed_total")
    found: list[str] = []
    page_token = None
    while True:
        body: dict[str, Any] = {
            "subject": {"type": "user"},
            "action": {"name": "view"},
            "resource": {"type": "report", "id": "r1"},
            "page": {"limit": 1000, **({"token": page_token} if page_token else {})},
        }
        answer = httpx.post(f"{big_server.url}/orgs/one_big_org/access/v1/search/subject", json=body, timeout=60)
        assert answer.status_code == 200, answer.text
        found += [r["id"] for r in answer.json()["results"]]
        page_token = answer.json()["page"]["next_token"]
        if not page_token:
            break
    assert len(found) == len(set(found)) > 30_000
    assert metric(big_server, "dutyline_listings_computed_total") == computed + 1


def test_a_big_listing_is_computed_off_the_event_loop_one_at_a_time(big_server: LiveServer) -> None:
    decision = {
        "organisation": "one_big_org",
        "subject": {"id": "p0001_001"},
        "resource": {"type": "report"},
        "action": "view",
    }
    assert metric(big_server, "dutyline_listings_running") == 0
    first = Call("GET", f"{big_server.url}{WHO}", params={"resource": "report", "action": "view", "at": "2026-07-05"})
    eventually(
        lambda: metric(big_server, "dutyline_listings_running") == 1 or first.response is not None,
        "the first listing to be computed",
    )
    assert first.response is None, "the listing was computed before anything else could be asked: too small to show"

    # While it is computed: decisions are answered, and a second big listing is refused rather than queued.
    assert httpx.post(f"{big_server.url}/v1/check", json=decision, timeout=30).json()["decision"] == "allow"
    second = httpx.get(
        f"{big_server.url}{WHO}", params={"resource": "report", "action": "view", "at": "2026-07-12"}, timeout=30
    )
    assert second.status_code == 503, second.text
    assert second.headers["Retry-After"] == "1"
    assert "DUTYLINE_QUERY_WORKERS=1" in second.json()["message"]
    assert metric(big_server, "dutyline_listings_running") == 1 and first.response is None, (
        "both were answered while the first listing was still being computed"
    )

    assert first.result().status_code == 200 and first.result().json()["total_people"] > 30_000
    assert metric(big_server, "dutyline_listings_running") == 0
    retried = httpx.get(
        f"{big_server.url}{WHO}", params={"resource": "report", "action": "view", "at": "2026-07-12"}, timeout=60
    )
    assert retried.status_code == 200, retried.text


# --- 16. at_least_version -----------------------------------------------------------------------------------

WAITERS = 12  # more than the default thread pool of this machine's event loop (cores + 4)


@pytest.fixture(params=_backends())
def waiting_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[LiveServer, str]]:
    with fresh_database(request.param, tmp_path) as url:
        server = serve(url, DUTYLINE_CONSISTENCY_WAIT="90", DUTYLINE_CONSISTENCY_WAITERS=str(WAITERS))
        try:
            yield server, url
        finally:
            server.stop()


CHECK = {
    "organisation": "sales_company",
    "subject": {"id": "li_na"},
    "resource": {"type": "customer"},
    "action": "contact",
}


def change_sales_company(url: str, folder: Path) -> None:
    """Another process stores a new version: `dutyline import` of sales_company with another English name."""
    source = (REPO / "policies" / "orgs" / "sales_company.yaml").read_text(encoding="utf-8")
    changed = folder / "sales_company.yaml"
    changed.write_text(
        source.replace("en: Sales Company Business Department", "en: Sales Company (renamed)", 1), encoding="utf-8"
    )
    assert changed.read_text(encoding="utf-8") != source
    run_cli("import", str(changed), database_url=url, check=True)


def test_waiting_checks_hold_no_thread_are_bounded_and_wake_on_another_process_change(
    waiting_server: tuple[LiveServer, str],
    tmp_path: Path,
) -> None:
    server, url = waiting_server
    version = httpx.post(f"{server.url}/v1/check", json=CHECK, timeout=30).json()["policy_version"]
    waiters = [
        Call("POST", f"{server.url}/v1/check", json={**CHECK, "at_least_version": version + 1}) for _ in range(WAITERS)
    ]
    eventually(lambda: metric(server, "dutyline_consistency_waiters") == WAITERS, f"{WAITERS} checks waiting")

    # One more than the bound is refused at once, not queued.
    refused = httpx.post(f"{server.url}/v1/check", json={**CHECK, "at_least_version": version + 1}, timeout=30)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert "DUTYLINE_CONSISTENCY_WAITERS" in refused.json()["message"]

    # Unrelated requests are answered while they wait, those that need a thread too (`as_of`, the decision log).
    assert httpx.post(f"{server.url}/v1/check", json=CHECK, timeout=30).json()["decision"] == "allow"
    now = dt.datetime.now(dt.UTC).isoformat()  # to the microsecond: the seed was stored moments ago
    as_of = httpx.post(f"{server.url}/v1/check", json={**CHECK, "as_of": now}, timeout=30)
    assert as_of.status_code == 200 and as_of.json()["decision"] == "allow", as_of.text
    assert httpx.get(f"{server.url}/v1/decisions", params={"limit": 5}, timeout=30).status_code == 200
    assert metric(server, "dutyline_consistency_waiters") == WAITERS
    assert all(w.response is None for w in waiters), "still waiting while the others were answered"

    # Another process stores the version: every waiter is answered with it (the wait is 90 s: not a timeout).
    change_sales_company(url, tmp_path)
    answers = [w.result() for w in waiters]
    assert [a.status_code for a in answers] == [200] * WAITERS, [a.text for a in answers if a.status_code != 200]
    assert all(a.json()["policy_version"] >= version + 1 for a in answers)
    assert metric(server, "dutyline_consistency_waiters") == 0


def test_a_wait_that_runs_out_is_a_503_with_retry_after(tmp_path: Path) -> None:
    with fresh_database("sqlite", tmp_path) as url:
        server = serve(url, DUTYLINE_CONSISTENCY_WAIT="0.3")
        try:
            version = httpx.post(f"{server.url}/v1/check", json=CHECK, timeout=30).json()["policy_version"]
            answer = httpx.post(f"{server.url}/v1/check", json={**CHECK, "at_least_version": version + 1}, timeout=30)
            assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
            assert f"policy version {version + 1} is not applied here yet" in answer.json()["message"]
            assert metric(server, "dutyline_consistency_waiters") == 0
        finally:
            server.stop()
