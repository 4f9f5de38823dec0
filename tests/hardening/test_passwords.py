"""Issue 11, item 20: a password could be changed without the current one (a stolen session was enough to take
the account), and every session and token survived the change. Now changing one's own password needs the current
one; a new password ends the user's other console sessions (all of them when an administrator sets it, which is
audited as a reset); API tokens are separate credentials and stay unless the change asks to revoke them too."""

from __future__ import annotations

import uuid

from tests.api.admin_client import PASSWORD, Client
from tests.hardening.conftest import Stack

NEW = "a brand new passphrase"


def _user(stack: Stack) -> str:
    name = f"pw_{uuid.uuid4().hex[:6]}"
    made = stack.root.post("/admin/users", json={"username": name, "password": PASSWORD, "roles": []})
    assert made.status_code == 201, made.text
    return name


def _session(stack: Stack, name: str, password: str = PASSWORD) -> Client:
    client = stack.client()
    assert client.login(name, password).status_code == 200
    return client


def test_changing_ones_own_password_needs_the_current_one(stack: Stack) -> None:
    name = _user(stack)
    thief = _session(stack, name)  # a session cookie, say, taken from an unlocked browser
    missing = thief.patch(f"/admin/users/{name}", json={"password": "taken over for good"})
    assert missing.status_code == 400 and [i["path"] for i in missing.json()["issues"]] == ["current_password"]
    wrong = thief.patch(f"/admin/users/{name}", json={"password": "taken over for good", "current_password": "guess"})
    assert wrong.status_code == 403 and wrong.json()["message"] == "current_password is wrong"
    assert stack.client().login(name, "taken over for good").status_code == 401, "the password is unchanged"
    assert stack.client().login(name, PASSWORD).status_code == 200


def test_wrong_current_passwords_are_throttled_like_logins(stack: Stack) -> None:
    name = _user(stack)
    console = _session(stack, name)
    tries = [
        console.patch(f"/admin/users/{name}", json={"password": NEW, "current_password": f"guess {n}"}).status_code
        for n in range(6)
    ]
    assert tries == [403] * 5 + [429]


def test_a_new_password_ends_the_other_sessions_and_keeps_tokens_unless_asked(stack: Stack) -> None:
    name = _user(stack)
    mine, other = _session(stack, name), _session(stack, name)
    issued = mine.post("/admin/tokens", json={"scopes": ["read"], "name": "script"})
    assert issued.status_code == 201, issued.text
    script = stack.client(issued.json()["token"])
    changed = mine.patch(f"/admin/users/{name}", json={"password": NEW, "current_password": PASSWORD})
    assert changed.status_code == 200, changed.text
    assert mine.get("/admin/session").status_code == 200, "the session that changed it goes on"
    assert other.get("/admin/session").status_code == 401, "every other session has ended"
    assert script.get("/admin/session").status_code == 200, "an API token is a credential of its own: it stays"
    assert stack.client().login(name, PASSWORD).status_code == 401
    back = {"password": PASSWORD, "current_password": NEW, "revoke_tokens": True}
    again = mine.patch(f"/admin/users/{name}", json=back)
    assert again.status_code == 200, again.text
    assert script.get("/admin/session").status_code == 401, "revoked with the change, as asked"
    entry = stack.root.get("/admin/audit", params={"actor": name, "limit": 1}).json()["items"][0]
    assert entry["detail"] == {"password": "changed", "tokens_revoked": [issued.json()["id"]]}


def test_an_administrator_resets_another_users_password_without_it_and_ends_all_their_sessions(stack: Stack) -> None:
    name = _user(stack)
    session = _session(stack, name)
    reset = stack.root.patch(f"/admin/users/{name}", json={"password": NEW})
    assert reset.status_code == 200, reset.text
    assert session.get("/admin/session").status_code == 401
    assert stack.client().login(name, NEW).status_code == 200
    entry = stack.root.get("/admin/audit", params={"actor": "root", "limit": 1}).json()["items"][0]
    assert (entry["action"], entry["target"], entry["detail"]) == (
        "user_changed",
        f"user:{name}",
        {"password": "reset by an administrator"},
    )
