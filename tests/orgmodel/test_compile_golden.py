"""`dutyline compile` of each seed organisation, compared with its golden file (tests/data/compile/<org>.txt): a
change to the compiler, the Casbin model's vocabulary or a seed document shows as a diff a reviewer reads. After a
deliberate change, `pytest tests/orgmodel/test_compile_golden.py --regen-golden` rewrites them (review the diff)."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from click.testing import CliRunner

from dutyline.cli import main
from tests.conftest import REPO

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "compile"
SEEDS = sorted((REPO / "policies" / "orgs").glob("*.yaml"))


@pytest.mark.parametrize("seed", SEEDS, ids=[s.stem for s in SEEDS])
@pytest.mark.parametrize("at", [None, "2026-07-06T10:00"], ids=["every_assignment", "at_a_moment"])
def test_compile_output_matches_its_golden_file(seed: Path, at: str | None, request: pytest.FixtureRequest) -> None:
    args = ["compile", str(seed.relative_to(REPO)), *(["--at", at] if at else [])]
    result = CliRunner().invoke(main, args, env={"DUTYLINE_SEED_DIR": ""})
    assert result.exit_code == 0, result.output
    golden = GOLDEN / f"{seed.stem}{'' if at is None else '@' + at.replace(':', '')}.txt"
    if request.config.getoption("--regen-golden"):
        golden.write_text(result.output, encoding="utf-8")
        pytest.skip(f"rewrote {golden.name}")
    assert golden.exists(), f"no golden file {golden.name}: run with --regen-golden and review it"
    expected = golden.read_text(encoding="utf-8")
    if result.output != expected:
        diff = "".join(
            difflib.unified_diff(expected.splitlines(True), result.output.splitlines(True), golden.name, "now")
        )
        pytest.fail(f"`dutyline {' '.join(args)}` changed (--regen-golden if meant):\n{diff}")
