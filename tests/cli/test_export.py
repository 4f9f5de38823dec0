"""`dutyline export` is the inverse of `dutyline import`: everything to a folder laid out like the repository's
`policies/` and `rules/`, a document imported from a file given back as written, and the versions it prints the
same as the admin API's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.admin_client import Client, create_admin
from tests.conftest import REPO, run_cli
from tests.live import LiveServer

ORG = "sales_company"
SEED_FILES = sorted([*(REPO / "policies" / "orgs").glob("*.yaml"), *(REPO / "rules").glob("*.yaml")])


@pytest.fixture
def seeded(database_url: str) -> Iterator[tuple[LiveServer, Client]]:
    """A server that seeded its database from the repository, and its first system admin."""
    token = create_admin(database_url)
    server = LiveServer(database_url, seed_dir=str(REPO / "policies"))
    try:
        server.wait_ready()
        yield server, Client(server, token)
    finally:
        server.stop()


def _exported(folder: Path) -> list[Path]:
    return sorted([*(folder / "policies" / "orgs").glob("*.yaml"), *(folder / "rules").glob("*.yaml")])


def test_export_all_of_the_seeded_database_gives_back_the_seed_files_byte_for_byte(
    seeded: tuple[LiveServer, Client], tmp_path: Path
) -> None:
    server, _ = seeded
    run_cli("export", "--all", str(tmp_path), database_url=server.database_url, check=True)
    exported = _exported(tmp_path)
    assert [p.relative_to(tmp_path) for p in exported] == [p.relative_to(REPO) for p in SEED_FILES]
    for seed, copy in zip(SEED_FILES, exported):
        assert copy.read_bytes() == seed.read_bytes(), f"{copy} differs from {seed}"
    one = run_cli("export", ORG, "--pack", ORG, database_url=server.database_url, check=True)
    assert one.stdout == (REPO / "rules" / f"{ORG}.yaml").read_text(encoding="utf-8"), "a rule pack is exported alone"
    assert run_cli("export", ORG, "--pack", "nowhere", database_url=server.database_url).returncode == 1


def test_after_a_structural_edit_the_export_imports_back_to_the_same_policy(
    seeded: tuple[LiveServer, Client], tmp_path: Path
) -> None:
    server, root = seeded
    path = f"/admin/orgs/{ORG}/posts/sales_representative"
    read = root.get(path)
    edited = root.patch(path, etag=read.headers["etag"], json={"headcount": 7})
    assert edited.status_code == 200, edited.text
    run_cli("export", "--all", str(tmp_path), database_url=server.database_url, check=True)
    text = (tmp_path / "policies" / "orgs" / f"{ORG}.yaml").read_text(encoding="utf-8")
    assert text != (REPO / "policies" / "orgs" / f"{ORG}.yaml").read_text(encoding="utf-8"), "edited: canonical YAML"
    assert (tmp_path / "rules" / f"{ORG}.yaml").read_bytes() == (REPO / "rules" / f"{ORG}.yaml").read_bytes()
    again = run_cli(
        "import", str(tmp_path / "policies"), str(tmp_path / "rules"), database_url=server.database_url, check=True
    )
    results = [line for line in again.stdout.splitlines() if "revision" in line]
    assert len(results) == len(SEED_FILES) and all("unchanged" in line for line in results), again.stdout
    from_db = run_cli("compile", ORG, database_url=server.database_url, check=True).stdout.splitlines()[1:]
    from_file = run_cli("compile", str(tmp_path / "policies" / "orgs" / f"{ORG}.yaml"), check=True).stdout.splitlines()[
        1:
    ]
    assert from_db == from_file and from_db


def test_the_command_line_prints_the_revision_and_policy_version_the_api_gives(
    seeded: tuple[LiveServer, Client],
) -> None:
    server, root = seeded
    before = root.get(f"/admin/orgs/{ORG}").json()
    path = f"/admin/orgs/{ORG}/posts/sales_representative"
    saved = root.patch(path, etag=root.get(path).headers["etag"], json={"headcount": 8})
    assert saved.status_code == 200, saved.text
    after = root.get(f"/admin/orgs/{ORG}").json()
    assert (after["revision"], after["policy_version"]) == (before["revision"] + 1, before["policy_version"] + 1)
    assert (saved.json()["revision"], saved.json()["policy_version"]) == (after["revision"], after["policy_version"])
    header = run_cli("compile", ORG, database_url=server.database_url, check=True).stdout.splitlines()[0]
    shown = re.search(r"revision (\d+), policy version (\d+)", header)
    assert shown is not None, header
    assert (int(shown[1]), int(shown[2])) == (after["revision"], after["policy_version"])
