"""Reading YAML while remembering where every value came from, so that errors can name the line."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import ScalarNode

from dutyline.errors import Invalid, Issue, IssueCode
from dutyline.expressions import is_finite_number

Path = tuple[str | int, ...]

# A bound on aliases stops "billion laughs" documents before they expand.
_MAX_ALIASES = 100
# The default bound on the scalars a document holds once its aliases are expanded (DUTYLINE_MAX_YAML_SCALARS).
# The largest seed organisation has 2,135 and a 1 MiB body of ordinary YAML about 60,000; a scalar counts once
# per started 100 characters, so that an alias of one long text (120 KB of YAML used to expand to 500 MB) counts
# for what it repeats: the bound also caps the text aliases can make at about 10 million characters.
MAX_SCALARS = 100_000
_SCALAR_UNIT = 100
# ruamel's scanner takes time quadratic in the depth of flow collections (`[[[[…`: 2,000 levels cost 10 s of
# CPU), so deeper ones are refused before parsing. No org file or rule pack nests more than a few levels.
_MAX_FLOW_DEPTH = 64
_FLOW = re.compile(r"[\[\]{}]")


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def field_name(path: Path) -> str:
    """The field an issue is about, as a person names it: the last key, with the list positions after it
    (`default`, `actions[3]`); `document` for the whole."""
    last = max((i for i, part in enumerate(path) if isinstance(part, str)), default=-1)
    if last < 0:
        return "document" if not path else "".join(f"[{p}]" for p in path)
    return str(path[last]) + "".join(f"[{p}]" for p in path[last + 1 :])


@dataclass(slots=True)
class SourceMap:
    """Line numbers (1-based) of every key and list item of one loaded file (0: not known). For a JSON text
    (`json_text`) they are found on first use, only on the way to an error."""

    file: str
    lines: dict[Path, int] = field(default_factory=dict)
    json_text: str | None = None

    # Set on the map of a salvaged document (`orgmodel.salvage`): its paths, after parts were cut out, back to the
    # places in the text.
    remap: Callable[[Path], Path] | None = None

    def line(self, path: Path) -> int:
        """The line of `path`, or of its nearest ancestor that has one (0 when nothing has one)."""
        return self._line(self.remap(path) if self.remap else tuple(path))

    def _line(self, path: Path) -> int:
        lines = self.mapped()
        while path:
            if path in lines:
                return lines[path]
            path = path[:-1]
        return lines.get((), 0)

    def mapped(self) -> dict[Path, int]:
        """Every line known, the JSON text's read now if it has not been."""
        if self.json_text is not None:
            self.lines.update(json_lines(self.json_text))
            self.json_text = None
        return self.lines

    def issue(
        self,
        path: Path,
        message: str,
        severity: str = "error",
        code: IssueCode = IssueCode.INVALID,
        params: dict[str, str] | None = None,
    ) -> Issue:
        where = self.remap(path) if self.remap else tuple(path)
        return Issue(self.file, self._line(where), format_path(where), message, severity, code, params or {})  # type: ignore[arg-type]

    def moved(self, prefix: Path) -> SourceMap:
        """This map for the same text placed at `prefix` of a larger document (an entity sent alone, checked
        inside its organisation): every path under `prefix`, and nothing else known."""
        return SourceMap(self.file, {(*prefix, *path): line for path, line in self.mapped().items()})

    def under(self, prefix: Path) -> SourceMap:
        """The map of the value at `prefix` of this text (a rule pack sent as `{name, pack}`), its paths from there."""
        size = len(prefix)
        return SourceMap(
            self.file, {path[size:]: line for path, line in self.mapped().items() if path[:size] == tuple(prefix)}
        )


_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+')


