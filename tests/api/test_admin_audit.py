"""The audit trail on a fresh install (issue 12, item 12): sign-ins, users and tokens belong to no organisation;
a system administrator, who reads the whole trail, is shown them by default; an organisation's auditor reads only
their organisation's entries and cannot reach the others by naming no organisation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.admin_client import Client, create_admin, token_for
from tests.conftest import REPO, _backends, fresh_database
from tests.live import LiveServer

ORG = "sales_company"
UNOWNED = {"login", "user_created", "token_issued"}


@pytest.fixture(scope="module", params=_backends())
def fresh(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    with fresh_database(request.param, tmp_path_factory.mktemp("db")) as url:
        root_token = create_admin(url)
        server = LiveServer(url, seed_dir=str(REPO / "policies"))
        try:
            server.wait_ready()
            yield server, root_token
        finally:
            server.stop()


def test_a_system_administrator_sees_sign_ins_users_and_tokens_an_auditor_of_an_organisation_does_not(
    fresh: tuple[LiveServer, str],
) -> None:
    server, root_token = fresh
    root = Client(server, root_token)
    auditor = Client(server, token_for(root, "audrey", ["admin"], [{"role": "auditor", "organisation": ORG}]))
    hr = Client(server, token_for(root, "hr_sales", ["admin"], [{"role": "hr_admin", "organisation": ORG}]))
    signed_in = Client(server)
    assert signed_in.login("root").status_code == 200
    assert Client(server).login("audrey").status_code == 200

    everything = root.get("/admin/audit", params={"limit": 1000})
    assert everything.status_code == 200, everything.text
    unowned = [e for e in everything.json()["items"] if e["organisation"] is None]
    assert {e["action"] for e in unowned} >= UNOWNED, unowned
    assert {"root", "audrey"} <= {e["actor"] for e in unowned if e["action"] == "login"}
    # The same for a system administrator signed in with a password, as the console is.
    console = signed_in.get("/admin/audit", params={"limit": 1000})
    assert console.status_code == 200, console.text
    assert {e["action"] for e in console.json()["items"] if e["organisation"] is None} >= UNOWNED

    scoped = auditor.get("/admin/audit", params={"limit": 1000})
    assert scoped.status_code == 200, scoped.text
    assert all(e["organisation"] == ORG for e in scoped.json()["items"]), "nothing of no organisation, nor of another"
    assert not [e for e in scoped.json()["items"] if e["action"] in UNOWNED]
    for actor in ("audrey", "root"):  # not even their own sign-in
        mine = auditor.get("/admin/audit", params={"actor": actor, "limit": 1000})
        assert mine.status_code == 200 and all(e["organisation"] == ORG for e in mine.json()["items"]), mine.text
    blank = auditor.get("/admin/audit", params={"org": ""})
    assert blank.status_code in (400, 403), blank.text
    assert hr.get("/admin/audit").status_code == 403, "an HR admin reads no audit trail"
