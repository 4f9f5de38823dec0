"""The set of compiled organisations (and their rules) a process decides with, replaced whole on change.

Readers take `PolicySet` references and never lock: a change builds a new set (sharing the unchanged
organisations) and swaps it in with one assignment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.rules import CompiledRules


@dataclass(frozen=True, slots=True)
class PolicySet:
    orgs: Mapping[str, CompiledOrg] = field(default_factory=lambda: MappingProxyType({}))
    version: int = 0
    rules: Mapping[str, CompiledRules] = field(default_factory=lambda: MappingProxyType({}))

    def get(self, org_id: str) -> CompiledOrg | None:
        return self.orgs.get(org_id)

    def replace(
        self,
        changed: Iterable[CompiledOrg],
        removed: Iterable[str] = (),
        version: int = 0,
        rules: Mapping[str, CompiledRules] | None = None,
    ) -> PolicySet:
        """A new set with `changed` organisations put in, `removed` ones taken out, and `rules` replaced."""
        orgs = dict(self.orgs)
        all_rules = dict(self.rules)
        for org in changed:
            orgs[org.id] = org
        for org_id in removed:
            orgs.pop(org_id, None)
            all_rules.pop(org_id, None)
        all_rules.update(rules or {})
        return PolicySet(MappingProxyType(orgs), max(version, self.version), MappingProxyType(all_rules))
