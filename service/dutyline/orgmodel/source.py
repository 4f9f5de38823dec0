"""Reading YAML while remembering where every value came from, so that errors can name the line."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from dutyline.errors import Invalid, Issue

Path = tuple[str | int, ...]

# A bound on aliases stops "billion laughs" documents before they expand.
_MAX_ALIASES = 100
# ruamel's scanner takes time quadratic in the depth of flow collections (`[[[[…`: 2,000 levels cost 10 s of
# CPU), so deeper ones are refused before parsing. No org file or rule pack nests more than a few levels.
_MAX_FLOW_DEPTH = 64
_FLOW = re.compile(r"[\[\]{}]")


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass(slots=True)
class SourceMap:
    """Line numbers (1-based) of every key and list item of one loaded file."""

    file: str
    lines: dict[Path, int] = field(default_factory=dict)

    def line(self, path: Path) -> int:
        """The line of `path`, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)

    def issue(self, path: Path, message: str, severity: str = "error") -> Issue:
        return Issue(self.file, self.line(path), format_path(path), message, severity)  # type: ignore[arg-type]


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse YAML text into plain Python values (dates as ISO strings) and their source map.

    Raises `Invalid` with the line of the problem for syntax errors, duplicate keys and alias bombs.
    """
    too_deep = _flow_too_deep(text)
    if too_deep:
        message = f"invalid YAML: nested too deeply (more than {_MAX_FLOW_DEPTH} levels of [ ] or {{ }})"
        raise Invalid(f"{file}: invalid YAML", [Issue(file, too_deep, "", message)])
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        root = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        raise Invalid(f"{file}: invalid YAML", [Issue(file, line, "", f"invalid YAML: {problem}")]) from None
    except YAMLError as exc:
        raise Invalid(f"{file}: invalid YAML", [Issue(file, 1, "", f"invalid YAML: {exc}")]) from None
    except RecursionError:  # the parser recurses once per level of nesting
        raise Invalid(f"{file}: invalid YAML", [Issue(file, 1, "", "invalid YAML: nested too deeply")]) from None
    source = SourceMap(file)
    source.lines[()] = 1
    counter = _AliasCounter()
    try:
        return _plain(root, (), source, counter, file), source
    except RecursionError:
        raise Invalid(f"{file}: invalid YAML", [Issue(file, 1, "", "invalid YAML: nested too deeply")]) from None


def _flow_too_deep(text: str) -> int:
    """The line where flow brackets first nest deeper than allowed, or 0. Brackets inside quoted text count
    too: a false alarm needs more than 64 unclosed ones, which no real document has."""
    depth = 0
    for match in _FLOW.finditer(text):
        if match.group() in "[{":
            depth += 1
            if depth > _MAX_FLOW_DEPTH:
                return text.count("\n", 0, match.start()) + 1
        elif depth:
            depth -= 1
    return 0


class _AliasCounter:
    def __init__(self) -> None:
        self.seen: dict[int, int] = {}

    def visit(self, node: Any, file: str) -> None:
        key = id(node)
        self.seen[key] = self.seen.get(key, 0) + 1
        if self.seen[key] > _MAX_ALIASES:
            raise Invalid(
                f"{file}: too many aliases",
                [Issue(file, 1, "", f"a node is reused more than {_MAX_ALIASES} times through YAML aliases")],
            )


def _plain(node: Any, path: Path, source: SourceMap, counter: _AliasCounter, file: str) -> Any:
    if isinstance(node, CommentedMap):
        counter.visit(node, file)
        out: dict[str, Any] = {}
        for key, value in node.items():
            child = (*path, str(key))
            try:
                source.lines[child] = node.lc.key(key)[0] + 1
            except (KeyError, TypeError):
                pass
            out[str(key)] = _plain(value, child, source, counter, file)
        return out
    if isinstance(node, CommentedSeq):
        counter.visit(node, file)
        items = []
        for index, value in enumerate(node):
            child = (*path, index)
            try:
                source.lines[child] = node.lc.item(index)[0] + 1
            except (KeyError, TypeError):
                pass
            items.append(_plain(value, child, source, counter, file))
        return items
    if isinstance(node, dt.datetime):
        return node.replace(tzinfo=None).isoformat() if node.tzinfo is None else node.isoformat()
    if isinstance(node, dt.date):
        return node.isoformat()
    if isinstance(node, str):
        return str(node)
    if isinstance(node, float):  # ruamel's ScalarFloat, which msgspec does not take for a float
        return float(node)
    if isinstance(node, int) and not isinstance(node, bool):  # ScalarInt (hex, octal, underscores)
        return int(node)
    return node
