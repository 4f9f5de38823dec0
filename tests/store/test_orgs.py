"""Storing organisations: versions, all-or-nothing imports, lossless export, migrations in step with models."""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from dutyline.errors import Invalid, NotFound
from dutyline.orgmodel.validate import parse_organisation
from dutyline.services import orgs
from dutyline.services.policies import PolicyService
from dutyline.store import orgs as org_store
from dutyline.store.tables import Base, OrgVersionRow

REPO = Path(__file__).resolve().parents[2]


def test_migrations_match_the_models(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions() as session:
        context = MigrationContext.configure(session.connection())
        assert compare_metadata(context, Base.metadata) == []


def test_importing_the_seed_stores_one_version_per_organisation(sessions) -> None:  # type: ignore[no-untyped-def]
    results = orgs.import_paths(sessions, [REPO / "policies" / "orgs"], author="test")
    assert len(results) == 7 and all(r.changed for r in results)
    assert [r.version for r in results] == sorted(r.version for r in results)
    again = orgs.import_paths(sessions, [REPO / "policies" / "orgs"], author="test")
    assert not any(r.changed for r in again), "re-importing identical documents creates no version"
    with sessions() as session:
        assert org_store.latest_version(session) == max(r.version for r in results)


def test_export_of_an_import_is_the_same_data(sessions) -> None:  # type: ignore[no-untyped-def]
    orgs.import_paths(sessions, [REPO / "policies" / "orgs"], author="test")
    for path in sorted((REPO / "policies" / "orgs").glob("*.yaml")):
        original = parse_organisation(path.read_text(encoding="utf-8"), str(path)).organisation
        with sessions() as session:
            stored = org_store.head(session, original.id)
        exported = orgs.to_yaml(stored.document)
        assert parse_organisation(exported, "export.yaml").organisation == original


def test_an_import_with_one_bad_file_changes_nothing(sessions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "orgs"
    shutil.copytree(REPO / "policies" / "orgs", folder)
    (folder / "sales_company.yaml").write_text(
        (folder / "sales_company.yaml")
        .read_text(encoding="utf-8")
        .replace("reports_to: department_head", "reports_to: nobody", 1),
        encoding="utf-8",
    )
    with pytest.raises(Invalid) as caught:
        orgs.import_paths(sessions, [folder], author="test")
    assert [i.message for i in caught.value.issues] == ["unknown superior post 'nobody'"]
    with sessions() as session:
        assert session.execute(select(OrgVersionRow)).first() is None


def test_a_change_is_a_new_version_and_the_policy_service_applies_only_it(sessions, example_text: str) -> None:  # type: ignore[no-untyped-def]
    orgs.import_paths(sessions, [REPO / "policies" / "orgs"], author="test")
    service = PolicyService(sessions)
    first = service.refresh()
    before = dict(first.orgs.items())
    changed = parse_organisation(example_text.replace("headcount: 4", "headcount: 5"), "x.yaml").organisation
    [result] = orgs.save_documents(sessions, [changed], author="hr", comment="one more representative")
    assert result.changed and result.version > first.version
    second = service.refresh()
    assert second.version == result.version
    assert second.orgs["sales_company"].version == result.version
    assert all(second.orgs[o] is before[o] for o in before if o != "sales_company"), "unchanged orgs are not recompiled"


def test_an_unknown_organisation_is_not_found(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions() as session, pytest.raises(NotFound):
        org_store.head(session, "nowhere")


def test_upgrading_counts_each_documents_revisions_in_a_database_with_versions(database_url: str) -> None:
    """Migration 0012 on versions stored before it: each document (the organisation, each rule pack) numbered
    1, 2, 3 … in version order, whatever the global versions between them."""
    from sqlalchemy import text

    from dutyline.store.db import make_engine, upgrade

    engine = make_engine(database_url)
    try:
        upgrade(engine, "0009")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO organisations (id, name_zh, name_en, head_version, created_at) VALUES "
                    "('a', 'A', 'A', 0, CURRENT_TIMESTAMP), ('b', 'B', 'B', 0, CURRENT_TIMESTAMP)"
                )
            )
            for org_id, kind, name in [
                ("a", "org", ""),
                ("b", "org", ""),
                ("a", "rules", "p"),
                ("a", "org", ""),
                ("a", "rules", "p"),
                ("a", "rules", "q"),
                ("a", "org", ""),
            ]:
                connection.execute(
                    text(
                        "INSERT INTO org_versions (org_id, kind, name, document, digest, author, comment, created_at) "
                        "VALUES (:o, :k, :n, '{}', 'x', 'old', '', CURRENT_TIMESTAMP)"
                    ),
                    {"o": org_id, "k": kind, "n": name},
                )
        upgrade(engine)
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT org_id, kind, name, revision, source FROM org_versions ORDER BY version")
            ).all()
        assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
            ("a", "org", "", 1),
            ("b", "org", "", 1),
            ("a", "rules", "p", 1),
            ("a", "org", "", 2),
            ("a", "rules", "p", 2),
            ("a", "rules", "q", 1),
            ("a", "org", "", 3),
        ]
        assert all(r[4] is None for r in rows), "no source text is invented for versions stored before"
    finally:
        engine.dispose()


def test_an_import_keeps_each_files_text_and_a_save_counts_the_documents_revision(sessions) -> None:  # type: ignore[no-untyped-def]
    first = orgs.import_paths(
        sessions, [REPO / "policies" / "orgs" / "hotel.yaml", REPO / "rules" / "hotel.yaml"], author="test"
    )
    assert [(r.name, r.revision) for r in first] == [("", 1), ("hotel", 1)]
    with sessions() as session:
        stored = org_store.head(session, "hotel")
    assert stored.source == (REPO / "policies" / "orgs" / "hotel.yaml").read_text(encoding="utf-8")
    assert orgs.org_text(stored) == stored.source
    edited = msgspec.structs.replace(stored.document, timezone="Asia/Tokyo")
    with sessions.begin() as session:
        [saved] = org_store.save(session, [edited], "test")
    assert (saved.revision, saved.version) == (2, first[-1].version + 1)
    with sessions() as session:
        again = org_store.head(session, "hotel")
    assert again.source is None and again.revision == 2, "an edit is exported as canonical YAML"
    assert parse_organisation(orgs.org_text(again), "export.yaml").organisation == edited
