"""Importing and exporting organisations: files ⇄ database, all or nothing."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec
from ruamel.yaml import YAML
from sqlalchemy.orm import Session, sessionmaker

from dutyline.errors import Invalid, NotFound
from dutyline.orgmodel.document import Organisation
from dutyline.orgmodel.source import MAX_SCALARS
from dutyline.rulemodel.document import RulePack
from dutyline.services import sources
from dutyline.services.four_eyes import FourEyes
from dutyline.store import audit, history
from dutyline.store import orgs as org_store
from dutyline.store import rule_packs as pack_store
from dutyline.store.audit import AuditEvent


def import_paths(
    sessions: sessionmaker[Session],
    paths: Iterable[str | Path],
    author: str,
    comment: str = "",
    progress: Callable[[str], None] | None = None,
    four_eyes: FourEyes | None = None,
    max_scalars: int = MAX_SCALARS,
    how: Literal["imported", "seeded"] = "imported",
) -> list[org_store.SaveResult]:
    """Validate every organisation file under `paths`, then store them in one transaction, each document and
    rule pack that changed with its audit entry (`org_imported`, `rules_seeded` …, naming its file), as every
    other write has.

    Any error in any file raises `Invalid` before anything is written. With `four_eyes` (`dutyline import`),
    a file that would change an organisation or rule pack that four-eyes applies to is refused too: the
    command line has nobody to approve it, so it goes through the admin API, where it waits for a second person.
    Only seeding an empty database passes None.
    """

    def stored(org_id: str) -> Organisation | None:
        # rule packs for organisations already in the database are checked against the stored documents
        with sessions() as session:
            try:
                return org_store.head(session, org_id).document
            except NotFound:
                return None

    loaded = sources.load(paths, stored, max_scalars=max_scalars)
    if loaded.errors:
        raise Invalid(f"{len(loaded.errors)} error(s); nothing was imported", loaded.errors)
    documents = [parsed.organisation for parsed in loaded.organisations.values()]
    packs = [(Path(p.source.file).stem, p.pack) for p in loaded.rule_packs]
    # Each file's text is kept with the version it makes, so that an export gives it back as written.
    org_texts = {
        o.organisation.id: loaded.texts[o.source.file]
        for o in loaded.organisations.values()
        if o.source.file in loaded.texts
    }
    pack_texts = {
        Path(p.source.file).stem: loaded.texts[p.source.file]
        for p in loaded.rule_packs
        if p.source.file in loaded.texts
    }
    results = []
    with sessions.begin() as session:
        if four_eyes is not None:
            _refuse_held(session, four_eyes, loaded, packs)
        for document in documents:
            results += org_store.save(session, [document], author, comment, org_texts)
            if progress is not None:
                progress(document.id)
        results += pack_store.save(session, packs, author, comment, pack_texts)
        org_files = {o.organisation.id: o.source.file for o in loaded.organisations.values()}
        pack_files = {Path(p.source.file).stem: p.source.file for p in loaded.rule_packs}
        for result in results:
            if not result.changed:
                continue
            what, target = (
                ("rules", f"{result.org_id}/rules/{result.name}") if result.name else ("org", f"org:{result.org_id}")
            )
            file = pack_files.get(result.name, "") if result.name else org_files.get(result.org_id, "")
            detail = {"version": result.version, "revision": result.revision, "comment": comment, "file": file}
            audit.append(session, author, AuditEvent.of(what, how), result.org_id, target, detail)
    return results


def _refuse_held(
    session: Session, four_eyes: FourEyes, loaded: sources.Loaded, packs: list[tuple[str, RulePack]]
) -> None:
    """`Invalid`, naming each file, if the import would change something four-eyes applies to."""
    issues = []
    for parsed in loaded.organisations.values():
        org = parsed.organisation
        found = org_store.newest(session, org.id)
        unchanged = (
            found is not None
            and found.document is not None
            and org_store.digest(found.document) == org_store.digest(org)
        )
        if not unchanged and four_eyes.required(session, org.id, "org"):
            issues.append(parsed.source.issue((), _HELD.format(what="org chart", org=org.id)))
    for (name, pack), parsed_pack in zip(packs, loaded.rule_packs):
        if pack_store.differs(session, name, pack) and four_eyes.required(session, pack.org, f"rules/{name}"):
            issues.append(parsed_pack.source.issue((), _HELD.format(what="rule pack", org=pack.org)))
    if issues:
        raise Invalid(f"{len(issues)} change(s) need a second person's approval; nothing was imported", issues)


_HELD = (
    "four-eyes applies to {what} changes of {org!r}: a second person must approve this one, so send it through "
    "the admin API (it waits there for approval) or turn four-eyes off for the organisation first"
)


def save_documents(
    sessions: sessionmaker[Session],
    documents: list[Organisation],
    author: str,
    comment: str = "",
    progress: Callable[[str], None] | None = None,
) -> list[org_store.SaveResult]:
    results = []
    with sessions.begin() as session:
        for document in documents:
            results += org_store.save(session, [document], author, comment)
            if progress is not None:
                progress(document.id)
    return results


@dataclass(frozen=True, slots=True)
class Exported:
    """One file an export wrote: what it holds (`org`, or rule pack `name`) and where."""

    organisation: str
    kind: str  # org, rules
    name: str
    path: Path
    verbatim: bool  # the text it was imported from, as written (else the canonical YAML of the stored document)


def org_text(stored: org_store.StoredOrg) -> str:
    """An organisation's file: the text it was imported from when it has not been edited since, else its
    canonical YAML."""
    if stored.source is not None:
        return stored.source
    if stored.document is None:
        raise NotFound(f"organisation {stored.org_id!r} cannot be read by this release")
    return to_yaml(stored.document)


def pack_text(stored: pack_store.StoredPack) -> str:
    """A rule pack's file, as `org_text` for an organisation."""
    if stored.source is not None:
        return stored.source
    if stored.pack is None:
        raise NotFound(f"rule pack {stored.name!r} of {stored.org_id!r} cannot be read by this release")
    return pack_yaml(msgspec.to_builtins(stored.pack))


