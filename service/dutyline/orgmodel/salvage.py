"""What is left of a document once the parts its shape errors are in are cut out, so that its meaning can be checked
too: a rule pack whose first rule has `default: lots` still has its other rules' unknown posts reported, in the same
answer, instead of after the first is fixed.

A bad value is cut where it is (an optional key), and when the document still does not decode, the smallest list
item around what msgspec refuses (a rule, a post) is cut, until it decodes or nothing smaller than the whole is left.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from dutyline.orgmodel.source import Path

T = TypeVar("T")

_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[\.\.\.\]|\['((?:[^'\\]|\\.)*)'\]")
_AT = re.compile(r"`\$([^`]*)`")


@dataclass(frozen=True, slots=True)
class Salvaged:
    """The decoded rest of a document; `original` takes a path in it to the same place in the document as written;
    `cut_ids` are the ids of the list items cut out (references to them are not reported: their item's own error
    is)."""

    value: Any
    original: Callable[[Path], Path]
    cut_ids: frozenset[str]


def salvage(data: Any, bad: Iterable[Path], kind: type[T], rounds: int = 200) -> Salvaged | None:
    """`data` as a `kind`, without the values at `bad` (paths into `data`) and the list items msgspec refuses;
    None when what it refuses is in no list."""
    work = copy.deepcopy(data)
    origin: dict[int, list[int]] = {}  # id of a list in `work` → the original position of each of its items
    cut: set[str] = set()

    def positions(items: list[Any]) -> list[int]:
        return origin.setdefault(id(items), list(range(len(items))))

    def drop(items: list[Any], at: int) -> None:
        item = items.pop(at)
        del positions(items)[at]
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            cut.add(item["id"])

    for path in sorted(bad, key=len, reverse=True):  # deepest first: a parent's cut takes its children with it
        node: Any = work
        for step, part in enumerate(path):
            last = step == len(path) - 1
            if isinstance(node, list) and isinstance(part, int):
                order = positions(node)
                if part not in order:
                    break
                at = order.index(part)
                if last:
                    drop(node, at)
                    break
                node = node[at]
            elif isinstance(node, dict) and part in node:
                if last:
                    del node[part]
                    break
                node = node[part]
            else:
                break
    for _ in range(rounds):
        try:
            value = msgspec.convert(work, kind)
        except msgspec.ValidationError as exc:
            place = _list_item(work, _refused_at(str(exc)))
            if place is None:
                return None
            drop(*place)
            continue
        return Salvaged(value, lambda path: _original(work, origin, path), frozenset(cut))
    return None


def _refused_at(message: str) -> list[str | int]:
    found = _AT.search(message)
    if found is None:
        return []
    out: list[str | int] = []
    for match in _PART.finditer(found.group(1)):
        key, index, quoted = match.groups()
        if key is not None:
            out.append(key)
        elif index is not None:
            out.append(int(index))
        elif quoted is not None:
            out.append(quoted)
        else:
            break  # `[...]`: a mapping's key msgspec does not name; the item around it is cut
    return out


def _list_item(work: Any, path: list[str | int]) -> tuple[list[Any], int] | None:
    """The innermost list along `path` and the position in it that `path` goes through."""
    node, found = work, None
    for part in path:
        if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            found = (node, part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and part in node:
            node = node[part]
        else:
            break
    return found


def _original(work: Any, origin: dict[int, list[int]], path: Path) -> Path:
    out: list[str | int] = []
    node = work
    for part in path:
        if isinstance(node, list) and isinstance(part, int):
            order = origin.get(id(node))
            out.append(order[part] if order is not None and 0 <= part < len(order) else part)
            node = node[part] if 0 <= part < len(node) else None
        else:
            out.append(part)
            node = node.get(part) if isinstance(node, dict) else None
    return tuple(out)
