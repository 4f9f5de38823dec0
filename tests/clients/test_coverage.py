"""The client covers the decision API of the live server's OpenAPI document: every operation has a method (both
clients), and every struct it decodes an answer into has the fields of the document's schema of that name."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest

from dutyline_client import OPERATIONS, AsyncClient, Client, models
from dutyline_client.models import DecisionContext
from tests.clients.conftest import Dutyline

_DECISION_API = ("/v1/", "/access/", "/orgs/{org}/access/", "/.well-known/authzen-configuration")


@pytest.fixture(scope="module")
def document(dutyline: Dutyline) -> dict[str, Any]:
    response = httpx.get(f"{dutyline.url}/schema/openapi.json", timeout=10)
    assert response.status_code == 200
    return response.json()


def _operations(document: dict[str, Any]) -> set[str]:
    return {
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        if path.startswith(_DECISION_API)
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }


def test_every_operation_of_the_decision_api_has_a_client_method(document: dict[str, Any]) -> None:

    operations = _operations(document)
    assert operations, "the document lists no decision API operation: the filter is wrong"
    uncovered = sorted(operations - OPERATIONS.keys())
    assert not uncovered, (
        f"operations of the decision API the client does not cover (add them to OPERATIONS): {uncovered}"
    )
    stale = sorted(OPERATIONS.keys() - operations)
    assert not stale, f"OPERATIONS names operations the server no longer has: {stale}"
    for method in set(OPERATIONS.values()):
        assert callable(getattr(Client, method, None)), f"Client has no {method}"
        assert callable(getattr(AsyncClient, method, None)), f"AsyncClient has no {method}"


def _fields(struct: type[msgspec.Struct]) -> tuple[set[str], set[str]]:
    fields = msgspec.structs.fields(struct)
    return {f.encode_name for f in fields}, {f.encode_name for f in fields if f.required}


def _models() -> list[type[msgspec.Struct]]:

    return [
        value
        for value in vars(models).values()
        if isinstance(value, type) and issubclass(value, msgspec.Struct) and value.__module__ == models.__name__
    ]


def test_every_answer_struct_has_the_fields_of_its_schema(document: dict[str, Any]) -> None:

    schemas = document["components"]["schemas"]
    compared = 0
    for struct in _models():
        schema = schemas.get(struct.__name__)
        if schema is None:
            continue
        fields, required = _fields(struct)
        properties = set(schema.get("properties", {}))
        assert fields == properties, (
            f"{struct.__name__}: the client lacks {sorted(properties - fields)}, "
            f"the document has no {sorted(fields - properties)}"
        )
        # the client may be more lenient than the document, never stricter: it requires only what is always sent
        assert required <= set(schema.get("required", [])), f"{struct.__name__} requires {required}"
        compared += 1
    assert compared >= 40, f"only {compared} structs matched a schema by name"
    # one struct for every context an AuthZEN decision may carry
    both = (
        set(schemas["Explanation"]["properties"])
        | set(schemas["ProfileContext"]["properties"])
        | set(schemas["ItemError"]["properties"])
    )
    assert _fields(DecisionContext)[0] == both


def test_every_struct_of_the_client_is_a_schema_of_the_document_or_says_why_not(document: dict[str, Any]) -> None:
    unmatched = {s.__name__ for s in _models() if s.__name__ not in document["components"]["schemas"]}
    # CaughtUp: the data of the change stream's `ready` event, which the operation's description gives
    assert unmatched <= {"CaughtUp", "DecisionContext", "_Model"}, unmatched
