"""The seam between rules and whatever runs them: `RuleBackend`, and choosing one by name.

Two backends keep the same semantics, which the equivalence tests check on both and a property test checks
between them: `RuleHost` (durable_rules, the production engine) and `ReferenceHost` (pure Python, reading the
same ruleset JSON and the same event fields). durable_rules had its last release in 2020; everything the rest of
the service knows of rule engines is this protocol, so replacing it is one new class and its test parameter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from dutyline import settings
from dutyline.engines.rulehost.host import RuleHost
from dutyline.engines.rulehost.reference import ReferenceHost


class RuleBackend(Protocol):
    """Rules by name, each a condition in the condition language of `conditions` (from `condition_json`, or
    hand-written over plain fields), asked one flat event at a time. Implementations are thread-safe."""

    def load(self, rulesets: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace the whole set atomically; ValueError naming the rule whose condition is refused, and then
        nothing changes."""
        ...

    def fires(self, name: str, event: Mapping[str, Any]) -> bool:
        """Whether rule `name` holds for `event` (field name → value; a missing attribute is null).
        KeyError for an unknown name."""
        ...

    def fired(self, events: Iterable[tuple[str, Mapping[str, Any]]]) -> list[bool]:
        """`fires` for each (name, event)."""
        ...

    def names(self) -> frozenset[str]:
        """The names loaded."""
        ...

    def close(self) -> None:
        """Unload everything."""
        ...


def new_backend(name: str | None = None) -> RuleBackend:
    """A new, empty backend: `name` ("durable_rules" or "reference"), by default the one
    DUTYLINE_RULES_BACKEND chooses (`settings.rules_backend_name`)."""
    chosen = name or settings.rules_backend_name()
    if chosen not in BACKENDS:
        raise ValueError(f"unknown rules backend {chosen!r}: one of {', '.join(sorted(BACKENDS))}")
    return BACKENDS[chosen]()


BACKENDS: dict[str, type[RuleBackend]] = {"durable_rules": RuleHost, "reference": ReferenceHost}
