"""The one reader of a request's attributes: what `context.amount`, `resource.risk_level` or `subject.grade`
holds for a check, for every rule kind, every condition, the ledger and the approval binding alike.

What the organisation stores wins over what the caller sends (docs/api.md): a resource instance's attributes
in the catalogue over `resource.properties`, a person's attributes over `subject.properties`. `subject.id` is
the person the subject resolved to, never the identity the caller used; `resource.id` and `resource.type`
are the check's own.
"""

from __future__ import annotations

from typing import Any

from dutyline.engines.compiler import CompiledOrg, fold
from dutyline.engines.decision import Check
from dutyline.expressions import follow

ROOTS = ("subject", "resource", "context", "action")


def split(path: str) -> tuple[str, ...]:
    """`"context.amount"` → `("context", "amount")`."""
    return tuple(path.split("."))


def read(org: CompiledOrg, check: Check, subject: str, path: tuple[str, ...]) -> Any:
    """The value at `path` for this check (None when it is absent or the path runs into a non-object).

    `subject` is the person (or post) the check's subject resolved to."""
    root, names = path[0], path[1:]
    if not names:
        return None
    first, rest = names[0], names[1:]
    value: Any
    if root == "context":
        value = (check.context or {}).get(first)
    elif root == "resource":
        if first == "id":
            value = check.resource_id
        elif first == "type":
            value = check.resource_type
        else:
            stored = org.instances.get((check.resource_type, check.resource_id or ""))
            if stored is not None and first in stored:
                value = stored[first]
            else:
                value = (check.resource_properties or {}).get(first)
    elif root == "subject":
        if first == "id":
            value = subject
        else:
            stored = org.person_attributes.get(subject)
            if stored is not None and first in stored:
                value = stored[first]
            else:
                value = (check.subject_properties or {}).get(first)
    elif root == "action":
        value = check.action if first == "name" else None
    else:
        return None
    return follow(value, rest)


def resolve_party(org: CompiledOrg, value: Any) -> str | None:
    """The person a caller's value names (a maker, requester or second person): by any of their identities,
    ignoring surrounding space and letter case. None when it is not text, names nobody, or is ambiguous."""
    if not isinstance(value, str):
        return None
    exact = org.identities.get(value)
    if exact is not None:
        return exact
    return org.folded_identities.get(fold(value))