def export_all(sessions: sessionmaker[Session], folder: Path) -> list[Exported]:
    """Write every organisation and rule pack in the store under `folder` as the repository lays them out:
    `policies/orgs/<org>.yaml` and `rules/<pack>.yaml` (what `dutyline import` and the seed read back)."""
    out: list[tuple[Exported, str]] = []
    with sessions() as session:
        for org_id, *_rest in history.organisations(session):
            found = org_store.newest(session, org_id)
            if found is None or found.deleted:
                continue
            out.append(
                (
                    Exported(
                        org_id, "org", "", folder / "policies" / "orgs" / f"{org_id}.yaml", found.source is not None
                    ),
                    org_text(found),
                )
            )
            for stored in pack_store.current(session, org_id):
                path = folder / "rules" / f"{stored.name}.yaml"
                out.append((Exported(org_id, "rules", stored.name, path, stored.source is not None), pack_text(stored)))
    for exported, text in out:  # read first, then written: an unreadable document writes nothing
        exported.path.parent.mkdir(parents=True, exist_ok=True)
        exported.path.write_bytes(text.encode("utf-8"))
    return [exported for exported, _ in out]


def pack_yaml(pack: Any) -> str:
    """A rule pack (plain data) as YAML, as a compliance officer would keep it in `rules/`."""
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.allow_unicode = True
    yaml.width = 4096
    buffer = io.StringIO()
    yaml.dump(pack, buffer)
    return buffer.getvalue()


def to_yaml(org: Organisation) -> str:
    """The canonical YAML form of a document (what `dutyline export` writes)."""
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.allow_unicode = True
    yaml.width = 4096
    buffer = io.StringIO()
    buffer.write("# yaml-language-server: $schema=https://dutyline.dev/schema/org.schema.json\n")
    yaml.dump(msgspec.to_builtins(org), buffer)
    return buffer.getvalue()
