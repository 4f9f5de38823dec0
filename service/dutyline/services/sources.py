"""Reading policy files from disk: which files there are, what each one is, and every error in them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dutyline.engines.rulehost import NotExpressible, check_condition, condition_json
from dutyline.engines.rules import flat_key
from dutyline.errors import Invalid, Issue, IssueCode
from dutyline.orgmodel.document import Organisation
from dutyline.orgmodel.source import MAX_SCALARS, SourceMap, check_numbers, load_yaml
from dutyline.orgmodel.validate import Parsed, check_data
from dutyline.rulemodel.validate import ParsedPack, check_pack
from dutyline.settings import Bounds

Kind = Literal["organisation", "decision_table", "rule_pack", "rule_table"]


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """YAML files named by `paths`: files as given, folders searched recursively (sorted, stable).

    Files under a `schema/` folder are schemas, not policy, and are skipped.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file() and "schema" not in p.parts
            )
        elif path.exists():
            found.append(path)
        else:
            raise Invalid(
                f"{path}: no such file or folder",
                [Issue(str(path), 0, "", "no such file or folder", code=IssueCode.NOT_FOUND)],
            )
    return found


def kind_of(data: Any) -> Kind:
    """What a loaded file is, from its top-level keys."""
    if isinstance(data, dict) and "cases" in data:
        cases = data.get("cases")
        if isinstance(cases, list) and any(isinstance(c, dict) and "request" in c for c in cases):
            return "rule_table"
        return "decision_table"
    if isinstance(data, dict) and "org" in data and ("rules" in data or "case_types" in data):
        return "rule_pack"
    return "organisation"


def engine_check(expression: Any, bounds: Bounds) -> None:
    """Raise if a condition cannot run in the rules engine, or compiles beyond `bounds.condition_bytes`
    (validation reports it with its line)."""
    condition = condition_json(expression, flat_key)
    try:
        check_condition(condition, bounds.condition_bytes)
    except NotExpressible:
        raise
    except ValueError as error:  # beyond what durable_rules can hold (groups, nodes): refused like the rest
        raise NotExpressible(f"this condition: {error}", "") from None


@dataclass(slots=True)
class Loaded:
    """All policy files under some paths: organisations, rule packs, test tables, and every issue."""

    organisations: dict[str, Parsed] = field(default_factory=dict)
    rule_packs: list[ParsedPack] = field(default_factory=list)
    decision_tables: list[tuple[Any, SourceMap]] = field(default_factory=list)
    rule_tables: list[tuple[Any, SourceMap]] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)  # each file's text as read, by file name (for exports)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    def packs_of(self, org_id: str) -> list[ParsedPack]:
        return [p for p in self.rule_packs if p.pack.org == org_id]


def load(
    paths: Iterable[str | Path],
    resolve: Callable[[str], Organisation | None] | None = None,
    bounds: Bounds | None = None,
    max_scalars: int = MAX_SCALARS,
) -> Loaded:
    """Load and validate every file; collect all issues instead of stopping at the first.

    Rule packs are checked against the organisations among the files, or else the one `resolve` finds
    (the database's, for an import of rule packs alone). Neither may hold a NaN or infinite number (test
    tables may: they try what the rules do with one).
    """
    loaded = Loaded()
    try:
        files = discover(paths)
    except Invalid as exc:
        loaded.issues += exc.issues
        return loaded
    packs: list[tuple[Any, SourceMap]] = []
    for path in files:
        name = str(path)
        try:
            text = path.read_bytes().decode("utf-8")  # as written: no newline translation (an export gives it back)
            data, source = load_yaml(text, name, max_scalars)
        except UnicodeDecodeError as exc:
            loaded.issues.append(
                Issue(name, 0, "", f"not UTF-8 text: {exc.reason} at byte {exc.start}", code=IssueCode.ENCODING)
            )
            continue
        except Invalid as exc:
            loaded.issues += exc.issues
            continue
        kind = kind_of(data)
        if kind in ("organisation", "rule_pack"):
            loaded.texts[name] = text
        if kind == "decision_table":
            loaded.decision_tables.append((data, source))
        elif kind == "rule_table":
            loaded.rule_tables.append((data, source))
        elif kind == "rule_pack":
            packs.append((data, source))
        else:
            _add_organisation(loaded, data, source)
    for data, source in packs:
        org_id = data.get("org") if isinstance(data, dict) else None
        parsed_org = loaded.organisations.get(org_id) if isinstance(org_id, str) else None
        org = parsed_org.organisation if parsed_org else None
        if org is None and resolve is not None and isinstance(org_id, str):
            org = resolve(org_id)
        try:
            check_numbers(data, source)
            pack = check_pack(data, source, org, engine_check, bounds)
        except Invalid as exc:
            loaded.issues += exc.issues
            continue
        loaded.issues += pack.warnings
        loaded.rule_packs.append(pack)
    loaded.issues.sort(key=lambda i: (i.file, i.line, i.path, i.message))
    return loaded


def _add_organisation(loaded: Loaded, data: Any, source: SourceMap) -> None:
    try:
        parsed = check_data(data, source)
    except Invalid as exc:
        loaded.issues += exc.issues
        return
    loaded.issues += parsed.warnings
    org_id = parsed.organisation.id
    if org_id in loaded.organisations:
        first = loaded.organisations[org_id].source.file
        loaded.issues.append(
            source.issue(("id",), f"organisation {org_id!r} is also defined in {first}", code=IssueCode.DUPLICATE)
        )
        return
    loaded.organisations[org_id] = parsed
