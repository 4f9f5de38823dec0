"""The change stream, `GET /v1/changes`, against a real server on each database: each change made in the admin API
arrives as an event with its organisation, document and entities; a replay from `since` or Last-Event-ID gives
exactly the changes missed; a token hears only its organisations; a bad starting point is a 400 naming it; a
subscriber that does not read holds nothing up; the number of streams is bounded; a revoked token's stream ends;
stopping the server ends its streams."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.api.admin_client import Client, create_admin, token_for
from tests.api.stream import DEADLINE, Listener
from tests.conftest import REPO, _backends, fresh_database
from tests.live import LiveServer

ORG = "sales_company"
OTHER = "hotel"
STREAMS = 3  # DUTYLINE_CHANGES_STREAMS of the server under test


@dataclass
class Served:
    server: LiveServer
    token: str  # root's admin token (system_admin, every organisation)
    root: Client


@pytest.fixture(scope="module", params=_backends())
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with fresh_database(request.param, tmp_path_factory.mktemp("db")) as url:
        token = create_admin(url)
        env = {
            "DUTYLINE_REQUIRE_AUTH": "true",
            "DUTYLINE_CHANGES_KEEPALIVE": "0.3",
            "DUTYLINE_CHANGES_STREAMS": str(STREAMS),
        }
        server = LiveServer(url, seed_dir=str(REPO / "policies"), extra_env=env)
        try:
            server.wait_ready(timeout=180)  # generous: servers of other tests start beside it
            root = Client(server, token)
            yield Served(server, token, root)
            root.close()
        finally:
            server.stop()


def hire(served: Served, org: str = ORG, post: str = "sales_representative") -> tuple[str, int]:
    """A new person in `org`, through the admin API: their id and the policy version it made."""
    person = f"p_{uuid.uuid4().hex[:8]}"
    created = served.root.post(
        f"/admin/orgs/{org}/people",
        json={"id": person, "name": {"zh": "新人", "en": "New hire"}, "assignments": [{"post": post}]},
    )
    assert created.status_code == 201, created.text
    return person, created.json()["version"]


def latest(served: Served) -> int:
    return served.root.get("/admin/orgs").json()["policy_version"]


def test_a_change_made_in_the_admin_api_arrives_with_its_organisation_document_and_entities(served: Served) -> None:
    with Listener(served.server.url, served.token) as stream:
        ready = stream.ready()
        assert ready.id == ready.data["policy_version"] == latest(served)
        person, version = hire(served)
        change = stream.change(version).data
    assert change["policy_version"] == version and change["organisations"] == [ORG]
    assert change["documents"] == [
        {"organisation": ORG, "kind": "org", "revision": change["documents"][0]["revision"], "deleted": False}
    ]
    assert change["entities"] == [{"organisation": ORG, "kind": "people", "id": person, "change": "added"}]
    assert change["author"] == "root"  # a system administrator may read the history: who and why are sent
    assert "at" in change and "entities_truncated" not in change


def test_a_rule_pack_change_names_the_pack_and_its_rules(served: Served) -> None:
    pack = served.root.get(f"/admin/orgs/{ORG}/rules/{ORG}")
    assert pack.status_code == 200, pack.text
    with Listener(served.server.url, served.token) as stream:
        stream.ready()
        saved = served.root.put(
            f"/admin/orgs/{ORG}/rules/{ORG}",
            json={**pack.json(), "name": {"zh": "改", "en": f"changed {uuid.uuid4().hex[:6]}"}},
            etag=pack.headers["etag"],
        )
        assert saved.status_code == 200, saved.text
        change = stream.change(saved.json()["version"]).data
    assert change["documents"][0]["kind"] == "rules" and change["documents"][0]["name"] == ORG
    assert change["documents"][0]["fields"] == ["name"] and change["entities"] == []


def test_a_replay_from_since_or_last_event_id_gives_exactly_the_changes_missed(served: Served) -> None:
    before = latest(served)
    made = [hire(served)[1], hire(served, OTHER, "general_manager")[1], hire(served)[1]]
    with Listener(served.server.url, served.token, params={"since": before}) as stream:
        stream.ready()
        assert [e.id for e in stream.changes()] == made
        assert stream.ready().id == made[-1]
    # An EventSource reconnecting sends Last-Event-ID, which wins over the `since` still in its URL.
    with Listener(
        served.server.url, served.token, params={"since": before}, headers={"Last-Event-ID": str(made[0])}
    ) as stream:
        stream.ready()
        assert [e.id for e in stream.changes()] == made[1:]
    with Listener(served.server.url, served.token, params={"since": made[-1]}) as stream:
        assert stream.ready().id == made[-1] and stream.changes() == []


def test_a_token_for_one_organisation_hears_only_its_changes_and_never_who_made_them(served: Served) -> None:
    before = latest(served)
    token = token_for(served.root, f"pos_{uuid.uuid4().hex[:6]}", ["decide"], [], [OTHER])
    ours = hire(served)[1]
    theirs = hire(served, OTHER, "general_manager")[1]
    with Listener(served.server.url, token, params={"since": before}) as stream:
        stream.ready()
        changes = stream.changes()
        _, live = hire(served, OTHER, "general_manager")
        hire(served)
        arrived = stream.change(live)
    assert [e.id for e in changes] == [theirs] and ours not in [e.id for e in stream.changes()]
    assert {e.data["organisations"][0] for e in stream.changes()} == {OTHER}
    assert "author" not in arrived.data and "comment" not in arrived.data  # a decide token reads no history
    refused = Listener(served.server.url, token, params={"organisation": ORG})
    assert refused.status == 403 and refused.error is not None and ORG in refused.error["message"]
    # Narrowed to one organisation by a caller that reaches all.
    with Listener(served.server.url, served.token, params={"since": before, "organisation": OTHER}) as stream:
        stream.ready()
        assert {e.data["organisations"][0] for e in stream.changes()} == {OTHER}


@pytest.mark.parametrize(
    ("params", "headers", "field"),
    [
        ({"since": "-1"}, {}, "since"),
        ({"since": "NaN"}, {}, "since"),
        ({"since": "1.5"}, {}, "since"),
        ({"since": str(2**64)}, {}, "since"),
        ({"since": "999999999"}, {}, "since"),  # newer than any stored: not this deployment's
        ({}, {"Last-Event-ID": "abc"}, "Last-Event-ID"),
        ({}, {"Last-Event-ID": "-3"}, "Last-Event-ID"),
        ({}, {"Last-Event-ID": "9" * 30}, "Last-Event-ID"),
        ({"since": "0"}, {"Last-Event-ID": "999999999"}, "Last-Event-ID"),
    ],
)
def test_a_bad_starting_point_is_a_400_naming_it(
    served: Served, params: dict[str, str], headers: dict[str, str], field: str
) -> None:
    response = served.root.get("/v1/changes", params=params, headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert [issue["path"] for issue in response.json()["issues"]] == [field]


def test_the_stream_needs_credentials_like_every_v1_route(served: Served) -> None:
    refused = httpx.get(f"{served.server.url}/v1/changes", timeout=10)
    assert refused.status_code == 401


def test_a_subscriber_that_does_not_read_holds_up_neither_changes_nor_other_subscribers(served: Served) -> None:
    """A raw connection with a tiny receive buffer asks for the whole history and never reads it: a change is still
    stored and reaches another subscriber. (Whether the server's writes to it block depends on the kernel's buffers;
    that a subscriber which never reads holds up neither the feed nor the others, however far behind, is shown
    without them in tests/services/test_changes.py.)"""
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    stalled.connect(("127.0.0.1", served.server.port))
    stalled.sendall(
        f"GET /v1/changes?since=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {served.token}\r\n\r\n".encode()
    )
    try:
        with Listener(served.server.url, served.token) as stream:
            stream.ready()
            _, version = hire(served)
            assert stream.change(version).data["policy_version"] == version
        assert served.root.get("/readyz").status_code == 200
    finally:
        stalled.close()


def test_streams_beyond_the_bound_are_refused_with_a_503_until_one_ends(served: Served) -> None:
    streams = [Listener(served.server.url, served.token) for _ in range(STREAMS)]
    try:
        for stream in streams:
            stream.ready()
        refused = served.root.get("/v1/changes")
        assert refused.status_code == 503 and refused.headers["retry-after"], refused.text
        assert "DUTYLINE_CHANGES_STREAMS" in refused.json()["message"]
    finally:
        for stream in streams:
            stream.close()
    # The server notices each hang-up at its next keep-alive at the latest.
    again = Listener(served.server.url, served.token)
    while again.status == 503:
        again = Listener(served.server.url, served.token)
    assert again.status == 200
    again.close()


def test_a_revoked_token_s_stream_ends(served: Served) -> None:
    issued = served.root.post(
        "/admin/tokens", json={"username": "root", "scopes": ["decide"], "name": "revoked", "organisations": ["*"]}
    ).json()
    stream = Listener(served.server.url, issued["token"])
    stream.ready()
    assert served.root.delete(f"/admin/tokens/{issued['id']}").status_code == 200
    assert stream.ended.wait(DEADLINE), "the stream of a revoked token went on"
    stream.close()


def test_stopping_the_server_ends_its_open_streams(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """uvicorn waits for every response to end before it stops; a stream must end by itself then."""
    server = LiveServer(f"sqlite:///{tmp_path / 'empty.db'}", extra_env={"DUTYLINE_CHANGES_KEEPALIVE": "60"})
    try:
        server.wait_ready(timeout=180)
        stream = Listener(server.url)
        stream.ready()
        server.process.terminate()
        assert stream.ended.wait(DEADLINE), "the stream outlived the server's stop"
        assert server.process.wait(DEADLINE) is not None
    finally:
        server.stop()
    stream.close()
