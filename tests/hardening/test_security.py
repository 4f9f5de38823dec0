"""Security, route by route from the OpenAPI document: authentication and scopes on every /admin endpoint, CSRF
on every change a console session makes, the session cookie, login throttling, security headers on every
answer, secrets and passwords kept out of logs, and rule text, ids and names that can never run code or SQL."""

from __future__ import annotations

import ast
import json
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, inspect, text

from tests.api.admin_client import PASSWORD, Client, create_admin
from tests.conftest import POSTGRES_URL, REPO, _psycopg, fresh_database
from tests.hardening import routes
from tests.hardening.conftest import Stack, load_content
from tests.live import LiveServer

ORG = routes.ORG
PWNED = Path("/tmp/dutyline-pwned")


def _scheduled_change(stack: Stack) -> str:
    """A real change waiting for its time (far away), so that routes about changes find one."""
    path = f"/admin/orgs/{ORG}/posts/department_head"
    etag = stack.root.get(path).headers["etag"]
    change = stack.root.patch(
        path, etag=etag, json={"headcount": 2}, headers={"X-Effective-At": "2099-01-01T00:00:00Z"}
    )
    assert change.status_code == 202, change.text
    return change.json()["id"]


def _admin_operations(stack: Stack) -> list[tuple[str, str]]:
    versions = stack.root.get(f"/admin/orgs/{ORG}/versions").json()["items"]
    values = {"change_id": _scheduled_change(stack), "number": str(versions[-1]["version"])}
    found = [(m, routes.fill(p, values)) for m, p, _ in routes.operations(stack.server.url) if p.startswith("/admin")]
    # Required query parameters too, so that nothing is refused for a reason other than the one tested.
    found = [(m, f"{p}?at=2026-01-01T00:00:00" if p.endswith("/as-of") else p) for m, p in found]
    assert len(found) >= 40, found
    return found


# Bodies that would be accepted, so that a refusal is the check under test and not the body's validation.
BODIES: dict[str, object] = {
    "/admin/tokens": {"scopes": ["admin"], "organisations": ["*"]},
    "/admin/users": {"username": "intruder", "password": "a long enough password", "roles": [{"role": "system_admin"}]},
    "/admin/users/root": {"password": "hijacked password"},
    f"/admin/orgs/{ORG}/settings": {"rules_four_eyes": True},
    f"/admin/orgs/{ORG}/posts/sales_analyst": {"headcount": 9},
}


def _changing(operations: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(m, p) for m, p in operations if m not in ("GET", "HEAD") and p != "/admin/login"]


def _state(stack: Stack) -> tuple[str, int]:
    """What any change would move: the policy version and the number of audit entries."""
    version = stack.root.get("/readyz").json()["policy_version"]
    return version, stack.root.get("/admin/audit/verify").json()["entries"]


def _new_user(stack: Stack, role: str = "system_admin", organisation: str = "*") -> str:
    name = f"u_{uuid.uuid4().hex[:8]}"
    made = stack.root.post(
        "/admin/users",
        json={"username": name, "password": PASSWORD, "roles": [{"role": role, "organisation": organisation}]},
    )
    assert made.status_code == 201, made.text
    return name


def _token(stack: Stack, scopes: list[str]) -> str:
    body = {"scopes": scopes, "name": f"{'+'.join(scopes)} tests", "organisations": ["*"]}
    issued = stack.root.post("/admin/tokens", json=body)
    assert issued.status_code == 201, issued.text
    return issued.json()["token"]


# --- authentication and scopes ------------------------------------------------------------------------------


# Logging in, and asking whether anyone can log in yet (the login page's question), need no credentials.
PUBLIC = ("/admin/login", "/admin/setup")