def json_lines(text: str) -> dict[Path, int]:
    """The line of every key and list item of a JSON text (as `load_yaml` finds them in YAML): a scan of its
    tokens, for the 400 of a JSON body. Text that is not JSON gives what could be read of it."""
    lines: dict[Path, int] = {}
    # frames: [path, "{" or "[", the next item's index, the current key, whether a key is expected]
    stack: list[list[Any]] = []
    line, last = 1, 0
    for match in _JSON_TOKEN.finditer(text):
        start = match.start()
        line += text.count("\n", last, start)
        last = start
        token = match.group()
        top = stack[-1] if stack else None
        if token in ("}", "]"):
            if stack:
                stack.pop()
            continue
        if token == ":":
            continue
        if token == ",":
            if top is not None:
                if top[1] == "[":
                    top[2] += 1
                else:
                    top[4] = True
            continue
        if top is not None and top[1] == "{" and top[4]:  # a key
            try:
                key = str(json.loads(token))
            except ValueError:
                key = token
            top[3], top[4] = key, False
            lines.setdefault((*top[0], key), line)
            continue
        if top is None:
            path: Path = ()
        elif top[1] == "[":
            path = (*top[0], top[2])
        else:
            path = (*top[0], top[3])
        lines.setdefault(path, line)
        if token in ("{", "["):
            stack.append([path, token, 0, None, token == "{"])
    return lines


def load_yaml(text: str, file: str, max_scalars: int = MAX_SCALARS) -> tuple[Any, SourceMap]:
    """Parse YAML text into plain Python values (dates as ISO strings) and their source map.

    Raises `Invalid` with the line of the problem for syntax errors, duplicate keys and alias bombs: a node
    reused more than 100 times, or aliases that make the document hold more than `max_scalars` scalars (counted
    as the document is composed, before anything of the expanded data is built).
    """
    too_deep = _flow_too_deep(text)
    if too_deep:
        message = f"invalid YAML: nested too deeply (more than {_MAX_FLOW_DEPTH} levels of [ ] or {{ }})"
        raise Invalid.of([Issue(file, too_deep, "", message, code=IssueCode.TOO_LARGE, params={"detail": message})])
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    yaml.Composer = _CountingComposer
    yaml.dutyline_max_scalars = max_scalars  # type: ignore[attr-defined]  # read by _CountingComposer
    try:
        root = yaml.load(text)
    except _TooManyScalars as exc:
        message = (
            f"YAML aliases expand the document past {max_scalars:,} scalars (DUTYLINE_MAX_YAML_SCALARS; a scalar "
            f"counts once per {_SCALAR_UNIT} characters): refused before expanding it"
        )
        raise Invalid.of(
            [Issue(file, exc.line, "", message, "error", IssueCode.TOO_LARGE, {"detail": message})]
        ) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        raise Invalid.of([_syntax(file, line, str(problem))]) from None
    except YAMLError as exc:
        raise Invalid.of([_syntax(file, 1, str(exc))]) from None
    except RecursionError:  # the parser recurses once per level of nesting
        raise Invalid.of([_too_deep(file)]) from None
    except ValueError as exc:  # an unquoted scalar YAML reads as a date or time that cannot be (2026-13-01)
        raise Invalid.of([_syntax(file, _impossible_moment_line(text), f"not a real date or time ({exc})")]) from None
    source = SourceMap(file)
    source.lines[()] = 1
    counter = _AliasCounter()
    try:
        return _plain(root, (), source, counter, file), source
    except RecursionError:
        raise Invalid.of([_too_deep(file)]) from None


_MOMENT = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[Tt ]+(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?)?")


def _impossible_moment_line(text: str) -> int:
    """The first line holding a date or date-time that cannot be (the YAML constructor does not say where)."""
    for number, line in enumerate(text.splitlines(), start=1):
        for found in _MOMENT.finditer(line):
            year, month, day, hour, minute, second = (int(g) if g else 0 for g in found.groups())
            try:
                dt.datetime(year, month, day, hour, minute, second)
            except ValueError:
                return number
    return 1


