"""The invalid-document corpus (tests/data/invalid/): each file is a small organisation with one kind of mistake,
and says what it expects where it is: a `# expect: CODE PATH [warning]` comment (several joined by `;`) on the
line each issue must be reported at. Every issue the validator finds must be expected, and every expected one
found, with its machine code, path and line: the codes are what the console and callers rely on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dutyline.errors import Invalid, IssueCode
from dutyline.orgmodel.validate import parse_organisation

CORPUS = Path(__file__).resolve().parents[1] / "data" / "invalid" / "orgs"
FILES = sorted(CORPUS.glob("*.yaml"))
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


def found(text: str, file: str) -> set[tuple[str, str, int, str]]:
    try:
        parsed = parse_organisation(text, file)
    except Invalid as exc:
        issues = exc.issues
    else:
        issues = list(parsed.warnings)
    return {(i.code.value, i.path, i.line, i.severity) for i in issues}


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
