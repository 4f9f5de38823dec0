"""Issues in the reader's language: the console's catalogues (console/i18n/<lang>.json) word an issue from its code
and parameters, as console/js/i18n.js `issueText` does in the browser, so that `dutyline validate --lang zh` and the
Chinese console say the same thing.

`issue.<code>.<case>` (when the issue has a `case`) or else `issue.<code>` is the sentence; a parameter with a table
(`issue.param.<name>.<token>`) is a token or tokens joined by `|`, worded from it; a `suggestion` adds
`issue.suggestion`. An issue whose sentence needs a parameter it lacks keeps its (English) `message`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache

from dutyline.content import content_root
from dutyline.errors import Issue

LANGUAGES = ("zh", "en")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@cache
def catalogue(lang: str) -> Mapping[str, str]:
    """The console's dictionary of `lang` (zh or en)."""
    if lang not in LANGUAGES:
        raise ValueError(f"no catalogue for {lang!r}: one of {', '.join(LANGUAGES)}")
    path = content_root() / "console" / "i18n" / f"{lang}.json"
    loaded: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def template(words: Mapping[str, str], code: str, params: Mapping[str, str]) -> str | None:
    """The sentence of an issue of `code` with `params`, or None when the catalogue has none."""
    case = params.get("case")
    found = words.get(f"issue.{code}.{case}") if case else None
    return found if found is not None else words.get(f"issue.{code}")


def word(words: Mapping[str, str], name: str, value: str) -> str:
    """A parameter as the catalogue words it: tokens through `issue.param.<name>.*`, anything else as it is."""
    parts = value.split("|")
    if not any(f"issue.param.{name}.{part}" in words for part in parts):
        return value
    return words.get("issue.or", " or ").join(words.get(f"issue.param.{name}.{part}", part) for part in parts)


def render(words: Mapping[str, str], code: str, params: Mapping[str, str]) -> str | None:
    """An issue's sentence from a catalogue, or None when it has none or lacks a parameter the sentence quotes."""
    sentence = template(words, code, params)
    if sentence is None or any(name not in params for name in _PLACEHOLDER.findall(sentence)):
        return None
    text = _PLACEHOLDER.sub(lambda m: word(words, m.group(1), params[m.group(1)]), sentence).rstrip()
    if params.get("suggestion"):
        text += words.get("issue.suggestion", "").replace("{suggestion}", params["suggestion"])
    return text


def in_language(issue: Issue, lang: str) -> str:
    """What is wrong, in `lang`: the catalogue's sentence, or the issue's message where it has none."""
    return render(catalogue(lang), issue.code.value, issue.params) or issue.message


def located(issue: Issue, lang: str) -> str:
    """One line for a terminal: file:line, severity, the words in `lang`, and the path."""
    where = f"{issue.file}:{issue.line}" if issue.line else issue.file
    at = f" ({issue.path})" if issue.path else ""
    severity = catalogue(lang).get(f"issue.severity.{issue.severity}", issue.severity)
    return f"{where}: {severity}: {in_language(issue, lang)}{at}"