def _syntax(file: str, line: int, problem: str) -> Issue:
    return Issue(file, line, "", f"invalid YAML: {problem}", "error", IssueCode.SYNTAX, {"detail": problem})


def _too_deep(file: str) -> Issue:
    message = "invalid YAML: nested too deeply"
    return Issue(file, 1, "", message, "error", IssueCode.TOO_LARGE, {"detail": message})


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


class _TooManyScalars(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class _CountingComposer(Composer):
    """ruamel's composer, counting the scalars of the document as its aliases expand it.

    An alias is composed as the node it names (no copy); its weight is that node's expanded count, kept for
    anchored nodes only, so counting costs nothing per alias however deep the aliases nest. The count stops the
    load at the alias (or scalar) that passes the bound, naming its line, before construction builds anything."""

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self._used = 0
        self._weights: dict[int, int] = {}
        self._bound = getattr(loader, "dutyline_max_scalars", MAX_SCALARS)

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            node = super().compose_node(parent, index)
            self._add(self._weights.get(id(node), 1), event.start_mark.line + 1)
            return node
        before = self._used
        node = super().compose_node(parent, index)
        if isinstance(node, ScalarNode):
            self._add(max(1, -(-len(node.value) // _SCALAR_UNIT)), event.start_mark.line + 1)
        if getattr(event, "anchor", None) is not None:
            self._weights[id(node)] = self._used - before
        return node

    def _add(self, weight: int, line: int) -> None:
        self._used += weight
        if self._used > self._bound:
            raise _TooManyScalars(line)


def check_numbers(data: Any, source: SourceMap) -> None:
    """`Invalid` naming the place (path, and line for YAML) of every NaN or infinite number in `data`: a policy
    never means one, JSON cannot hold one (it would be stored as null), and a limit that is NaN compares false
    with everything. The places are looked for (without recursion) only when the C encoder finds one."""
    try:
        json.dumps(data, allow_nan=False, check_circular=False)
        return
    except (ValueError, TypeError, RecursionError):
        pass  # a non-finite number somewhere (or a value JSON does not know, or deep nesting): look at each
    issues: list[Issue] = []
    stack: list[tuple[Any, Path]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, float) and not is_finite_number(value):
            issues.append(
                source.issue(
                    path,
                    f"{value} is not a number a policy may hold: give a finite number",
                    code=IssueCode.NOT_FINITE,
                    params={"field": field_name(path), "got": str(value)},
                )
            )
        elif isinstance(value, dict):
            stack.extend((child, (*path, str(key))) for key, child in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((child, (*path, index)) for index, child in reversed(list(enumerate(value))))
    if issues:
        raise Invalid.of(issues)


class _AliasCounter:
    def __init__(self) -> None:
        self.seen: dict[int, int] = {}

    def visit(self, node: Any, file: str) -> None:
        key = id(node)
        self.seen[key] = self.seen.get(key, 0) + 1
        if self.seen[key] > _MAX_ALIASES:
            detail = f"a node is reused more than {_MAX_ALIASES} times through YAML aliases"
            raise Invalid.of([Issue(file, 1, "", detail, "error", IssueCode.TOO_LARGE, {"detail": detail})])


def _plain(node: Any, path: Path, source: SourceMap, counter: _AliasCounter, file: str) -> Any:
    if isinstance(node, CommentedMap):
        counter.visit(node, file)
        out: dict[str, Any] = {}
        for key, value in node.items():
            child = (*path, str(key))
            with contextlib.suppress(KeyError, TypeError):
                source.lines[child] = node.lc.key(key)[0] + 1
            out[str(key)] = _plain(value, child, source, counter, file)
        return out
    if isinstance(node, CommentedSeq):
        counter.visit(node, file)
        items = []
        for index, value in enumerate(node):
            child = (*path, index)
            with contextlib.suppress(KeyError, TypeError):
                source.lines[child] = node.lc.item(index)[0] + 1
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
