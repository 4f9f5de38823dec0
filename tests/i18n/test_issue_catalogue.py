"""The console's issue catalogues (console/i18n/zh.json and en.json, `issue.*`): every issue code has a sentence in
both languages, every sentence can be filled from the parameters an issue of its code carries, and the browser's
renderer (console/js/i18n.js `renderIssue`) words an issue as the CLI's (dutyline.messages) does."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from dutyline.errors import PARAMS, IssueCode
from dutyline.messages import LANGUAGES, catalogue, render
from dutyline.orgmodel import shape
from tests.conftest import REPO
from tests.orgmodel.test_invalid_corpus import FILES, PACKS, issues_of, pack_issues_of

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _sentences(lang: str) -> dict[str, str]:
    return {k: v for k, v in catalogue(lang).items() if k.startswith("issue.") and not k.startswith("issue.param.")}


def _corpus_issues() -> list:
    out = []
    for file in FILES:
        out += issues_of(file.read_text(encoding="utf-8"), file.name)
    for file in PACKS:
        out += pack_issues_of(file.read_text(encoding="utf-8"), file.name)
    return out


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_issue_code_has_a_sentence_in_both_languages(lang: str) -> None:
    words = catalogue(lang)
    missing = [code.value for code in IssueCode if f"issue.{code.value}" not in words]
    assert not missing, f"{lang}.json has no issue.<code> for {missing}"


def test_the_two_catalogues_have_the_same_issue_keys_and_placeholders() -> None:
    zh, en = ({k: v for k, v in catalogue(lang).items() if k.startswith("issue.")} for lang in ("zh", "en"))
    assert set(zh) == set(en)
    for key in en:
        assert set(_PLACEHOLDER.findall(zh[key])) == set(_PLACEHOLDER.findall(en[key])), key


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_code_renders_from_its_params_leaving_no_placeholder(lang: str) -> None:
    words = catalogue(lang)
    codes = {code.value: code for code in IssueCode}
    for key, sentence in _sentences(lang).items():
        code, _, case = key.removeprefix("issue.").partition(".")
        if code not in codes:
            continue  # issue.or, issue.suggestion, issue.severity.*
        declared = PARAMS.get(codes[code], ())
        if not case:
            assert set(_PLACEHOLDER.findall(sentence)) <= set(declared), (key, declared)
        # every name the sentence quotes, filled with a value that is no placeholder itself
        params = {name: f"‹{name}›" for name in {*declared, *_PLACEHOLDER.findall(sentence)}}
        params |= {"case": case} if case else {}
        text = render(words, code, params)
        assert text is not None, key
        assert not re.search(r"\{\w+\}", text), (key, text)


def test_the_words_of_shape_tokens_are_the_english_catalogues() -> None:
    words = catalogue("en")
    tables = {
        "expected": shape.EXPECTED,
        "got_type": shape.GOT_TYPE,
        "format": shape.FORMAT,
        "bound": shape.BOUND,
        "unit": shape.UNIT,
    }
    for name, table in tables.items():
        for token, english in table.items():
            assert words.get(f"issue.param.{name}.{token}") == english, (name, token)
        assert all(f"issue.param.{name}.{token}" in catalogue("zh") for token in table), name


def test_an_issue_is_worded_in_chinese_without_the_english_sentence() -> None:
    [wrong] = [
        i
        for i in pack_issues_of(
            (PACKS[0].parent / "default_is_text_and_an_unknown_post.yaml").read_text(encoding="utf-8"), "p.yaml"
        )
        if i.code == IssueCode.WRONG_TYPE
    ]
    assert render(catalogue("zh"), wrong.code.value, wrong.params) == "`default` 应为数字,实际是文本 'lots'"


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the console's renderer")
def test_the_console_words_every_corpus_issue_as_the_cli_does() -> None:
    issues = [{"code": i.code.value, "params": i.params} for i in _corpus_issues()]
    assert issues
    script = """
import { renderIssue } from './console/js/i18n.js';
import fs from 'fs';
const input = JSON.parse(fs.readFileSync(0, 'utf8'));
const out = {};
for (const lang of ['zh', 'en']) {
  const words = JSON.parse(fs.readFileSync(`./console/i18n/${lang}.json`, 'utf8'));
  out[lang] = input.map((i) => renderIssue(words, i.code, i.params));
}
process.stdout.write(JSON.stringify(out));
"""
    result = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        input=json.dumps(issues),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    browser = json.loads(result.stdout)
    for lang in LANGUAGES:
        cli = [render(catalogue(lang), i["code"], i["params"]) for i in issues]
        assert browser[lang] == cli, lang
