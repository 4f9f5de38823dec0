"""The AuthZEN interop suites, run over real HTTP against the examples and judged as the interop harnesses judge.

Each scenario of the working group's interop events is expressed in Dutyline's own org format under `examples/`;
nothing here or in the service knows about any scenario. The cases are the harnesses' data files, read from
`../shared/authzen-interop` beside the clone. The older Todo drafts (`decisions-authorization-api-1_0-00.json`,
`decisions.json`) are not run: they predate the AuthZEN 1.0 request shape (the todo's owner sits on the resource
itself instead of in `resource.properties`, and the subject carries an extra `identity`), and the 1_0-01 and
1_0-02 files ask the same 40 questions in the current shape.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO, run_cli
from tests.live import LiveServer


def _interop_data() -> Path | None:
    for candidate in (
        Path(__file__).resolve().parents[3] / "shared" / "authzen-interop",
        Path("/work/shared/authzen-interop"),
    ):
        if candidate.is_dir():
            return candidate
    return None


INTEROP = _interop_data()
if INTEROP is None:
    pytest.skip(
        "AuthZEN interop data not found: expected ../shared/authzen-interop beside the clone", allow_module_level=True
    )

EXAMPLES = REPO / "examples"
# example folder → the organisation it defines (its PDP base is {server}/orgs/{id})
ORG_IDS = {"todo": "todo", "api-gateway": "api_gateway", "search": "search", "idp": "idp"}
# (example, test-id prefix, data file, {top-level key of the file: endpoint under /access/v1/})
SUITES = [
    ("todo", "todo-1_0-01", "todo/decisions-authorization-api-1_0-01.json", {"evaluation": "evaluation"}),
    (
        "todo",
        "todo-1_0-02",
        "todo/decisions-authorization-api-1_0-02.json",
        {"evaluation": "evaluation", "evaluations": "evaluations"},
    ),
    ("api-gateway", "api-gateway", "api-gateway/decisions.json", {"evaluation": "evaluation"}),
    ("search", "search", "search/subject/results.json", {"evaluation": "search/subject"}),
    ("search", "search", "search/resource/results.json", {"evaluation": "search/resource"}),
    ("search", "search", "search/action/results.json", {"evaluation": "search/action"}),
    ("idp", "idp", "idp/results.json", {"search": "search/resource"}),
]
# The search-demo harness drops every other action from a PDP's action-search answer before comparing.
HARNESS_ACTIONS = {"view", "edit", "delete"}


@dataclass(frozen=True, slots=True)
class InteropCase:
    example: str
    label: str
    endpoint: str
    request: dict[str, Any]
    expected: Any


def _cases() -> list[InteropCase]:
    assert INTEROP is not None
    cases: list[InteropCase] = []
    for example, prefix, file, endpoints in SUITES:
        data = json.loads((INTEROP / file).read_text(encoding="utf-8"))
        for key, endpoint in endpoints.items():
            for index, case in enumerate(data[key]):
                label = f"{prefix}-{endpoint.rsplit('/', 1)[-1]}-{index:02d}"
                cases.append(InteropCase(example, label, endpoint, case["request"], case["expected"]))
    return cases


CASES = _cases()


def _post(base: str, case: InteropCase) -> dict[str, Any]:
    response = httpx.post(
        f"{base}/access/v1/{case.endpoint}",
        content=json.dumps(case.request),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 200, f"{response.status_code} {response.text}"
    return response.json()


def _without_nulls(value: Any) -> Any:
    """What JSON.stringify(value, (_, v) => v === null ? undefined : v) keeps: object keys whose value is null go."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _search_results(results: list[dict[str, Any]]) -> str:
    """Search results as the harnesses compare them: sorted by type and id (or by name), then as JSON text.

    The comparison is of JSON text, so key order counts: {"type", "id"} is not {"id", "type"} to the harness.
    """
    kept = [r for r in _without_nulls(results) if not r.get("name") or r["name"] in HARNESS_ACTIONS]
    kept.sort(key=lambda r: (r.get("type", ""), r.get("id", "")) if r.get("type") else (r.get("name", ""),))
    return json.dumps(kept)


def _judge(case: InteropCase, answer: dict[str, Any]) -> None:
    sent = json.dumps(case.request)
    if case.endpoint == "evaluation":
        # runner: JSON.stringify(expected) === JSON.stringify(data.decision || false)
        assert (answer.get("decision") or False) is case.expected, f"{sent} → {answer}"
    elif case.endpoint == "evaluations":
        # runner: JSON.stringify(expected) === JSON.stringify(data.evaluations || []); an extra key in an item fails
        assert json.dumps(answer.get("evaluations") or []) == json.dumps(case.expected), f"{sent} → {answer}"
    else:
        actual = _search_results(answer.get("results") or [])
        assert actual == _search_results(case.expected["results"]), f"{sent} → {answer}"


@contextmanager
def _serving(database_url: str) -> Iterator[str]:
    """A real server on a loopback port, once it has loaded the organisations already in its database."""
    server = LiveServer(database_url, seed_dir="")
    try:
        server.wait_ready()
        deadline = time.monotonic() + 30
        while httpx.get(f"{server.url}/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "the server never became ready"
            time.sleep(0.1)
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def pdp_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], str]]:
    """The PDP base URL of an example's organisation, on a server of its own over a fresh SQLite database.

    Servers start on first use and stop when the module is done, so the ~300 cases share four of them. (An
    indirect module-scoped parameter would not: pytest keys it by the position of each case, not by its value.)
    The backends are covered by the import test below.
    """
    bases: dict[str, str] = {}
    with ExitStack() as servers:

        def base(example: str) -> str:
            if example not in bases:
                database_url = f"sqlite:///{tmp_path_factory.mktemp(example) / 'dutyline.db'}"
                run_cli("import", str(EXAMPLES / example), database_url=database_url, check=True)
                bases[example] = f"{servers.enter_context(_serving(database_url))}/orgs/{ORG_IDS[example]}"
            return bases[example]

        yield base


def test_every_case_of_the_interop_files_is_collected() -> None:
    # 40 + 43 Todo, 25 gateway, 60 + 18 + 120 search, 6 IdP (the README's table)
    assert len(CASES) == 312
    assert len({c.label for c in CASES}) == len(CASES)


def test_the_examples_validate_without_errors_or_warnings() -> None:
    result = run_cli("validate", *(str(EXAMPLES / example) for example in ORG_IDS))
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.strip()
        == f"ok: {len(ORG_IDS)} organisation(s), 0 rule pack(s), 0 decision table(s), 0 rule test table(s)"
    )


def test_the_examples_import_together_and_each_answers_at_its_own_base(database_url: str) -> None:
    run_cli("import", *(str(EXAMPLES / example) for example in ORG_IDS), database_url=database_url, check=True)
    firsts = {(c.example, c.endpoint): c for c in reversed(CASES)}
    with _serving(database_url) as url:
        for case in firsts.values():
            _judge(case, _post(f"{url}/orgs/{ORG_IDS[case.example]}", case))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_the_pdp_answers_the_interop_case_as_the_harness_expects(
    pdp_base: Callable[[str], str], case: InteropCase
) -> None:
    _judge(case, _post(pdp_base(case.example), case))
