"""The invalid-document corpus (tests/data/invalid/): each file is a small organisation (orgs/) or a rule pack for
policies/orgs/sales_company.yaml (rules/) with one kind of mistake, or several at once, and says what it expects
where it is: a `# expect: CODE PATH [warning]` comment (several joined by `;`) on the line each issue must be reported
at. Every issue the validator finds must be expected, and every expected one found, with its machine code, path and
line: the codes are what the console and callers rely on. Every issue found is worded by both of the console's
catalogues from its code and parameters, the English one in the words of its message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dutyline.errors import Invalid, Issue, IssueCode
from dutyline.messages import catalogue, render
from dutyline.orgmodel.source import check_numbers, load_yaml
from dutyline.orgmodel.validate import parse_organisation
from dutyline.rulemodel.validate import check_pack
from dutyline.services.sources import engine_check
from tests.conftest import REPO

CORPUS = Path(__file__).resolve().parents[1] / "data" / "invalid" / "orgs"
FILES = sorted(CORPUS.glob("*.yaml"))
PACKS = sorted((CORPUS.parent / "rules").glob("*.yaml"))
PACKS_ORG = parse_organisation(
    (REPO / "policies" / "orgs" / "sales_company.yaml").read_text(encoding="utf-8"), "sales_company.yaml"
).organisation
_EXPECT = re.compile(r"#\s*expect:\s*(.+)$")


def expected(text: str) -> set[tuple[str, str, int, str]]:
    out = set()
    for number, line in enumerate(text.splitlines(), 1):
        found = _EXPECT.search(line)
        if found is None:
            continue
        for item in re.sub(r"\(.*?\)", "", found.group(1)).split(";"):  # (a note in parentheses is for people)
            code, *rest = item.split()
            severity = "warning" if rest and rest[-1] == "warning" else "error"
            path = rest[0] if rest and rest[0] != "warning" else ""
            out.add((code, path, number, severity))
    return out


def issues_of(text: str, file: str) -> list[Issue]:
    try:
        parsed = parse_organisation(text, file)
    except Invalid as exc:
        return exc.issues
    return list(parsed.warnings)


def pack_issues_of(text: str, file: str) -> list[Issue]:
    """As `dutyline validate` checks a rule pack beside its organisation."""
    try:
        data, source = load_yaml(text, file)
        check_numbers(data, source)
        return list(check_pack(data, source, PACKS_ORG, engine_check).warnings)
    except Invalid as exc:
        return exc.issues


def found(text: str, file: str) -> set[tuple[str, str, int, str]]:
    return {(i.code.value, i.path, i.line, i.severity) for i in issues_of(text, file)}


def test_the_corpus_has_a_file_for_every_kind_of_document_problem() -> None:
    assert len(FILES) >= 15
    codes = {code for f in FILES for code, *_ in expected(f.read_text(encoding="utf-8"))}
    assert all(c in {m.value for m in IssueCode} for c in codes), codes
    assert len(codes) >= 15, codes


@pytest.mark.parametrize("file", FILES, ids=[f.stem for f in FILES])
def test_each_invalid_document_gets_exactly_the_issues_it_expects(file: Path) -> None:
    text = file.read_text(encoding="utf-8")
    assert expected(text), f"{file.name} states no expectation"
    assert found(text, file.name) == expected(text)


@pytest.mark.parametrize("file", PACKS, ids=[f.stem for f in PACKS])
def test_each_invalid_rule_pack_gets_exactly_the_issues_it_expects(file: Path) -> None:
    text = file.read_text(encoding="utf-8")
    assert expected(text), f"{file.name} states no expectation"
    assert {(i.code.value, i.path, i.line, i.severity) for i in pack_issues_of(text, file.name)} == expected(text)


@pytest.mark.parametrize("file", FILES + PACKS, ids=[f"{f.parent.name}/{f.stem}" for f in FILES + PACKS])
def test_every_issue_is_worded_by_both_catalogues_the_english_as_its_message(file: Path) -> None:
    text = file.read_text(encoding="utf-8")
    issues = (pack_issues_of if file in PACKS else issues_of)(text, file.name)
    for issue in issues:
        for lang in ("zh", "en"):
            assert render(catalogue(lang), issue.code.value, issue.params) is not None, (lang, issue, issue.params)
        assert render(catalogue("en"), issue.code.value, issue.params) == issue.message, issue.params