def test_every_admin_endpoint_refuses_callers_without_valid_credentials(stack: Stack) -> None:
    operations = _admin_operations(stack)
    before = _state(stack)
    anonymous = httpx.Client(base_url=stack.server.url, timeout=30)
    attempts = {
        "nobody": {},
        "a made-up token": {"Authorization": "Bearer dl_000000000000_" + "A" * 43},
        "not a bearer": {"Authorization": f"Basic {stack.token}"},
        "a made-up session": {"Cookie": "dutyline_session=" + "x" * 43, "X-CSRF-Token": "x"},
    }
    for method, path in operations:
        if path in PUBLIC:
            continue
        for who, headers in attempts.items():
            response = anonymous.request(method, path, json=BODIES.get(path, {}), headers={**headers, "If-Match": "*"})
            assert response.status_code == 401, f"{who}: {method} {path}: {response.status_code} {response.text[:200]}"
            assert response.headers["www-authenticate"].startswith("Bearer"), (method, path)
    assert _state(stack) == before


@pytest.mark.parametrize("scope", ["decide", "read"])
def test_decide_and_read_tokens_change_nothing_anywhere(stack: Stack, scope: str) -> None:
    """A decide token gets no admin endpoint at all; a read token no change. Both as a system admin's."""
    client = stack.client(_token(stack, [scope]))
    operations = _admin_operations(stack)
    before = _state(stack)
    for method, path in _changing(operations):
        response = client.request(method, path, json=BODIES.get(path, {}), headers={"If-Match": "*"})
        # Logout ends a console session (a token has none); a preview stores nothing: both are fine for a reader.
        if scope == "read" and path in ("/admin/logout", f"/admin/orgs/{ORG}/preview"):
            assert response.status_code == 200
            continue
        assert response.status_code == 403, f"{scope}: {method} {path}: {response.status_code} {response.text[:200]}"
    if scope == "decide":
        for method, path in operations:
            if method == "GET" and path not in PUBLIC:
                assert client.get(path).status_code == 403, path
    assert _state(stack) == before


# --- console sessions: CSRF, cookie, throttling ------------------------------------------------------------------


def test_every_change_by_a_console_session_needs_its_csrf_token(stack: Stack) -> None:
    console = stack.client()
    name = _new_user(stack)  # a system admin: only the CSRF check stands between the request and the change
    assert console.login(name).status_code == 200
    operations = _admin_operations(stack)
    before = _state(stack)
    for method, path in _changing(operations):
        for token in (None, "not-the-token", ""):
            headers = {"If-Match": "*", **({"X-CSRF-Token": token} if token is not None else {})}
            response = console.request(method, path, json=BODIES.get(path, {}), csrf=False, headers=headers)
            assert response.status_code == 403, (
                f"{method} {path} csrf={token!r}: {response.status_code} {response.text[:200]}"
            )
            assert "X-CSRF-Token" in response.json()["message"]
    assert _state(stack) == before
    assert console.get("/admin/session").status_code == 200, "the session survived (logout needs the token too)"


def test_the_session_cookie_is_httponly_strict_and_secure_behind_tls(stack: Stack) -> None:
    name = _new_user(stack, "auditor", ORG)
    plain = stack.client().login(name)
    cookie = plain.headers["set-cookie"]
    flags = {part.strip().split("=")[0].lower(): part for part in cookie.split(";")}
    assert "httponly" in flags and flags["samesite"].lower().endswith("strict") and flags["path"].strip() == "Path=/"
    assert "secure" not in flags, "over plain http the browser would never send it back"
    proxied = stack.client().login(name, headers={"X-Forwarded-Proto": "https"})
    assert "secure" in proxied.headers["set-cookie"].lower()
    assert proxied.json()["csrf_token"] and proxied.json()["csrf_token"] not in proxied.headers["set-cookie"]
    console = stack.client()
    console.login(name)
    ended = console.post("/admin/logout", headers={"X-Forwarded-Proto": "https"})
    cleared = ended.headers["set-cookie"].lower()
    assert "max-age=0" in cleared and "httponly" in cleared and "secure" in cleared


def test_logins_are_throttled_per_user_and_address_and_forwarded_for_does_not_help(stack: Stack) -> None:
    """From an address that is not a trusted proxy (uvicorn trusts X-Forwarded-* from 127.0.0.1 only), a
    forged X-Forwarded-For does not reset the count."""
    name = _new_user(stack, "auditor", ORG)
    outside = httpx.Client(
        base_url=stack.server.url, transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=30
    )

    def login(password: str, **headers: str) -> httpx.Response:
        return outside.post("/admin/login", json={"username": name, "password": password}, headers=headers)

    assert [login("wrong password").status_code for _ in range(5)] == [401] * 5
    for spoof in ("10.0.0.1", "127.0.0.3, 10.1.1.1"):
        refused = login(PASSWORD, **{"X-Forwarded-For": spoof, "X-Real-IP": spoof, "Forwarded": f"for={spoof}"})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1, refused.text
    assert stack.client().login(name).status_code == 200, (
        "the count is per address: the real one elsewhere is not locked out"
    )


