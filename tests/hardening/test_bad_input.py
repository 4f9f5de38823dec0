"""Bad input, sent to a real server: whatever arrives, the answer is a 4xx with a JSON body that says what is
wrong, never a 5xx, and the server keeps serving. Also the command line's `dutyline import` with hostile files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO
from tests.hardening import routes
from tests.hardening.conftest import Stack

ORG = "sales_company"
CHECK = {"organisation": ORG, "subject": {"id": "li_na"}, "resource": {"type": "customer"}, "action": "contact"}
EVALUATION = {
    "subject": {"type": "user", "id": "li_na"},
    "resource": {"type": "customer", "id": "c1"},
    "action": {"name": "contact"},
}

# Endpoints that read a JSON body, with a body each accepts (decision API; admin API with root's token).
JSON_ENDPOINTS: list[tuple[str, str, Any]] = [
    ("POST", "/v1/check", CHECK),
    ("POST", "/v1/checks", {"checks": [CHECK]}),
    ("POST", "/access/v1/evaluation", EVALUATION),
    ("POST", f"/orgs/{ORG}/access/v1/evaluations", {"evaluations": [EVALUATION]}),
    ("POST", "/access/v1/search/subject", {**EVALUATION, "subject": {"type": "user"}}),
    ("POST", f"/v1/orgs/{ORG}/usage", {"person": "li_na", "rule": "monthly_expense_limit", "amount": 1}),
    ("POST", "/v1/approvals", CHECK),
    ("POST", "/v1/cases", {"organisation": ORG, "type": "x"}),
    ("POST", "/admin/login", {"username": "nobody", "password": "x"}),
    ("POST", "/admin/users", {"username": "x"}),
    ("POST", "/admin/tokens", {"scopes": ["read"]}),
    ("POST", "/admin/orgs", {"id": "x"}),
    ("POST", f"/admin/orgs/{ORG}/preview", {"document": None}),
    ("POST", f"/admin/orgs/{ORG}/posts", {"id": "x"}),
    ("PUT", f"/admin/orgs/{ORG}/settings", {"rules_four_eyes": False}),
    ("POST", f"/admin/orgs/{ORG}/rules", {"name": "x", "pack": {}}),
]
# Endpoints that also take YAML (imports of whole documents and rule packs).
YAML_ENDPOINTS = [("POST", "/admin/orgs"), ("PUT", f"/admin/orgs/{ORG}"), ("PUT", f"/admin/orgs/{ORG}/rules/{ORG}")]

BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")]
)
# The scalar kind (issue 11, case 12): 120 KB, one long text aliased 5,000 times, 500 MB once expanded.
SCALAR_BOMB = 'a: &a "' + "x" * 100_000 + '"\nb: [' + ", ".join(["*a"] * 5000) + "]\n"


def send(stack: Stack, method: str, path: str, *, if_match: bool = True, **kwargs: Any) -> httpx.Response:
    """As root, with `If-Match: *` unless told otherwise (a write then replaces whatever is there)."""
    headers = {
        "Authorization": f"Bearer {stack.token}",
        **({"If-Match": "*"} if if_match else {}),
        **kwargs.pop("headers", {}),
    }
    return stack.root.http.request(method, path, headers=headers, **kwargs)


def assert_refused(response: httpx.Response, status: int | tuple[int, ...] = 400, says: str = "") -> dict[str, Any]:
    """A 4xx (the given one), JSON, with a message (containing `says`)."""
    wanted = status if isinstance(status, tuple) else (status,)
    assert response.status_code in wanted, (
        f"{response.request.method} {response.request.url}: {response.status_code} {response.text[:300]}"
    )
    body = response.json()
    if response.headers["content-type"].startswith("application/problem+json"):
        # the access request profile's routes answer RFC 9457 problem details, as the profile says
        assert body["status"] == response.status_code and body["detail"] and body["type"], body
        assert says.lower() in body["detail"].lower(), body
        return body
    assert response.headers["content-type"].startswith("application/json"), response.headers
    assert body["status"] == response.status_code and body["message"], body
    assert says.lower() in body["message"].lower() or says.lower() in json.dumps(body["issues"]).lower(), body
    return body


@pytest.fixture(autouse=True)
def server_still_healthy(stack: Stack):  # type: ignore[no-untyped-def]
    start = len(stack.server.log_text())
    yield
    assert httpx.get(f"{stack.server.url}/readyz", timeout=10).status_code == 200
    log = stack.server.log_text(start)
    assert "unhandled error" not in log, log[-4000:]


# --- size ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "_"), JSON_ENDPOINTS[:3] + JSON_ENDPOINTS[-4:])
def test_a_body_over_the_limit_is_413(stack: Stack, method: str, path: str, _: Any) -> None:
    huge = b'{"pad": "' + b"x" * 1_048_576 + b'"}'  # DUTYLINE_MAX_BODY_BYTES, 1 MiB by default
    assert_refused(send(stack, method, path, content=huge, headers={"Content-Type": "application/json"}), 413)

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"x" * 65536  # no Content-Length: counted as it streams in

    assert_refused(send(stack, method, path, content=chunks(), headers={"Content-Type": "application/json"}), 413)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/checks", {"checks": [CHECK] * 1001}, "checks"),
        ("/access/v1/evaluations", {**EVALUATION, "evaluations": [{}] * 1001}, "evaluations"),
    ],
)
def test_a_batch_over_the_documented_limit_is_400(stack: Stack, path: str, body: dict[str, Any], field: str) -> None:
    refused = assert_refused(send(stack, "POST", path, json=body), 400, "at most 1000")
    assert refused["issues"][0]["path"] == field
    at_limit = send(stack, "POST", path, json={**body, field: body[field][:1000]})
    assert (
        at_limit.status_code == 200 and len(at_limit.json()["results" if field == "checks" else "evaluations"]) == 1000
    )


# --- structure ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "_"), JSON_ENDPOINTS)
def test_json_nested_a_hundred_thousand_deep_is_400(stack: Stack, method: str, path: str, _: Any) -> None:
    for deep in ("[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000):
        assert_refused(
            send(stack, method, path, content=deep, headers={"Content-Type": "application/json"}), (400, 401)
        )


def test_nesting_inside_free_form_fields_is_400_at_any_depth(stack: Stack) -> None:
    for depth in (500, 2000, 100_000):
        nested = "[" * depth + "]" * depth
        body = json.dumps({**CHECK, "context": {"x": 0}}).replace("0", nested)
        response = send(stack, "POST", "/v1/check", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code in (200, 400), response.text[:300]
    admin = json.dumps({"document": {"id": 0}}).replace("0", "[" * 500 + "]" * 500)
    assert_refused(
        send(stack, "POST", f"/admin/orgs/{ORG}/preview", content=admin, headers={"Content-Type": "application/json"}),
        400,
        "deeper",
    )


@pytest.mark.parametrize(("method", "path", "body"), JSON_ENDPOINTS)
def test_invalid_utf8_is_400(stack: Stack, method: str, path: str, body: Any) -> None:
    text = json.dumps(body, ensure_ascii=False).encode()
    # In the first string value (a field the endpoint reads), or else in a field of its own.
    broken, changed = re.subn(rb'([:[]\s*")', lambda m: m.group(1) + b"\xff\xfe", text, count=1)
    broken = broken if changed else text[:-1] + b', "z": "\xc3\x28"}'
    assert_refused(send(stack, method, path, content=broken, headers={"Content-Type": "application/json"}), (400, 401))


@pytest.mark.parametrize(("method", "path"), YAML_ENDPOINTS)
def test_invalid_utf8_yaml_is_400(stack: Stack, method: str, path: str) -> None:
    response = send(stack, method, path, content=b"id: \xff\xfe\n", headers={"Content-Type": "application/yaml"})
    assert_refused(response, 400, "utf-8")


@pytest.mark.parametrize(
    "content_type",
    [
        "",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/json-patch+json",
    ],
)
@pytest.mark.parametrize(("method", "path", "body"), JSON_ENDPOINTS[:3] + JSON_ENDPOINTS[-5:])
def test_a_wrong_content_type_is_400_naming_the_header(
    stack: Stack, content_type: str, method: str, path: str, body: Any
) -> None:
    response = send(stack, method, path, content=json.dumps(body), headers={"Content-Type": content_type})
    assert_refused(response, 400, "content-type")


def test_json_with_a_duplicate_key_is_refused_as_yaml_is(stack: Stack) -> None:
    """A key given twice (`effect: deny` then `effect: allow`) must not silently become the last one."""
    body = '{"id": "dup", "name": {"zh": "甲", "en": "a"}, "department": "business_dept", "department": "nowhere"}'
    assert_refused(
        send(stack, "POST", f"/admin/orgs/{ORG}/posts", content=body, headers={"Content-Type": "application/json"}),
        400,
        "duplicate key",
    )
    assert send(stack, "GET", f"/admin/orgs/{ORG}/posts/dup").status_code == 404


# --- YAML uploads ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), YAML_ENDPOINTS)
def test_yaml_bombs_deep_nesting_and_duplicate_keys_are_refused_with_the_line(
    stack: Stack, method: str, path: str
) -> None:
    before = send(stack, "GET", f"/admin/orgs/{ORG}").headers["x-policy-version"]
    cases = [
        (BILLION_LAUGHS, "aliases"),
        (SCALAR_BOMB, "aliases"),
        ("id: one\nid: two\n", "duplicate key"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("a: " + "{b: " * 5000 + "1" + "}" * 5000, "nested too deeply"),
        ("x:\n" + "".join("  " * i + "- \n" for i in range(1, 200)), "nested deeper than 64"),
        ("!!python/object/apply:os.system ['touch /tmp/dutyline-pwned']", ""),  # a tag is only a tag: nothing runs
        ("id: x\n\tname: tab\n", "invalid yaml"),
    ]
    for text, says in cases:
        response = send(stack, method, path, content=text.encode(), headers={"Content-Type": "application/yaml"})
        body = assert_refused(response, 400, says)
        if says in ("aliases", "duplicate key"):
            assert body["issues"][0]["line"] >= 1, body
    assert not Path("/tmp/dutyline-pwned").exists()
    assert send(stack, "GET", f"/admin/orgs/{ORG}").headers["x-policy-version"] == before, "nothing was stored"


def _cli_import(stack: Stack, path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DUTYLINE_DATABASE_URL": stack.database_url, "DUTYLINE_SEED_DIR": ""}
    return subprocess.run(
        [sys.executable, "-m", "dutyline", "import", str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


def test_the_cli_import_refuses_hostile_files_with_file_and_line_and_stores_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    good = (REPO / "policies/orgs/sales_company.yaml").read_text(encoding="utf-8")
    files = {
        "bomb.yaml": (BILLION_LAUGHS, "aliases"),
        "scalar_bomb.yaml": (SCALAR_BOMB, "aliases"),
        "twice.yaml": (good + "\nid: sales_company\n", "duplicate key"),
        "deep.yaml": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        "latin1.yaml": (None, "not UTF-8"),
        "python.yaml": ("!!python/object/apply:os.system ['touch /tmp/dutyline-pwned']\n", "error"),
    }
    before = send(stack, "GET", "/admin/orgs").json()
    for name, (text, says) in files.items():
        path = tmp_path / name
        if text is None:
            path.write_bytes(good.encode("utf-8")[:200] + "名".encode("gb18030") + b"\n")
        else:
            path.write_text(text, encoding="utf-8")
        done = _cli_import(stack, path)
        assert done.returncode == 1, (name, done.stdout, done.stderr)
        assert f"{path}:" in done.stderr and says in done.stderr, (name, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
    assert not Path("/tmp/dutyline-pwned").exists()
    assert send(stack, "GET", "/admin/orgs").json() == before


# --- unknown organisations and odd ids -------------------------------------------------------------------------


def test_unknown_organisations_are_a_deny_or_a_404_never_an_error(stack: Stack) -> None:
    check = send(stack, "POST", "/v1/check", json={**CHECK, "organisation": "no_such_org"}).json()
    assert (check["decision"], check["code"]) == ("deny", "unknown_organisation")
    evaluation = send(stack, "POST", "/orgs/no_such_org/access/v1/evaluation", json=EVALUATION)
    assert evaluation.status_code == 200 and evaluation.json()["decision"] is False
    for path in (
        "/v1/orgs/no_such_org/who?resource=customer&action=contact",
        "/v1/orgs/no_such_org/people/li_na/permissions",
        "/admin/orgs/no_such_org",
        "/admin/orgs/no_such_org/posts",
        "/admin/orgs/no_such_org/versions",
        "/.well-known/authzen-configuration/no_such_org",
    ):
        assert_refused(send(stack, "GET", path), 404)


ODD_IDS = [
    "销售公司",
    "with space",
    "a/b",
    "..",
    "../..",
    "./.",
    "%2e%2e%2f",
    "%2F",
    "a%00b",
    "'; DROP TABLE org_versions; --",
    "<script>alert(1)</script>",
    "😀",
    "\u202eevil",
    "x" * 3000,
    " ",
    "null",
    "-1",
]


def test_odd_characters_in_every_path_parameter_are_4xx_or_handled(stack: Stack) -> None:
    """Chinese, spaces, `/`, `..`, percent-encodings, SQL, markup, bidi overrides, very long ids: in each path
    parameter of each operation in the OpenAPI document, one at a time."""
    operations = [op for op in routes.operations(stack.server.url) if op[2]]
    assert len(operations) > 40
    before = send(stack, "GET", f"/admin/orgs/{ORG}").headers["x-policy-version"]
    seen: dict[int, int] = {}
    for method, template, names in operations:
        assert set(names) <= set(routes.VALID), f"no valid value for a parameter of {template}: add it to VALID"
        for odd_name in names:
            for odd in ODD_IDS:
                for encode in (True, False):
                    path = template
                    for name in names:
                        value = odd if name == odd_name else routes.VALID[name]
                        path = path.replace("{" + name + "}", urllib.parse.quote(value, safe="") if encode else value)
                    # Without If-Match: `x/..` is resolved by the client (RFC 3986) to the parent, a real object.
                    response = send(
                        stack, method, path, if_match=False, content=b"{}", headers={"Content-Type": "application/json"}
                    )
                    seen[response.status_code] = seen.get(response.status_code, 0) + 1
                    assert response.status_code < 500, f"{method} {path}: {response.status_code} {response.text[:300]}"
                    if response.status_code >= 400:
                        assert_refused(response, response.status_code)
    assert send(stack, "GET", f"/admin/orgs/{ORG}").headers["x-policy-version"] == before, "no odd id changed anything"
    assert seen.get(404, 0) > 100, seen


def test_the_console_never_serves_a_file_outside_its_folder(stack: Stack) -> None:
    for path in (
        "/console/../pyproject.toml",
        "/console/..%2f..%2fpyproject.toml",
        "/console/%2e%2e/%2e%2e/pyproject.toml",
        "/console/.git/config",
        "/console//etc/passwd",
        "/console/%2fetc%2fpasswd",
    ):
        response = httpx.get(f"{stack.server.url}{path}", timeout=10)
        assert response.status_code == 404 or ("[project]" not in response.text and "root:" not in response.text), path
