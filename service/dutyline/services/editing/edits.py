"""What an edit is, and what it proposes.

An edit names its target (`org`, `<collection>/<id>` such as `posts/teller`, or `rules/<pack>`) and a method
(create, put, patch, delete). `plan` is the one place that says what an edit makes of what is there now: the
whole document or the rule pack as proposed, before validation. Applying, deferring and previewing all start
from it, so that what a preview shows is what an approval or the scheduler will write.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from dutyline.errors import Invalid, Issue, NotFound
from dutyline.orgmodel.diff import ORG_COLLECTIONS
from dutyline.orgmodel.source import SourceMap
from dutyline.rulemodel.document import RulePack

Method = Literal["create", "put", "patch", "delete"]
REQUEST = "<request>"
_canonical = msgspec.json.Encoder(order="deterministic")


class EditKind(enum.Enum):
    """What an edit changes: the whole organisation document, one entity of it, or one rule pack."""

    ORGANISATION = "org"
    ENTITY = "entity"
    RULE_PACK = "rules"


def etag_of(value: Any) -> str:
    """The ETag of an editable object: a hash of its canonical JSON."""
    return '"' + hashlib.sha256(_canonical.encode(value)).hexdigest()[:32] + '"'


def org_etag(version: int, digest: str) -> str:
    """The ETag of a whole organisation document: its version and content."""
    return '"' + hashlib.sha256(f"{version}:{digest}".encode()).hexdigest()[:32] + '"'


def matches(if_match: str | None, etag: str | None) -> bool:
    if if_match is None or etag is None:
        return False
    for tag in if_match.split(","):
        tag = tag.strip().removeprefix("W/")
        if tag == "*" or tag == etag:
            return True
    return False


@dataclass(frozen=True, slots=True)
class Edit:
    """One change: `target` is `org`, `<collection>/<id>` (posts/teller) or `rules/<pack>`."""

    target: str
    method: Method
    value: Any = None
    source: SourceMap | None = None  # where the value's lines are
    # The YAML file the value was sent as (a whole document or rule pack, nothing else in it): kept with the
    # version it makes, so that an export gives the file back as written.
    text: str | None = None

    @property
    def kind(self) -> EditKind:
        if self.target == "org":
            return EditKind.ORGANISATION
        return EditKind.RULE_PACK if self.collection == "rules" else EditKind.ENTITY

    @property
    def collection(self) -> str:
        return self.target.split("/", 1)[0]

    @property
    def ident(self) -> str:
        return self.target.split("/", 1)[1] if "/" in self.target else ""

    def as_json(self) -> str:
        kept = {"target": self.target, "method": self.method, "value": self.value}
        if self.text is not None:
            kept["text"] = self.text
        return json.dumps(kept, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Edit:
        data = json.loads(text)
        return cls(data["target"], data["method"], data.get("value"), text=data.get("text"))

    def texts(self, key: str) -> dict[str, str] | None:
        """The file text to keep with the version this edit makes (`key`: the organisation's id or pack's name)."""
        return {key: self.text} if self.text is not None and self.method in ("create", "put") else None


@dataclass(slots=True)
class Current:
    """What the target of an edit is now, under the organisation's lock."""

    organisation: str
    document: dict[str, Any]
    version: int
    digest: str
    value: Any  # the entity, pack or document; None when it does not exist
    etag: str | None
    packs: dict[str, RulePack] = field(default_factory=dict)
    revision: int = 0  # the target document's own counter (the organisation's, or the rule pack's)
    target_version: int = 0  # the policy version that made the target's current revision
    source: str | None = None  # the target document's imported text, if it has one
    # rule packs this release cannot read, by name: why (an org chart change would not be served until fixed)
    unreadable: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Proposal:
    """What an edit proposes, not yet validated: the whole organisation document as it would be (`document`; None
    when the organisation is deleted), and for a rule pack edit the pack as it would be (`pack`, plain data; None
    when the pack is deleted) beside the document as it is."""

    edit: Edit
    document: dict[str, Any] | None
    pack: Any = None

    @property
    def kind(self) -> EditKind:
        return self.edit.kind

    @property
    def deletes(self) -> bool:
        return self.edit.method == "delete" and self.edit.kind is not EditKind.ENTITY