# --- headers on every answer ----------------------------------------------------------------------------------


def _assert_headers(response: httpx.Response, where: str) -> None:
    headers = response.headers
    policy = headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in policy, f"{where}: {policy!r}"
    directives = dict(([*d.strip().split(" ", 1), ""])[:2] for d in policy.split(";") if d.strip())
    scripts = directives.get("script-src", directives.get("default-src", ""))
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, f"{where}: {policy!r}"
    assert headers.get("x-content-type-options") == "nosniff", where
    assert headers.get("referrer-policy") in ("no-referrer", "same-origin", "strict-origin-when-cross-origin"), where


def test_every_answer_carries_the_security_headers(stack: Stack) -> None:
    seen = 0
    for method, template, _ in routes.operations(stack.server.url):
        path = routes.fill(template)
        for client in (stack.root, stack.client()):  # an answer and, for most, a refusal
            response = routes.send(client.http, method, path, template, json={}, headers={"If-Match": "nope"})
            _assert_headers(response, f"{method} {path} {response.status_code}")
            seen += 1
    for path in (
        "/console",
        "/console/index.html",
        "/schema",
        "/schema/openapi.json",
        "/no/such/path",
        "/console/missing.js",
    ):
        _assert_headers(httpx.get(f"{stack.server.url}{path}", timeout=10), path)
    too_big = httpx.post(
        f"{stack.server.url}/v1/check", content=b"x" * 1_100_000, headers={"Content-Type": "application/json"}
    )
    assert too_big.status_code == 413
    _assert_headers(too_big, "413")
    admin = stack.root.get("/admin/session")
    assert "no-store" in admin.headers["cache-control"], "admin answers carry sessions and secrets: never cached"
    assert seen > 100


# --- secrets --------------------------------------------------------------------------------------------------


def test_only_settings_reads_the_environment() -> None:
    """Secrets (database URL and its password, webhook URL) come from DUTYLINE_* variables, read in one place."""
    readers = []
    for path in sorted((REPO / "service/dutyline").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("environ", "getenv")
                and getattr(node.value, "id", "") == "os"
            ):
                readers.append(str(path.relative_to(REPO)))
    assert set(readers) <= {"service/dutyline/settings.py"}, readers


@pytest.fixture
def debug_server(tmp_path: Path) -> Iterator[tuple[LiveServer, str, Client]]:
    """A server logging at debug level, on PostgreSQL with a password in its URL (trust auth ignores it)."""
    backend = "postgresql" if POSTGRES_URL else "sqlite"
    with fresh_database(backend, tmp_path) as url:
        secret = f"dbpw{uuid.uuid4().hex[:10]}"
        if backend == "postgresql":
            url = url.replace("postgresql://postgres@", f"postgresql://postgres:{secret}@", 1)
        token = create_admin(url)
        load_content(url)
        server = LiveServer(url, extra_env={"DUTYLINE_LOG_LEVEL": "debug"})
        try:
            server.wait_ready()
            yield server, secret, Client(server, token)  # type: ignore[arg-type]
        finally:
            server.stop()


