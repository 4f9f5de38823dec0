"""Every write is audited, the ones that do not come through the admin API too: `dutyline import` (run as a child
process) and seeding an empty database at start-up each leave an audit entry per document and rule pack stored,
naming the file; an import that changes nothing leaves none."""

from __future__ import annotations

import pytest

from dutyline.runtime import Runtime
from dutyline.settings import Settings
from dutyline.store import audit
from dutyline.store.db import make_engine, session_factory
from tests.conftest import REPO, run_cli


def _trail(database_url: str) -> list[audit.AuditRow]:
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            return list(reversed(audit.query(session, audit.AuditFilter(), 1000)))
    finally:
        engine.dispose()


def test_dutyline_import_leaves_an_audit_entry_for_each_document_and_pack_it_stores(database_url: str) -> None:
    org, pack = REPO / "policies/orgs/hotel.yaml", REPO / "rules/hotel.yaml"
    run_cli("import", str(org), str(pack), database_url=database_url, check=True)
    entries = _trail(database_url)
    assert [(e.action, e.organisation, e.target) for e in entries] == [
        ("org_imported", "hotel", "org:hotel"),
        ("rules_imported", "hotel", "hotel/rules/hotel"),
    ]
    assert all(e.actor == entries[0].actor != "" for e in entries)
    assert str(org) in entries[0].detail and str(pack) in entries[1].detail

    run_cli("import", str(org), str(pack), database_url=database_url, check=True)
    assert len(_trail(database_url)) == len(entries), "an import that changes nothing records nothing"


def test_seeding_an_empty_database_leaves_an_audit_entry_for_each_seed_document(database_url: str) -> None:
    runtime = Runtime.start(Settings(database_url=database_url, seed_dir=REPO / "policies", listen=False))
    runtime.close()
    seeded = [e for e in _trail(database_url) if e.actor == "seed"]
    orgs = {e.organisation for e in seeded if e.action == "org_seeded"}
    packs = {e.target for e in seeded if e.action == "rules_seeded"}
    assert orgs == {p.stem for p in (REPO / "policies/orgs").glob("*.yaml")}
    assert packs == {f"{p.stem}/rules/{p.stem}" for p in (REPO / "rules").glob("*.yaml")}
