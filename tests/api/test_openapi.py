"""The OpenAPI document describes every operation completely: the body it takes, and the JSON it answers at each
status. (That real answers match it is checked by every API test, see conftest.py, and by the fuzz test.)

The AuthZEN operations' documented shapes are those of the AuthZEN 1.0 specification: the interop harnesses'
requests are valid request bodies, and their expected answers valid answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.conformance import document, pointer, validator
from tests.api.test_authzen_interop import CASES, InteropCase

BODILESS = {"POST /admin/logout"}  # writes that take no body (deletes take none either)
# Error statuses whose answer is not the error shape: readiness says what is not ready; a request that cannot be
# approved comes back with its decision; the access request profile's endpoints answer RFC 9457 problems.
OWN_ERRORS = {
    ("GET /readyz", "503"): "Health",
    ("POST /v1/approvals", "409"): "Unapprovable",
    **{
        (operation, status): "ProblemDetails"
        for operation, statuses in (
            ("POST /access/v1/requests", ("400", "409", "410")),
            ("GET /access/v1/requests/{task_id}", ("400", "404")),
            ("POST /access/v1/requests/{task_id}/cancel", ("400", "404", "409")),
        )
        for status in statuses
    },
}


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    # Sorted: Litestar keeps a handler's paths in a set, so the document's order changes between processes and
    # pytest-xdist's workers would collect different lists.
    found = [(method.upper(), path, op) for path, ops in document()["paths"].items() for method, op in ops.items()]
    return sorted(found, key=lambda found: found[:2])


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [node["$ref"]] if isinstance(node.get("$ref"), str) else [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_reference_in_the_document_resolves() -> None:
    refs = sorted(set(_refs(document())))
    assert refs
    for ref in refs:
        assert ref.startswith("#/"), ref
        node: Any = document()
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        assert isinstance(node, dict), ref


def test_every_schema_is_named_after_its_struct_alone() -> None:
    # Two structs of one name (in two modules) make Litestar name both after their modules
    # (`api_schemas_Found`), which renames a schema existing callers and generated clients already use.
    prefixed = sorted(name for name in document()["components"]["schemas"] if "_" in name)
    assert prefixed == [], f"structs share a name: {prefixed}; rename the newer one"


@pytest.mark.parametrize("method,path,operation", _operations(), ids=[f"{m} {p}" for m, p, _ in _operations()])
def test_every_operation_declares_its_answers_and_its_body(method: str, path: str, operation: dict[str, Any]) -> None:
    responses = operation["responses"]
    assert any(200 <= int(status) < 300 for status in responses), responses
    for status, response in responses.items():
        content = response.get("content")
        assert content, f"{status} declares no content"
        for media_type, declared in content.items():
            schema = declared["schema"]
            assert schema != {"type": "string"} or media_type == "text/plain", f"{status} {media_type}: a placeholder"
            if int(status) >= 400:
                shape = OWN_ERRORS.get((f"{method} {path}", status), "ErrorBody")
                assert schema == {"$ref": f"#/components/schemas/{shape}"}, f"{status}: not the error shape"
    if method in ("POST", "PUT", "PATCH") and f"{method} {path}" not in BODILESS:
        assert "requestBody" in operation, "a write whose body the document does not describe"


def _schema_of_body(endpoint: str) -> str:
    reference = document()["paths"][f"/access/v1/{endpoint}"]["post"]["requestBody"]["$ref"]
    return pointer(*reference[2:].split("/"), "content", "application/json", "schema")


def _answer_schema(endpoint: str) -> str:
    return pointer(
        "paths", f"/access/v1/{endpoint}", "post", "responses", "200", "content", "application/json", "schema"
    )


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_the_authzen_interop_cases_are_valid_by_the_document(case: InteropCase) -> None:
    validator(_schema_of_body(case.endpoint)).validate(case.request)
    if case.endpoint == "evaluation":
        expected: Any = {"decision": case.expected}
    elif case.endpoint == "evaluations":
        expected = {"evaluations": case.expected}
    else:  # a search answer as Dutyline gives it: the results and the page (its last)
        expected = {"results": case.expected["results"], "page": {"next_token": ""}}
    validator(_answer_schema(case.endpoint)).validate(expected)


def _component(name: str) -> dict[str, Any]:
    return document()["components"]["schemas"][name]


def test_the_authzen_answers_have_the_specifications_shapes() -> None:
    """AuthZEN 1.0: a decision is a boolean `decision` and an optional `context` object; a batch answers an
    `evaluations` array of decisions; a search answers a `results` array and a `page` with `next_token`."""
    decision = _component("Decision")
    assert decision["required"] == ["decision"] and decision["properties"]["decision"] == {"type": "boolean"}
    contexts = decision["properties"]["context"]["anyOf"]  # the explanation, or what the AuthZEN profiles add
    assert [_component(c["$ref"].rsplit("/", 1)[1])["type"] for c in contexts] == ["object", "object"]
    batch = _component("EvaluationResults")
    assert batch["required"] == ["evaluations"] and batch["properties"]["evaluations"]["type"] == "array"
    item = _component(batch["properties"]["evaluations"]["items"]["$ref"].rsplit("/", 1)[1])
    assert item["required"] == ["decision"] and item["properties"]["decision"] == {"type": "boolean"}
    for name in ("SearchResults", "ActionSearchResults"):
        search = _component(name)
        assert sorted(search["required"]) == ["page", "results"] and search["properties"]["results"]["type"] == "array"
        page = _component(search["properties"]["page"]["$ref"].rsplit("/", 1)[1])
        assert page["properties"]["next_token"] == {"type": "string"}
    for endpoint in ("evaluation", "evaluations", "search/subject", "search/resource", "search/action"):
        assert json.dumps(
            document()["paths"][f"/orgs/{{org}}/access/v1/{endpoint}"]["post"]["responses"]
        ) == json.dumps(document()["paths"][f"/access/v1/{endpoint}"]["post"]["responses"]), (
            f"the per-organisation {endpoint} answers as the plain one"
        )