def test_passwords_and_database_secrets_never_reach_the_logs(debug_server: tuple[LiveServer, str, Client]) -> None:
    server, db_secret, root = debug_server
    password = f"Pw-{uuid.uuid4().hex}"
    changed = f"Pw2-{uuid.uuid4().hex}"
    name = f"u_{uuid.uuid4().hex[:6]}"
    assert root.post("/admin/users", json={"username": name, "password": password, "roles": []}).status_code == 201
    console = Client(server)  # type: ignore[arg-type]
    assert console.login(name, password).status_code == 200
    assert Client(server).login(name, password + "x").status_code == 401  # type: ignore[arg-type]
    assert Client(server).login(name, password[:-1]).status_code == 401  # type: ignore[arg-type]
    own_change = {"password": changed, "current_password": password}  # the current one is needed, and logged nowhere
    assert console.patch(f"/admin/users/{name}", json=own_change).status_code == 200
    assert root.post("/admin/users", json={"username": "x" * 65, "password": password}).status_code == 400
    assert Client(server).login(name, changed).status_code == 200  # type: ignore[arg-type]
    audit = json.dumps(root.get("/admin/audit", params={"limit": 1000}).json())
    log = server.log_text()
    assert '{"time": ' in log, "the server's own (JSON) log was captured"
    for secret in (password, changed, db_secret):
        assert secret not in log, f"a secret is in the server's log: {secret}"
        assert secret not in audit, f"a secret is in the audit trail: {secret}"
    for path in ("/metrics", "/readyz", "/healthz", "/schema/openapi.json"):
        assert db_secret not in httpx.get(f"{server.url}{path}", timeout=10).text, path


def _everything_stored(database_url: str) -> str:
    """Every row of every table, as text."""
    engine = create_engine(_psycopg(database_url))
    try:
        with engine.connect() as connection:
            return "\n".join(
                repr(tuple(row))
                for name in inspect(engine).get_table_names()
                for row in connection.execute(text(f'SELECT * FROM "{name}"'))
            )
    finally:
        engine.dispose()


def test_a_password_typed_as_the_username_is_kept_nowhere(debug_server: tuple[LiveServer, str, Client]) -> None:
    """A username that is no user is recorded as a keyed digest: tries with one name can be told apart from others,
    the text cannot be read back. A known user's failed login is recorded under their name."""
    server, _, root = debug_server
    typed = f"Pw-{uuid.uuid4().hex}"
    other = f"Pw-{uuid.uuid4().hex}"
    name = f"u_{uuid.uuid4().hex[:6]}"
    assert root.post("/admin/users", json={"username": name, "password": PASSWORD, "roles": []}).status_code == 201
    for username in (typed, typed, other, name):
        refused = Client(server).login(username, "not the password")  # type: ignore[arg-type]
        assert refused.status_code == 401, refused.text
    entries = root.get("/admin/audit", params={"limit": 1000}).json()["items"]
    failed = [e for e in entries if e["action"] == "login_failed"]
    assert len(failed) == 4
    known, third, second, first = failed  # newest first
    assert (known["actor"], known["target"]) == (name, f"user:{name}"), "a known user's failed login is theirs"
    assert first["actor"] == second["actor"] != third["actor"], (
        "the same unknown name, the same digest; another, another"
    )
    for entry in (first, second, third):
        assert entry["actor"].startswith("unknown user ") and entry["target"] == f"user:{entry['actor']}", entry
    by_actor = root.get("/admin/audit", params={"actor": first["actor"]}).json()["items"]
    assert [e["seq"] for e in by_actor] == [second["seq"], first["seq"]], "tries with one name are found together"
    audit = json.dumps(root.get("/admin/audit", params={"limit": 1000}).json())
    log = server.log_text()
    stored = _everything_stored(server.database_url)
    for secret in (typed, other):
        assert secret not in audit, "a typed username is in the audit trail"
        assert secret not in log, "a typed username is in the server's log"
        assert secret not in stored and secret.lower() not in stored, "a typed username is stored in the database"
    assert root.get("/admin/audit/verify").json()["ok"]


# --- rule text, ids and names are data, never code ----------------------------------------------------------------

PYTHON = [
    "__import__('os').system('touch /tmp/dutyline-pwned')",
    "().__class__.__base__.__subclasses__()",
    "open('/etc/passwd').read()",
    "exec('import os')",
    "lambda: 1",
    "[x for x in ()]",
    "context.amount if 1 else 2",
]
SQL = ["'; DROP TABLE org_versions; --", "1; DELETE FROM audit_log", '" OR 1=1 --', "x') OR ('1'='1"]


def _tables(stack: Stack) -> dict[str, int]:
    engine = create_engine(_psycopg(stack.database_url))
    try:
        names = inspect(engine).get_table_names()
        with engine.connect() as connection:
            return {n: connection.execute(text(f'SELECT count(*) FROM "{n}"')).scalar_one() for n in names}
    finally:
        engine.dispose()


