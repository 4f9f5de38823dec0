"""The set of compiled organisations a process decides with, replaced whole on every change.

Readers take `PolicySet` references and never lock: a change builds a new set (sharing the unchanged
organisations) and swaps it in with one assignment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from dutyline.engines.compiler import CompiledOrg


@dataclass(frozen=True, slots=True)
class PolicySet:
    orgs: Mapping[str, CompiledOrg] = field(default_factory=lambda: MappingProxyType({}))
    version: int = 0

    def get(self, org_id: str) -> CompiledOrg | None:
        return self.orgs.get(org_id)

    def replace(self, changed: Iterable[CompiledOrg], removed: Iterable[str] = (), version: int = 0) -> PolicySet:
        """A new set with `changed` organisations put in and `removed` ones taken out."""
        orgs = dict(self.orgs)
        for org in changed:
            orgs[org.id] = org
        for org_id in removed:
            orgs.pop(org_id, None)
        return PolicySet(MappingProxyType(orgs), max(version, self.version))
