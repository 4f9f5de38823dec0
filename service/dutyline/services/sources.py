"""Reading policy files from disk: which files there are, what each one is, and every error in them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dutyline.errors import Invalid, Issue
from dutyline.orgmodel.source import SourceMap, load_yaml
from dutyline.orgmodel.validate import Parsed, check_data

Kind = Literal["organisation", "decision_table"]


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """YAML files named by `paths`: files as given, folders searched recursively (sorted, stable)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        elif path.exists():
            found.append(path)
        else:
            raise Invalid(f"{path}: no such file or folder", [Issue(str(path), 0, "", "no such file or folder")])
    return found


def kind_of(data: Any) -> Kind:
    """What a loaded file is, from its top-level keys."""
    if isinstance(data, dict) and "cases" in data:
        return "decision_table"
    return "organisation"


@dataclass(slots=True)
class Loaded:
    """All policy files under some paths: the valid organisations, decision tables, and every issue."""

    organisations: dict[str, Parsed] = field(default_factory=dict)
    decision_tables: list[tuple[Any, SourceMap]] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]


def load(paths: Iterable[str | Path]) -> Loaded:
    """Load and validate every file; collect all issues instead of stopping at the first."""
    loaded = Loaded()
    try:
        files = discover(paths)
    except Invalid as exc:
        loaded.issues += exc.issues
        return loaded
    for path in files:
        name = str(path)
        try:
            data, source = load_yaml(path.read_text(encoding="utf-8"), name)
        except UnicodeDecodeError as exc:
            loaded.issues.append(Issue(name, 0, "", f"not UTF-8 text: {exc.reason} at byte {exc.start}"))
            continue
        except Invalid as exc:
            loaded.issues += exc.issues
            continue
        if kind_of(data) == "decision_table":
            loaded.decision_tables.append((data, source))
            continue
        try:
            parsed = check_data(data, source)
        except Invalid as exc:
            loaded.issues += exc.issues
            continue
        loaded.issues += parsed.warnings
        org_id = parsed.organisation.id
        if org_id in loaded.organisations:
            first = loaded.organisations[org_id].source.file
            loaded.issues.append(source.issue(("id",), f"organisation {org_id!r} is also defined in {first}"))
            continue
        loaded.organisations[org_id] = parsed
    loaded.issues.sort(key=lambda i: (i.file, i.line, i.path, i.message))
    return loaded
