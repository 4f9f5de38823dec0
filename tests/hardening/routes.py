"""The HTTP API's operations as its OpenAPI document lists them, and a valid value for every path parameter."""

from __future__ import annotations

import httpx

ORG = "sales_company"
# A value each path parameter accepts (the object exists or is plausible), so that a test can vary one at a time.
VALID = {
    "org": ORG,
    "org_id": ORG,
    "collection": "posts",
    "ident": "sales_analyst",
    "name": ORG,
    "number": "1",
    "person": "li_na",
    "post": "sales_analyst",
    "username": "root",
    "token_id": "t",
    "change_id": "c",
    "approval_id": "a",
    "case_id": "c",
    "task_id": "arq_x",
    "decision_id": "d",
    "seq": "1",
}


# Operations answered with a stream that does not end by itself (server-sent events): a sweep over every operation
# reads only the head of such an answer (`send`), else it would wait for the stream's end.
STREAMS = frozenset({"GET /v1/changes"})


def send(client: httpx.Client, method: str, path: str, template: str, **kwargs: object) -> httpx.Response:
    """`client.request`, except that a stream (`STREAMS`) answered 200 is closed after its status and headers."""
    if f"{method} {template}" not in STREAMS:
        return client.request(method, path, **kwargs)  # type: ignore[arg-type]
    with client.stream(method, path, **kwargs) as response:  # type: ignore[arg-type]
        if response.status_code != 200:
            response.read()
        return response


def operations(base_url: str) -> list[tuple[str, str, list[str]]]:
    """(method, path template, path parameter names) of every operation in `/schema/openapi.json`."""
    schema = httpx.get(f"{base_url}/schema/openapi.json", timeout=10).json()
    return [
        (method.upper(), path, [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"])
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]


def fill(template: str, values: dict[str, str] | None = None) -> str:
    """The path with each `{name}` replaced by `values[name]`, else by its VALID value."""
    path = template
    for name, value in {**VALID, **(values or {})}.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no value for a parameter of {template}: add it to VALID"
    return path
