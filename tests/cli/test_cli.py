"""The `dutyline` command line, run as a real child process."""

from __future__ import annotations

from pathlib import Path

from dutyline import __version__
from tests.conftest import REPO, run_cli

SALES = REPO / "policies" / "orgs" / "sales_company.yaml"


def test_validate_passes_on_the_policies_folder() -> None:
    result = run_cli("validate")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok: 7 organisation(s), 7 rule pack(s), 7 decision table(s), 7 rule test table(s)"


def test_validate_reports_every_error_with_file_and_line_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = SALES.read_text(encoding="utf-8")
    text = text.replace("reports_to: department_head", "reports_to: ceo", 1).replace(
        "actions: [view, contact]}", "actions: [view, call]}", 1
    )
    bad.write_text(text, encoding="utf-8")
    result = run_cli("validate", str(bad))
    assert result.returncode == 1
    lines = text.splitlines()
    ceo = next(i for i, line in enumerate(lines, 1) if "reports_to: ceo" in line)
    call = next(i for i, line in enumerate(lines, 1) if "actions: [view, call]" in line)
    assert f"{bad}:{ceo}: error: unknown superior post 'ceo'" in result.stderr
    assert f"{bad}:{call}: error: action 'call' is not in the catalogue for 'customer'" in result.stderr
    assert "2 error(s)" in result.stderr


def test_validate_words_every_issue_of_a_pack_at_its_line_in_the_language_asked(tmp_path: Path) -> None:
    """A limit whose `default` is text and a mistyped post in another rule: both, each at its own line, in the
    console's words: English by default and with --lang en, Chinese with --lang zh."""
    pack = REPO / "tests" / "data" / "invalid" / "rules" / "default_is_text_and_an_unknown_post.yaml"
    lines = pack.read_text(encoding="utf-8").splitlines()
    lots = next(i for i, line in enumerate(lines, 1) if "default: lots" in line)
    typo = next(i for i, line in enumerate(lines, 1) if "sales_representativ]" in line)
    english = run_cli("validate", str(SALES), str(pack))
    assert english.returncode == 1
    assert f"{pack}:{lots}: error: `default` must be a number, got the text 'lots' (rules[0].default)" in english.stderr
    assert (
        f"{pack}:{typo}: error: unknown post 'sales_representativ' in 'sales_company'; did you mean " in english.stderr
    )
    assert (
        run_cli("validate", "--lang", "en", str(SALES), str(pack)).stderr.splitlines()[:2]
        == (english.stderr.splitlines()[:2])
    )
    chinese = run_cli("validate", "--lang", "zh", str(SALES), str(pack))
    assert chinese.returncode == 1
    assert f"{pack}:{lots}: 错误: `default` 应为数字,实际是文本 'lots' (rules[0].default)" in chinese.stderr
    assert f"{pack}:{typo}: 错误: 机构 `sales_company` 中没有岗位 `sales_representativ`;是否应为 " in chinese.stderr


def test_compile_prints_casbin_lines_for_a_file() -> None:
    result = run_cli("compile", str(SALES), check=True)
    assert "p, post:sales_representative, sales_company, budget, approve, deny" in result.stdout
    assert "g, person:zhao_lei, post:department_head, sales_company" in result.stdout
    outside = run_cli("compile", str(SALES), "--at", "2026-08-01T00:00", check=True)
    assert "g, person:zhao_lei, post:department_head, sales_company" not in outside.stdout


def test_import_export_explain_against_the_database(database_url: str, tmp_path: Path) -> None:
    imported = run_cli("import", str(REPO / "policies" / "orgs"), database_url=database_url, check=True)
    assert "sales_company: revision 1, policy version " in imported.stdout
    exported = tmp_path / "sales.yaml"
    run_cli("export", "sales_company", "-o", str(exported), database_url=database_url, check=True)
    assert run_cli("validate", str(exported)).returncode == 0
    explained = run_cli(
        "explain",
        "sales_company",
        "zhao_lei",
        "sales_strategy",
        "approve",
        "--at",
        "2026-07-05T10:00",
        database_url=database_url,
        check=True,
    )
    assert explained.stdout.startswith("ALLOW (granted): zhao_lei approve sales_strategy in sales_company")
    assert "顶替,2026-07-01 至 2026-07-14" in explained.stdout
    assert "销售策略制定" in explained.stdout
    denied = run_cli(
        "explain",
        "sales_company",
        "zhao_lei",
        "sales_strategy",
        "approve",
        "--at",
        "2026-08-01",
        database_url=database_url,
        check=True,
    )
    assert denied.stdout.startswith("DENY")


def test_import_of_an_invalid_file_exits_1_and_stores_nothing(database_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        SALES.read_text(encoding="utf-8").replace("department: business_dept", "department: nowhere", 1),
        encoding="utf-8",
    )
    result = run_cli("import", str(REPO / "policies" / "orgs" / "hotel.yaml"), str(bad), database_url=database_url)
    assert result.returncode == 1
    assert "unknown department 'nowhere'" in result.stderr
    assert run_cli("export", "hotel", database_url=database_url).returncode == 1


def test_explain_of_an_unknown_organisation_is_a_clear_error(database_url: str) -> None:
    result = run_cli("explain", "nowhere", "someone", "thing", "do", database_url=database_url)
    assert result.returncode == 1
    assert "organisation 'nowhere' not found" in result.stderr


def test_dutyline_test_runs_every_decision_table() -> None:
    result = run_cli("test", check=True)
    assert result.stdout.strip().endswith(" passed, 0 failed")


def test_the_command_line_says_its_version_and_shows_each_commands_first_line_whole() -> None:
    version = run_cli("--version", check=True)
    assert version.stdout.strip() == f"dutyline, version {__version__}"
    helped = run_cli("-h", check=True).stdout
    assert "Print the Casbin policy lines of ORG (an id in the database, or a YAML file)." in helped
    assert "Admin users and API tokens (the first system admin is made here)." in helped
