"""Cerbos, given a generated branch as its policies, answers every question as Dutyline's decision core does.

A real `cerbos server` (0.55, from the npm registry) on a loopback port, asked over its native
`/api/check/resources` and its AuthZEN `/access/v1/evaluations`; Dutyline answers in process (`decide`). Every
person of the branch is asked every action of every resource type of the catalogue, at an instant inside some
acting windows. Skipped only when the binary cannot be obtained (no npm, no registry, another platform).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench import cerbos
from bench import cerbos_policies as cp
from bench.data import AT
from bench.generate import branch
from dutyline.engines.compiler import CompiledOrg, compile_org
from dutyline.engines.decision import Check, Decision, decide


@pytest.fixture(scope="module")
def org() -> CompiledOrg:
    return compile_org(branch(1, seed=7))


@pytest.fixture(scope="module")
def server(org: CompiledOrg, tmp_path_factory: pytest.TempPathFactory) -> Iterator[cerbos.Server]:
    try:
        cerbos.binary()
    except cerbos.Unavailable as exc:
        pytest.skip(f"Cerbos binary unavailable: {exc}")
    folder: Path = tmp_path_factory.mktemp("cerbos") / "policies"
    cp.write([org], folder)
    running = cerbos.Server(folder)
    try:
        running.wait_ready(60)
        yield running
    finally:
        running.stop()


def questions(org: CompiledOrg) -> list[tuple[str, str]]:
    return [(rtype, action) for rtype, actions in org.action_order.items() for action in actions]


def ours(org: CompiledOrg, person: str, rtype: str, action: str) -> Decision:
    return decide(org, Check(person, rtype, action, AT))


def test_cerbos_native_check_agrees_with_the_decision_core_on_every_person_and_action(
    org: CompiledOrg, server: cerbos.Server
) -> None:
    asked = questions(org)
    disagreements, denied_across_posts = [], 0
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for person in org.assignments:
            response = client.post("/api/check/resources", json=cerbos.check_body(org, person, asked, AT))
            response.raise_for_status()
            for (rtype, action), theirs in zip(asked, cerbos._allowed(response.json()), strict=True):
                decision = ours(org, person, rtype, action)
                denied_across_posts += bool(decision.denied_by and decision.allowed_by)
                if decision.allowed != theirs:
                    disagreements.append((person, rtype, action, decision.outcome))
    assert disagreements == []
    # the case where the two PDPs' rules for several roles differ (any allow wins in Cerbos) is among them
    assert denied_across_posts > 0


def test_cerbos_authzen_agrees_for_people_with_one_active_post(org: CompiledOrg, server: cerbos.Server) -> None:
    asked = questions(org)
    disagreements, compared = [], 0
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for person in org.assignments:
            evaluations = [cerbos.authzen_body(org, person, rtype, action, AT) for rtype, action in asked]
            if evaluations[0] is None:
                continue  # several active posts: AuthZEN's subject.type carries one role
            response = client.post("/access/v1/evaluations", json={"evaluations": evaluations})
            response.raise_for_status()
            for (rtype, action), answer in zip(asked, response.json()["evaluations"], strict=True):
                compared += 1
                if ours(org, person, rtype, action).allowed != answer["decision"]:
                    disagreements.append((person, rtype, action))
    assert compared > 0
    assert disagreements == []
