"""Storing organisations: versions, all-or-nothing imports, lossless export, migrations in step with models."""

from __future__ import annotations

import shutil
from pathlib import Path

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
        (folder / "sales_company.yaml").read_text(encoding="utf-8").replace("reports_to: department_head", "reports_to: nobody", 1),
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
    before = {org_id: org for org_id, org in first.orgs.items()}
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
