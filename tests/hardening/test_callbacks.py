"""Access request callbacks under attack (services/access_requests.py, services/egress.py): endpoints that reach
internal addresses however they are spelled or resolved, receivers that redirect, trickle or answer without end,
and two replicas delivering at once. Real receivers on loopback ports, real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import http.server
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from dutyline.errors import Invalid
from dutyline.services.access_requests import Callback, Callbacks, validate_callback
from dutyline.store.tables import AccessRequestRow, ApprovalRow, CallbackAttemptRow

SECRET = "callback-secret"


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.1/cb",  # the resolver's short forms of 127.0.0.1
        "http://2130706433/cb",
        "http://0x7f000001/cb",
        "http://017700000001/cb",
        "http://0/cb",
        "http://100.64.0.1/cb",  # shared address space (carrier NAT)
        "http://224.0.0.1/cb",  # multicast
        "http://[::ffff:169.254.169.254]/cb",  # IPv4-mapped link-local
        "http://[64:ff9b::a9fe:a9fe]/cb",  # NAT64 of 169.254.169.254
        "http://localhost./cb",
        "http://LOCALHOST/cb",
        "http://%31%32%37.0.0.1/cb",  # percent-encoded host
        "http://ex ample.com/cb",
        "http://pep.example.com:99999/cb",
        "http://pep.example.com:port/cb",
        "https://user:secret@pep.example.com/cb",  # credentials in the URL
        "https://pep.example.com@127.0.0.1/cb",
        "file:///etc/passwd",
        "gopher://pep.example.com/",
    ],
)
def test_an_internal_or_malformed_callback_endpoint_is_refused_naming_the_field(endpoint: str) -> None:
    with pytest.raises(Invalid) as refused:
        validate_callback(Callback(endpoint), (), SECRET)
    assert refused.value.issues[0].path == "callback.endpoint"


def test_a_public_endpoint_passes_and_an_allowed_host_is_matched_however_it_is_cased() -> None:
    validate_callback(Callback("https://pep.example.com/cb"), (), SECRET)
    validate_callback(Callback("https://8.8.8.8:8443/cb"), (), SECRET)
    validate_callback(Callback("http://LocalHost.:8080/cb"), ("localhost",), SECRET)


# --- delivery -----------------------------------------------------------------------------------------------


class _Receiver(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False


def _receiver(handler: type[http.server.BaseHTTPRequestHandler], host: str = "127.0.0.1") -> Iterator[int]:
    server = _Receiver((host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class _Hits:
    count = 0
    lock = threading.Lock()


def _handler(behaviour: str, hits: type[_Hits]) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            with hits.lock:
                hits.count += 1
            if behaviour == "redirect":
                self.send_response(307)
                self.send_header("location", "http://169.254.169.254/latest/meta-data")
                self.send_header("content-length", "0")
                self.end_headers()
            elif behaviour == "trickle":  # a head that never ends, one byte at a time
                try:
                    self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                    for _ in range(600):
                        self.wfile.write(b"X")
                        self.wfile.flush()
                        time.sleep(0.1)
                except OSError:
                    pass
            elif behaviour == "endless":  # a 200 whose body never ends
                self.send_response(200)
                self.end_headers()
                try:
                    for _ in range(100_000):
                        self.wfile.write(b"x" * 65536)
                except OSError:
                    pass
            else:
                self.send_response(204)
                self.end_headers()

    return Handler


def _task(sessions: Any, url: str, n: int = 0) -> str:
    now = dt.datetime.now(dt.UTC)
    approval = ApprovalRow(
        id=f"apr_{n}", organisation="o", requester="ann", requester_posts="[]", resource_type="t", resource_id=None,
        action="a", request="{}", rules="[]", chain="[]", level=0, post="p", status="approved", comment="",
        decision_id="d", created_at=now, due_at=None, decided_at=now, decided_by="bob", decision_comment="",
        revision=1, digest=None, bound=None, limits="{}", uses=1, uses_left=1, expires_at=now + dt.timedelta(hours=1),
    )  # fmt: skip
    task = AccessRequestRow(
        id=f"arq_{n}", organisation="o", approval_id=approval.id, evaluation_id="e", token_id=f"j{n}", caller="c",
        idempotency_key=None, body_digest="x", request="{}", template="t", created_at=now, cancelled_at=None,
        callback_url=url, callback_state=None, callback_events="[]", callback_status="waiting", callback_attempts=0,
        callback_next_at=now,
    )  # fmt: skip
    with sessions.begin() as session:
        session.add_all([approval, task])
    return task.id


def _state(sessions: Any, task_id: str) -> tuple[str, list[tuple[int, str]]]:
    with sessions() as session:
        row = session.get(AccessRequestRow, task_id)
        attempts = session.execute(
            select(CallbackAttemptRow.status, CallbackAttemptRow.error)
            .where(CallbackAttemptRow.access_request_id == task_id)
            .order_by(CallbackAttemptRow.attempt)
        ).all()
        return row.callback_status, [(a.status, a.error) for a in attempts]


def _own_name_address() -> str | None:
    """This machine's name, if it resolves to an internal address only (a name that is no literal nor localhost)."""
    from dutyline.services import egress

    name = socket.gethostname()
    try:
        found = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    except OSError:
        return None
    addresses = [egress.literal(a.split("%")[0]) for a in found]
    if not addresses or not all(a is not None and egress.internal(a) for a in addresses):
        return None
    return name


