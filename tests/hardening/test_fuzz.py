"""The whole HTTP API fuzzed from its own OpenAPI document (schemathesis), against a real server.

Every operation of `/schema/openapi.json`, with valid and invalid generated parameters and bodies (the document
declares every request body), as the system administrator. Schemathesis checks each answer against the document:
no 5xx; the status is one the operation declares (an undeclared one fails, so that the document stays complete);
the content type is declared for that status; the body matches the schema declared for that status, 2xx and 4xx
alike (every answer's object shapes are exact: `additionalProperties: false`). An error's `status` is the HTTP one.

The test aims its copy of the document, not the served one: path parameters take real ids in the positive mode,
admin writes target a sacrificial organisation (`fuzz_target`) and carry `If-Match: *`, so that generated
documents, entities and rule packs really go through validation and the editor. A check may not ask for a policy
version the server does not have yet (`at_least_version`): that is a documented 503 after a wait, the server
doing as asked (tests/api/test_decisions.py), so such cases are not sent.

`DUTYLINE_FUZZ_EXAMPLES` (default 15) sets the examples per operation and mode; the whole run takes a few
minutes at the default.
"""

from __future__ import annotations

import copy
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dutyline.app import create_app
from dutyline.orgmodel.diff import ORG_COLLECTIONS
from dutyline.settings import Settings
from tests.conftest import REPO
from tests.hardening import routes
from tests.hardening.conftest import Stack

EXAMPLES = int(os.environ.get("DUTYLINE_FUZZ_EXAMPLES", "15"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SEEN: dict[str, Counter[int]] = {}  # statuses per operation, for the summary at the end
TARGET = "fuzz_target"  # a copy of sales_company (and its rule pack) that admin writes may wreck
IDS = [
    "business_dept",
    "sales_analyst",
    "department_head",
    "li_na",
    "zhao_lei",
    "customer",
    "budget",
    "analyst_not_seller",
]
READ_ORG = "sales_company"  # decision and query routes: reading changes nothing

# The schema the app describes, built in-process (no database) so that tests can be named per operation.
_SCHEMA = create_app(Settings(database_url="sqlite://", seed_dir=None)).openapi_schema.to_schema()
# Deletes last, and deleting the whole target organisation the very last of all.
OPERATIONS = sorted(
    (f"{m.upper()} {p}" for p, ops in _SCHEMA["paths"].items() for m in ops),
    key=lambda label: (label.startswith("DELETE"), label == "DELETE /admin/orgs/{org_id}", label),
)


def fuzz_schema(served: dict[str, Any]) -> dict[str, Any]:
    """The served OpenAPI document, aimed: real path values, If-Match `*`, versions the server has."""
    schema = copy.deepcopy(served)
    applied = {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 1}, {"type": "null"}]}
    for body in schema["components"]["requestBodies"].values():
        for definition in body["content"]["application/json"]["schema"].get("$defs", {}).values():
            if "at_least_version" in definition.get("properties", {}):
                definition["properties"]["at_least_version"] = applied
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "header" and parameter["name"] == "If-Match":
                    parameter["schema"] = {"type": "string", "enum": ["*"]}
                if parameter["in"] != "path":
                    continue
                known = {
                    "org_id": [TARGET] if path.startswith("/admin/") else [READ_ORG],
                    "org": [READ_ORG],
                    "collection": list(ORG_COLLECTIONS),
                    "name": [TARGET],
                    "ident": IDS,
                    "person": ["li_na", "zhao_lei"],
                    "post": ["sales_analyst", "department_head"],
                }.get(parameter["name"])
                if known:  # real values in the positive mode; the negative mode sends anything else
                    parameter["schema"] = {"type": "string", "enum": known}
    return schema


@pytest.fixture(scope="module")
def fuzzed(stack: Stack) -> Iterator[schemathesis.BaseSchema]:
    served = requests.get(f"{stack.server.url}/schema/openapi.json", timeout=10).json()
    assert sorted(f"{m.upper()} {p}" for p, ops in served["paths"].items() for m in ops) == sorted(OPERATIONS)
    document = (
        (REPO / "policies/orgs/sales_company.yaml")
        .read_text(encoding="utf-8")
        .replace("id: sales_company", f"id: {TARGET}", 1)
    )
    created = stack.root.post("/admin/orgs", content=document.encode(), headers={"Content-Type": "application/yaml"})
    assert created.status_code == 201, created.text
    pack = YAML(typ="safe").load((REPO / "rules/sales_company.yaml").read_text(encoding="utf-8")) | {"org": TARGET}
    packed = stack.root.post(f"/admin/orgs/{TARGET}/rules", json={"name": TARGET, "pack": pack})
    assert packed.status_code == 201, packed.text
    yield schemathesis.openapi.from_dict(fuzz_schema(served))


@pytest.mark.parametrize("label", OPERATIONS)
def test_fuzz(label: str, fuzzed: schemathesis.BaseSchema, stack: Stack) -> None:
    operation = fuzzed.find_operation_by_label(label)
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))
    session = requests.Session()
    auth = {"Authorization": f"Bearer {stack.token}"}
    start = len(stack.server.log_text())

    @settings(
        max_examples=EXAMPLES * 2,
        deadline=None,
        database=None,
        derandomize=True,
        print_blob=True,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def fuzz(case: schemathesis.Case) -> None:
        hypothesis.assume(not _asks_for_a_later_version(case.body, stack))
        try:
            if label in routes.STREAMS:  # an open stream never ends: its head is checked, then it is closed
                streamed = session.request(**case.as_transport_kwargs(stack.server.url, auth), stream=True, timeout=30)
                if streamed.status_code == 200:
                    assert streamed.headers["content-type"].startswith("text/event-stream"), streamed.headers
                    streamed.close()
                    SEEN.setdefault(label, Counter())[200] += 1
                    return
                response = streamed
            else:
                response = case.call(base_url=stack.server.url, session=session, headers=auth, timeout=30)
        except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, UnicodeError, ValueError):
            hypothesis.reject()  # the client cannot even send it
        case.validate_response(response, checks=CHECKS)
        if response.status_code >= 400:
            assert response.json()["status"] == response.status_code, response.text[:500]
        SEEN.setdefault(label, Counter())[response.status_code] += 1

    fuzz()
    log = stack.server.log_text(start)
    assert "unhandled error" not in log, log[-4000:]


def _asks_for_a_later_version(body: object, stack: Stack) -> bool:
    wanted = body.get("at_least_version") if isinstance(body, dict) else None
    if not isinstance(wanted, int) or isinstance(wanted, bool) or not 0 <= wanted < 2**31:
        return False  # not a version: a 400
    return wanted > requests.get(f"{stack.server.url}/healthz", timeout=10).json()["policy_version"]


def test_the_fuzzing_reached_past_validation() -> None:
    """Generated requests must not all bounce off as 400/404: a fair share of operations answered 2xx."""
    if len(SEEN) < len(OPERATIONS):
        pytest.skip("runs after the whole fuzz run")
    succeeded = sorted(label for label, statuses in SEEN.items() if any(200 <= s < 300 for s in statuses))
    print("\n".join(f"{label}: {dict(sorted(SEEN[label].items()))}" for label in OPERATIONS))
    assert len(succeeded) >= len(OPERATIONS) // 2, succeeded
