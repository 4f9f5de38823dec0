"""Whether a proposal may be stored: its precondition (If-Match), the proposed document validated as `dutyline
validate` validates files, every rule pack still holding against it, a rule pack validated and compiled as a
refresh compiles it. Problems are `Invalid` with every issue, located in the request body where they are in it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.rulehost import check_condition
from dutyline.engines.rules import compile_rules
from dutyline.errors import (
    Conflict,
    Invalid,
    Issue,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unreadable,
    in_words,
)
from dutyline.orgmodel.diff import ORG_COLLECTIONS
from dutyline.orgmodel.document import Organisation
from dutyline.orgmodel.source import SourceMap, check_numbers, format_path
from dutyline.orgmodel.validate import Parsed, check_data
from dutyline.rulemodel.document import RulePack
from dutyline.rulemodel.validate import check_pack
from dutyline.services.editing.edits import REQUEST, Current, Edit, EditKind, describe, entities, matches
from dutyline.services.sources import engine_check
from dutyline.settings import Bounds

ORGANISATION = "<organisation>"  # the file of an issue elsewhere in the document than the entity a request changes


def precondition(edit: Edit, now: Current, if_match: str | None) -> None:
    exists = now.value is not None
    if edit.method == "create":
        if exists:
            raise Conflict(f"{describe(edit.target)} already exists in {now.organisation!r}")
        return
    if not exists:
        raise NotFound(f"{describe(edit.target)} not found in {now.organisation!r}")
    if if_match is None:
        raise PreconditionRequired(
            f"If-Match is required to change {describe(edit.target)}: send the ETag you read (GET it first)"
        )
    if not matches(if_match, now.etag):
        raise PreconditionFailed(
            f"{describe(edit.target)} has changed since you read it (ETag {now.etag}, If-Match {if_match}); "
            "read it again and reapply your change"
        )


def validated(data: Any, source: SourceMap) -> Organisation:
    return check_data(data, source).organisation


def checked(proposed: dict[str, Any], edit: Edit) -> Parsed:
    """The proposed document validated. For a change of one entity, each issue in the entity has the line of the
    request body and a path from the entity (`reports_to`, not `posts[12].reports_to`); an issue elsewhere in the
    document (a post the change leaves dangling) keeps its path in the document, with no line (`<organisation>`)."""
    if edit.kind is EditKind.ORGANISATION:
        return check_data(proposed, edit.source or SourceMap(REQUEST))
    prefix = _entity_path(proposed, edit)
    source = edit.source.moved(prefix) if prefix is not None and edit.source is not None else SourceMap(REQUEST)
    try:
        parsed = check_data(proposed, source)
    except Invalid as exc:
        raise Invalid.of(_relative(exc.issues, prefix), describe(edit.target)) from None
    return Parsed(parsed.organisation, parsed.source, tuple(_relative(parsed.warnings, prefix)))


def _entity_path(document: dict[str, Any], edit: Edit) -> tuple[str | int, ...] | None:
    """Where the edited entity is in `document` (None: not there, as after a delete)."""
    items = entities(document, edit.collection)
    index = next((i for i, e in enumerate(items) if isinstance(e, dict) and e.get("id") == edit.ident), None)
    return None if index is None else (*ORG_COLLECTIONS[edit.collection], index)


def _relative(issues: Sequence[Issue], prefix: tuple[str | int, ...] | None) -> list[Issue]:
    """`issues` of a whole document as `checked` gives them for an entity at `prefix`: the entity's first."""
    inside: list[Issue] = []
    outside: list[Issue] = []
    root = format_path(prefix) if prefix is not None else None
    for issue in issues:
        if root is not None and (issue.path == root or issue.path.startswith((root + ".", root + "["))):
            path = issue.path[len(root) :].removeprefix(".")
            inside.append(Issue(REQUEST, issue.line, path, issue.message, issue.severity, issue.code, issue.params))
        else:
            outside.append(Issue(ORGANISATION, 0, issue.path, issue.message, issue.severity, issue.code, issue.params))
    inside.sort(key=lambda i: (i.line, i.path, i.message))
    return inside + outside


