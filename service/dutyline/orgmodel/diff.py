"""What changed between two versions of a document, entity by entity (the readable half of a version diff;
the other half is the unified diff of the YAML exports)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Where the entities of an organisation document live, by the name the admin API uses for them.
ORG_COLLECTIONS: Mapping[str, tuple[str, ...]] = {
    "departments": ("departments",),
    "posts": ("posts",),
    "people": ("people",),
    "resources": ("catalogue", "resources"),
    "groups": ("catalogue", "groups"),
    "separation_of_duties": ("separation_of_duties",),
}
PACK_COLLECTIONS: Mapping[str, tuple[str, ...]] = {"rules": ("rules",), "case_types": ("case_types",)}


def collection(document: Mapping[str, Any] | None, path: tuple[str, ...]) -> list[Any]:
    value: Any = document or {}
    for key in path:
        value = value.get(key, {} if key != path[-1] else []) if isinstance(value, Mapping) else []
    return value if isinstance(value, list) else []


def summarise(
    old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, collections: Mapping[str, tuple[str, ...]]
) -> dict[str, Any]:
    """{kind: {added, removed, changed}} for each collection of entities with an `id`, and the other top-level
    keys that changed. Documents are plain data (`msgspec.to_builtins`); None is "not there"."""
    out: dict[str, Any] = {}
    for kind, path in collections.items():
        # A proposed document may be ill-formed (previews summarise it before it is refused): an id that is not a
        # string is no entity of it, and must not fail the summary.
        before = {e["id"]: e for e in collection(old, path) if isinstance(e, Mapping) and isinstance(e.get("id"), str)}
        after = {e["id"]: e for e in collection(new, path) if isinstance(e, Mapping) and isinstance(e.get("id"), str)}
        entry = {
            "added": sorted(set(after) - set(before)),
            "removed": sorted(set(before) - set(after)),
            "changed": sorted(k for k in set(before) & set(after) if before[k] != after[k]),
        }
        if any(entry.values()):
            out[kind] = entry
    tops = {path[0] for path in collections.values()}
    others = sorted(
        key
        for key in set(old or {}) | set(new or {})
        if key not in tops and (old or {}).get(key) != (new or {}).get(key)
    )
    if others:
        out["fields"] = others
    return out