def test_expressions_in_rules_and_conditions_cannot_run_python_or_sql(stack: Stack) -> None:
    tables = _tables(stack)
    assert {"org_versions", "audit_log"} <= set(tables)
    pack = stack.root.get(f"/admin/orgs/{ORG}/rules/{ORG}")
    post = stack.root.get(f"/admin/orgs/{ORG}/posts/sales_analyst")
    for payload in PYTHON + SQL:
        rule = {
            "kind": "condition",
            "id": "injected",
            "name": {"zh": "注入", "en": "injected"},
            "applies_to": {"resources": ["expense"], "actions": ["approve"]},
            "when": payload,
            "effect": "deny",
            "message": {"zh": "x", "en": "x"},
        }
        changed = stack.root.patch(
            f"/admin/orgs/{ORG}/rules/{ORG}", etag=pack.headers["etag"], json={"rules": [*pack.json()["rules"], rule]}
        )
        assert changed.status_code == 400, f"{payload}: {changed.status_code} {changed.text[:300]}"
        duties = [
            {**d, "permissions": [{**p, "condition": payload} for p in d.get("permissions", [])]}
            for d in post.json().get("duties", [])
        ]
        condition = stack.root.patch(
            f"/admin/orgs/{ORG}/posts/sales_analyst", etag=post.headers["etag"], json={"duties": duties}
        )
        assert condition.status_code == 400, f"{payload}: {condition.status_code} {condition.text[:300]}"
        preview = stack.root.post(f"/admin/orgs/{ORG}/posts/sales_analyst?preview=true", json={"duties": duties})
        assert preview.status_code in (400, 405) or preview.json().get("valid") is False, preview.text[:300]
    assert not PWNED.exists(), "an expression ran code"
    assert _tables(stack) == tables, "nothing was stored"


def test_ids_names_and_subjects_with_sql_are_stored_and_answered_as_plain_text(stack: Stack) -> None:
    tables = _tables(stack)
    for payload in SQL:
        # An id: refused by its pattern, or simply not found.
        refused = stack.root.post(f"/admin/orgs/{ORG}/people", json={"id": payload, "name": {"zh": "甲", "en": "a"}})
        assert refused.status_code == 400, refused.text[:300]
        assert stack.root.get("/admin/orgs/" + urllib.parse.quote(payload, safe="")).status_code == 404
        # A name: any text is a fine name, stored and given back exactly as written.
        ident = f"p_{uuid.uuid4().hex[:8]}"
        made = stack.root.post(f"/admin/orgs/{ORG}/people", json={"id": ident, "name": {"zh": payload, "en": payload}})
        assert made.status_code == 201, made.text[:300]
        assert stack.root.get(f"/admin/orgs/{ORG}/people/{ident}").json()["name"] == {"zh": payload, "en": payload}
        # A subject, an action and a resource in a decision: a deny, logged verbatim, found by an exact filter.
        answer = stack.root.post(
            "/v1/check",
            json={"organisation": ORG, "subject": {"id": payload}, "resource": {"type": payload}, "action": payload},
            headers={"X-Request-ID": f"sql-{ident}"},
        ).json()
        assert answer["decision"] == "deny"
        assert stack.root.get("/v1/decisions", params={"subject": payload, "organisation": ORG}).status_code == 200
    counts = _tables(stack)
    assert set(counts) == set(tables), "no table was dropped or created"
    assert counts["org_versions"] == tables["org_versions"] + len(SQL), "one version per person added, nothing deleted"
    assert counts["audit_log"] > tables["audit_log"] and stack.root.get("/admin/audit/verify").json()["ok"]


def test_yaml_tags_in_uploads_are_data(stack: Stack) -> None:
    for text_ in (
        "!!python/object/apply:os.system ['touch /tmp/dutyline-pwned']\n",
        "id: x\nname: !!python/object/new:os.system [touch /tmp/dutyline-pwned]\n",
    ):
        response = stack.root.post("/admin/orgs", content=text_.encode(), headers={"Content-Type": "application/yaml"})
        assert response.status_code == 400
    assert not PWNED.exists()
