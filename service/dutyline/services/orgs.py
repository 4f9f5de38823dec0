"""Importing and exporting organisations: files ⇄ database, all or nothing."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from pathlib import Path

import msgspec
from ruamel.yaml import YAML
from sqlalchemy.orm import Session, sessionmaker

from dutyline.errors import Invalid, NotFound
from dutyline.orgmodel.document import Organisation
from dutyline.services import sources
from dutyline.store import orgs as org_store
from dutyline.store import rule_packs as pack_store


def import_paths(
    sessions: sessionmaker[Session],
    paths: Iterable[str | Path],
    author: str,
    comment: str = "",
    progress: Callable[[str], None] | None = None,
) -> list[org_store.SaveResult]:
    """Validate every organisation file under `paths`, then store them in one transaction.

    Any error in any file raises `Invalid` before anything is written.
    """
    def stored(org_id: str) -> Organisation | None:
        # rule packs for organisations already in the database are checked against the stored documents
        with sessions() as session:
            try:
                return org_store.head(session, org_id).document
            except NotFound:
                return None

    loaded = sources.load(paths, stored)
    if loaded.errors:
        raise Invalid(f"{len(loaded.errors)} error(s); nothing was imported", loaded.errors)
    documents = [parsed.organisation for parsed in loaded.organisations.values()]
    packs = [(Path(p.source.file).stem, p.pack) for p in loaded.rule_packs]
    results = []
    with sessions.begin() as session:
        for document in documents:
            results += org_store.save(session, [document], author, comment)
            if progress is not None:
                progress(document.id)
        results += pack_store.save(session, packs, author, comment)
    return results


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