def plan(current: Current, edit: Edit) -> Proposal:
    """What `edit` makes of `current`: the one dispatch on the kind of edit. Raises `Invalid` for a value that
    cannot be what it replaces (an entity or document that is not an object, an entity whose id differs from the
    target's)."""
    if edit.kind is EditKind.RULE_PACK:
        if edit.method == "delete":
            return Proposal(edit, current.document, None)
        return Proposal(
            edit, current.document, merge(current.value, edit.value) if edit.method == "patch" else edit.value
        )
    if edit.kind is EditKind.ORGANISATION:
        if edit.method == "delete":
            return Proposal(edit, None)
        if edit.method == "create":  # validated whole, with its own id (the organisation does not exist yet)
            return Proposal(edit, edit.value)
        if not isinstance(edit.value, dict):
            raise Invalid("the organisation must be an object", [Issue(REQUEST, 0, "", "expected an object")])
        value = edit.value
        return Proposal(edit, {"id": current.organisation, **value} if "id" not in value else dict(value))
    if edit.collection not in ORG_COLLECTIONS:
        raise NotFound(f"no such collection {edit.collection!r}")
    document = json.loads(json.dumps(current.document))  # a deep copy: what is there now stays as it is
    _put_entity(document, edit)
    return Proposal(edit, document)


def _put_entity(document: dict[str, Any], edit: Edit) -> None:
    """The entity as the edit makes it, in place in `document` (deleted: removed)."""
    path = ORG_COLLECTIONS[edit.collection]
    holder = document
    for key in path[:-1]:
        holder = holder.setdefault(key, {})
    items: list[Any] = holder.setdefault(path[-1], [])
    index = next((i for i, e in enumerate(items) if isinstance(e, dict) and e.get("id") == edit.ident), None)
    if edit.method == "delete":
        if index is not None:
            del items[index]
        return
    value = merge(items[index] if index is not None else {}, edit.value) if edit.method == "patch" else edit.value
    if not isinstance(value, dict):
        raise Invalid(f"{describe(edit.target)} must be an object", [Issue(REQUEST, 0, "", "expected an object")])
    value = {"id": edit.ident, **value}
    if value["id"] != edit.ident:
        raise Invalid(
            f"id: the body's id {value['id']!r} differs from the URL's {edit.ident!r}; ids cannot be changed",
            [Issue(REQUEST, 0, "id", f"must be {edit.ident!r}")],
        )
    if index is None:
        items.append(value)
    else:
        items[index] = value


def merge(target: Any, patch: Any) -> Any:
    """JSON Merge Patch (RFC 7386): objects merge key by key, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


def entities(document: dict[str, Any], collection: str) -> list[Any]:
    holder = document
    path = ORG_COLLECTIONS[collection]
    for key in path[:-1]:
        holder = holder.get(key) or {}
    return list(holder.get(path[-1]) or [])


def find(document: dict[str, Any], collection: str, ident: str) -> Any:
    return next((e for e in entities(document, collection) if isinstance(e, dict) and e.get("id") == ident), None)


def describe(target: str) -> str:
    if target == "org":
        return "the organisation"
    collection, _, ident = target.partition("/")
    return f"{_SINGULAR.get(collection, collection)} {ident!r}"


_SINGULAR = {
    "departments": "department",
    "posts": "post",
    "people": "person",
    "resources": "resource",
    "groups": "group",
    "separation_of_duties": "separation-of-duties rule",
    "rules": "rule pack",
}


def verb(method: Method) -> str:
    return {"create": "created", "put": "replaced", "patch": "changed", "delete": "deleted"}[method]
