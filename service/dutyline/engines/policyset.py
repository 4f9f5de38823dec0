"""The set of compiled organisations (and their rules) a process decides with, replaced whole on change.

Readers take `PolicySet` references and never lock: a change builds a new set (sharing the unchanged
organisations) and swaps it in with one assignment. An organisation whose newest stored version could not be
used is in `problems`: still served at its last good version (stale), or not at all (unavailable).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.rules import CompiledRules

Stage = Literal["decode", "compile", "load"]


@dataclass(frozen=True, slots=True)
class Problem:
    """Why an organisation's newest stored version is not what this process decides with."""

    organisation: str
    version: int  # the stored version that could not be used (of the document or of a rule pack)
    stage: Stage  # decode: not readable by this release; compile: compiling failed; load: the rule host refused it
    reason: str
    # The policy version the organisation is still decided at (its last good one), None if there is none
    # (it failed since start-up): then it is unavailable, and every decision for it is a deny.
    serving: int | None = None

    @property
    def state(self) -> Literal["stale", "unavailable"]:
        return "unavailable" if self.serving is None else "stale"


@dataclass(frozen=True, slots=True)
class PolicySet:
    orgs: Mapping[str, CompiledOrg] = field(default_factory=lambda: MappingProxyType({}))
    version: int = 0
    rules: Mapping[str, CompiledRules] = field(default_factory=lambda: MappingProxyType({}))
    problems: Mapping[str, Problem] = field(default_factory=lambda: MappingProxyType({}))

    def get(self, org_id: str) -> CompiledOrg | None:
        return self.orgs.get(org_id)

    def replace(
        self,
        changed: Iterable[CompiledOrg],
        removed: Iterable[str] = (),
        version: int = 0,
        rules: Mapping[str, CompiledRules] | None = None,
        problems: Mapping[str, Problem] | None = None,
    ) -> PolicySet:
        """A new set with `changed` organisations put in, `removed` ones taken out, `rules` replaced, and
        `problems` (when given) as the organisations not current."""
        orgs = dict(self.orgs)
        all_rules = dict(self.rules)
        for org in changed:
            orgs[org.id] = org
        for org_id in removed:
            orgs.pop(org_id, None)
            all_rules.pop(org_id, None)
        all_rules.update(rules or {})
        kept = self.problems if problems is None else MappingProxyType(dict(problems))
        return PolicySet(MappingProxyType(orgs), max(version, self.version), MappingProxyType(all_rules), kept)

    def version_of(self, org_id: str) -> int:
        """The policy version decisions for `org_id` are made at: the set's, or for a stale organisation the one
        it was last current at (its document and rule packs in force then are what decides)."""
        problem = self.problems.get(org_id)
        if problem is None or problem.serving is None:
            return self.version
        return problem.serving