def body_lines(edit: Edit) -> SourceMap | None:
    """The lines of a rule pack change's body. A merge patch's are only for what it gives: a problem in what it
    leaves as stored has no line in the request (not the line of the body's first brace)."""
    if edit.source is None or edit.method != "patch":
        return edit.source
    lines = dict(edit.source.mapped())
    lines.pop((), None)
    return SourceMap(edit.source.file, lines)


def validated_pack(data: Any, org_id: str, org: Organisation, source: SourceMap | None) -> RulePack:
    if isinstance(data, dict) and "org" not in data:
        data = {"org": org_id, **data}
    check_numbers(data, source or SourceMap(REQUEST))  # (a NaN limit was once stored as null, unreadable)
    pack = check_pack(data, source or SourceMap(REQUEST), org, engine_check).pack
    if pack.org != org_id:
        raise Invalid(
            f"org: the pack is for {pack.org!r} but the URL names {org_id!r}",
            [Issue(REQUEST, 0, "org", f"must be {org_id!r}")],
        )
    return pack


def check_packs(packs: Mapping[str, RulePack], organisation: Organisation) -> None:
    """Every rule pack of the organisation must still hold against the changed document (as `validate` checks)."""
    issues: list[Issue] = []
    for name, pack in sorted(packs.items()):
        try:
            check_pack(msgspec.to_builtins(pack), SourceMap(f"rules/{name}"), organisation, engine_check)
        except Invalid as exc:
            issues += exc.issues
    if issues:
        raise Invalid(f"a rule pack that depends on this organisation would break: {in_words(issues)}", issues)


def draft_packs(
    stored: dict[str, RulePack],
    drafts: Mapping[str, Any],
    organisation: Organisation,
    org_id: str,
    source: SourceMap | None,
) -> dict[str, RulePack]:
    """The rule packs as proposed: the stored ones re-checked against `organisation`, with each draft (plain data;
    None deletes the pack) validated and put in place of the stored pack of its name."""
    issues: list[Issue] = []
    try:
        check_packs({n: p for n, p in stored.items() if n not in drafts}, organisation)
    except Invalid as exc:
        issues += exc.issues
    out = {n: p for n, p in stored.items() if n not in drafts}
    for name, data in sorted(drafts.items()):
        if data is None:
            continue
        try:
            out[name] = validated_pack(data, org_id, organisation, source or SourceMap(f"rules/{name}"))
        except Invalid as exc:
            issues += exc.issues
    if issues:
        raise Invalid(f"in the rule packs: {in_words(issues)}", issues)
    return dict(sorted(out.items()))


def compiles(pack: RulePack, org: CompiledOrg, bounds: Bounds) -> None:
    """`Invalid` unless the pack compiles against `org` and the rule host would take every condition of it."""
    try:
        compiled = compile_rules([pack], org, bounds)
        for condition in compiled.rulesets.values():
            check_condition(condition)
    except Invalid:
        raise
    except Exception as exc:  # what a refresh would fail on: refused here, before it is stored
        issue = Issue(REQUEST, 0, "rules", f"cannot be compiled: {exc}")
        raise Invalid(f"rules: the pack cannot be compiled: {exc}", [issue]) from None


def refuse_unreadable(now: Current) -> None:
    """An org chart change is refused while a rule pack of the organisation cannot be read: the refresh would keep
    the whole organisation on its last good version, so the change would be stored but not served."""
    if now.unreadable:
        reasons = "; ".join(f"rules/{name}: {why}" for name, why in sorted(now.unreadable.items()))
        raise Unreadable(
            f"{reasons}; replace or delete the rule pack first (the organisation is not current until then)"
        )


def organisation_of(document: dict[str, Any]) -> Organisation:
    """The stored document (plain data) as its struct again; it passed validation when it was stored (unless
    another release stored it: then `Unreadable`)."""
    try:
        return msgspec.convert(document, Organisation)
    except msgspec.ValidationError as exc:
        raise Unreadable(f"the organisation's stored document cannot be read by this release: {exc}") from None