def test_a_name_resolving_to_an_internal_address_is_refused_when_sent_and_not_retried(sessions: Any) -> None:
    name = _own_name_address()
    if name is None:
        pytest.skip("this machine's name does not resolve to internal addresses only")
    hits = _Hits
    hits.count = 0
    for port in _receiver(_handler("ok", hits), "0.0.0.0"):
        url = f"http://{name}:{port}/cb"
        validate_callback(Callback(url), (), SECRET)  # a name: what it resolves to is checked when sent
        task = _task(sessions, url)
        callbacks = Callbacks(sessions, SECRET, timeout=2.0)
        try:
            assert callbacks.deliver() == 0
        finally:
            callbacks.close()
        status, attempts = _state(sessions, task)
        assert hits.count == 0
        assert status == "failed"
        assert len(attempts) == 1 and "internal address" in attempts[0][1]
        allowed = Callbacks(sessions, SECRET, timeout=2.0, allowed=(name.upper(),))  # allowed: it is sent
        task2 = _task(sessions, url, 1)
        try:
            assert allowed.deliver() == 1
        finally:
            allowed.close()
        assert _state(sessions, task2)[0] == "delivered" and hits.count == 1


def test_a_loopback_receiver_is_refused_unless_allowed(sessions: Any) -> None:
    hits = _Hits
    hits.count = 0
    for port in _receiver(_handler("ok", hits)):
        task = _task(sessions, f"http://127.0.0.1:{port}/cb")  # as if stored before the allow list shrank
        callbacks = Callbacks(sessions, SECRET, timeout=2.0)
        try:
            callbacks.deliver()
        finally:
            callbacks.close()
        assert hits.count == 0 and _state(sessions, task)[0] == "failed"


def test_a_redirect_is_not_followed_and_counts_as_a_failed_attempt(sessions: Any) -> None:
    hits = _Hits
    hits.count = 0
    for port in _receiver(_handler("redirect", hits)):
        task = _task(sessions, f"http://127.0.0.1:{port}/cb")
        callbacks = Callbacks(sessions, SECRET, timeout=2.0, allowed=("127.0.0.1",))
        try:
            assert callbacks.deliver() == 0
        finally:
            callbacks.close()
        status, attempts = _state(sessions, task)
        assert hits.count == 1
        assert status == "waiting" and attempts == [(307, "HTTP 307")]


@pytest.mark.parametrize("behaviour", ["trickle", "endless"])
def test_a_receiver_that_trickles_or_never_ends_holds_the_sender_no_longer_than_the_timeout(
    sessions: Any, behaviour: str
) -> None:
    hits = _Hits
    hits.count = 0
    for port in _receiver(_handler(behaviour, hits)):
        task = _task(sessions, f"http://127.0.0.1:{port}/cb")
        callbacks = Callbacks(sessions, SECRET, timeout=1.0, allowed=("127.0.0.1",))
        started = time.monotonic()
        try:
            callbacks.deliver()
        finally:
            callbacks.close()
        held = time.monotonic() - started
        status, attempts = _state(sessions, task)
        assert hits.count == 1
        if behaviour == "trickle":  # 60 s of trickle; cut at the deadline and retried later
            assert status == "waiting" and attempts[0][0] == 0 and "Timeout" in attempts[0][1]
            assert held < 30
        else:  # the head was a 200: delivered, the body never read
            assert status == "delivered"


def test_two_replicas_delivering_at_once_send_each_callback_once(sessions: Any) -> None:
    hits = _Hits
    hits.count = 0
    for port in _receiver(_handler("ok", hits)):
        tasks = [_task(sessions, f"http://127.0.0.1:{port}/cb", n) for n in range(12)]
        replicas = [Callbacks(sessions, SECRET, timeout=2.0, allowed=("127.0.0.1",)) for _ in range(2)]
        try:
            for _ in range(2):
                threads = [threading.Thread(target=r.deliver) for r in replicas]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
        finally:
            for r in replicas:
                r.close()
        assert hits.count == len(tasks)
        assert sorted(_state(sessions, t)[0] for t in tasks) == ["delivered"] * len(tasks)


def test_a_timeout_that_is_not_a_positive_number_is_refused(sessions: Any) -> None:
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="DUTYLINE_CALLBACK_TIMEOUT"):
            Callbacks(sessions, SECRET, timeout=bad)
