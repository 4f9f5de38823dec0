"""Helpers for the admin API tests: the first admin made with the real CLI, and clients that act as users."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import httpx

from tests.conftest import REPO
from tests.live import LiveServer

PASSWORD = "correct horse battery"


def create_admin(
    database_url: str, username: str = "root", password: str = PASSWORD, role: str = "system_admin"
) -> str:
    """`dutyline admin create USERNAME --password-stdin --role ROLE`, then `dutyline admin token` (scope admin, every
    organisation)."""
    env = {**os.environ, "DUTYLINE_DATABASE_URL": database_url, "DUTYLINE_SEED_DIR": ""}
    created = subprocess.run(
        [sys.executable, "-m", "dutyline", "admin", "create", username, "--password-stdin", "--role", role],
        input=password + "\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    token = subprocess.run(
        [
            sys.executable,
            "-m",
            "dutyline",
            "admin",
            "token",
            username,
            "--scope",
            "admin",
            "--all-orgs",
            "--name",
            "tests",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert token.returncode == 0, token.stderr
    return token.stdout.strip()


class Client:
    """httpx against a live server as one caller: a bearer token, a console session (cookie + CSRF), or nobody."""

    def __init__(self, server: LiveServer, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=server.url, headers=headers, timeout=30)
        self.csrf: str | None = None

    def login(self, username: str, password: str = PASSWORD, **kwargs: Any) -> httpx.Response:
        response = self.http.post("/admin/login", json={"username": username, "password": password}, **kwargs)
        if response.status_code == 200:
            self.csrf = response.json()["csrf_token"]
        return response

    def request(
        self, method: str, path: str, *, etag: str | None = None, csrf: bool = True, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if etag is not None:
            headers["If-Match"] = etag
        if csrf and self.csrf and method not in ("GET", "HEAD"):
            headers["X-CSRF-Token"] = self.csrf
        return self.http.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def close(self) -> None:
        self.http.close()


def token_for(
    root: Client,
    username: str,
    scopes: list[str],
    roles: list[dict[str, str]] | None = None,
    organisations: list[str] | None = None,
) -> str:
    """Create `username` with `roles` (unless it exists) and issue a token of `scopes` acting as them, reaching
    `organisations` on the decision API (default: every one)."""
    if roles is not None:
        created = root.post("/admin/users", json={"username": username, "password": PASSWORD, "roles": roles})
        assert created.status_code == 201, created.text
    body = {
        "username": username,
        "scopes": scopes,
        "name": f"{username} tests",
        "organisations": organisations or ["*"],
    }
    issued = root.post("/admin/tokens", json=body)
    assert issued.status_code == 201, issued.text
    return issued.json()["token"]
