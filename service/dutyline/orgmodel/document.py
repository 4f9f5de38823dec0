"""The organisation document: what one `policies/orgs/<id>.yaml` file holds.

These structs are the single definition of the org file format. The published JSON Schema
(`policies/schema/org.schema.json`) is generated from them (`dutyline schema`), the loader
decodes YAML into them, and export encodes them back, so the three cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Id = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z][a-z0-9_]*$",
        max_length=64,
        description="Stable ASCII id: lower case letters, digits and underscores, starting with a letter.",
    ),
]
ActionId = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z][A-Za-z0-9_.:-]*$",
        max_length=64,
        description="An action name: letters, digits, _ . : - (e.g. approve, can_read_user, GET).",
    ),
]
Scalar = str | int | float | bool
AttributeValue = Scalar | list[Scalar]
Attributes = Annotated[
    dict[str, AttributeValue],
    msgspec.Meta(description="Named values that conditions can read (subject.<name>, resource.<name>)."),
]
Condition = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=2000,
        description=(
            "An expression over subject, resource, action and context attributes, e.g. "
            "resource.owner == subject.id or resource.department == subject.department. See docs/expressions.md."
        ),
    ),
]
DateOrTime = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?([+-]\d{2}:\d{2}|Z)?)?$",
        description=(
            "A date (2026-03-01) or date and time (2026-03-01T08:30, with an optional UTC offset). "
            "Times without an offset are in the organisation's time zone. A date alone as `valid_to` "
            "includes that whole day."
        ),
    ),
]


class _Struct(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    pass


class Names(_Struct):
    """A name or short text in Chinese (as the source documents write it) and English."""

    zh: Annotated[str, msgspec.Meta(min_length=1)]
    en: Annotated[str, msgspec.Meta(min_length=1)]


class Instance(_Struct):
    """A known resource of a type (a record, a route, a vault), with attributes conditions can read."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    name: Names | None = None
    attributes: Attributes = {}


class ResourceType(_Struct):
    """A kind of thing the organisation governs, and what can be done to it."""

    id: Id
    name: Names
    actions: Annotated[list[ActionId], msgspec.Meta(min_length=1)]
    instances: list[Instance] = []


class ResourceGroup(_Struct):
    """A named set of resource types (and other groups), so that a duty or a jurisdiction can name it."""

    id: Id
    name: Names
    members: Annotated[list[Id], msgspec.Meta(min_length=1)]


class Catalogue(_Struct):
    resources: list[ResourceType] = []
    groups: list[ResourceGroup] = []


class Permission(_Struct):
    """Actions on a resource type or group that a duty grants (or, with effect deny, forbids)."""

    resource: Id
    actions: Annotated[
        list[ActionId] | Literal["*"],
        msgspec.Meta(description="Action ids of the resource's catalogue entry, or '*' for all of them."),
    ]
    effect: Literal["allow", "deny"] = "allow"
    condition: Annotated[
        Condition | None,
        msgspec.Meta(description="Only when this holds (e.g. ownership: resource.owner == subject.id)."),
    ] = None


class Duty(_Struct):
    """One numbered item of a duty list (职责), its text verbatim, and what it lets the holder do."""

    number: Annotated[
        str,
        msgspec.Meta(
            min_length=1, max_length=32, description="The number as the document writes it: 2, 2.1, 三, (一)1."
        ),
    ]
    text: Annotated[str, msgspec.Meta(min_length=1, description="The duty in the source's own words (Chinese).")]
    en: str = ""
    permissions: list[Permission] = []
    duties: list[Duty] = []


class Qualifications(_Struct):
    """素质要求: what a holder of the post should bring."""

    education: Names | None = None
    experience_years: Annotated[int, msgspec.Meta(ge=0, le=60)] | None = None
    skills: list[Names] = []


class Department(_Struct):
    id: Id
    name: Names
    parent: Id | None = None
    head: Annotated[
        Id | None,
        msgspec.Meta(description="The post that leads the department and carries its department duties."),
    ] = None
    mission: Names | None = None
    jurisdiction: Annotated[
        list[Id],
        msgspec.Meta(description="管辖范围: resource types and groups the department governs."),
    ] = []
    duties: list[Duty] = []


class Post(_Struct):
    id: Id
    name: Names
    department: Id
    reports_to: Annotated[Id | None, msgspec.Meta(description="直接上级: the direct superior post.")] = None
    headcount: Annotated[int, msgspec.Meta(ge=0, le=100000)] = 1
    qualifications: Qualifications | None = None
    inherits: Annotated[
        list[Id],
        msgspec.Meta(description="Posts whose permissions this post also has (declared inheritance only)."),
    ] = []
    duties: list[Duty] = []


class SeparationOfDuties(_Struct):
    """Posts that one person may never hold at the same time (static separation of duties)."""

    id: Id
    posts: Annotated[list[Id], msgspec.Meta(min_length=2)]
    reason: Names


class Assignment(_Struct):
    post: Id
    kind: Literal["primary", "concurrent", "acting"] = "primary"
    valid_from: DateOrTime | None = None
    valid_to: DateOrTime | None = None
    stands_in_for: Annotated[
        Id | None, msgspec.Meta(description="顶替岗: the person whose post an acting holder covers.")
    ] = None
    note: str = ""


class Person(_Struct):
    id: Id
    name: Names
    identities: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=256)]],
        msgspec.Meta(description="Other ids other systems know this person by: e-mail, IdP subject, staff number."),
    ] = []
    attributes: Attributes = {}
    assignments: list[Assignment] = []


class Organisation(_Struct):
    """One organisation: a Casbin domain and everything that decides what its people may do."""

    id: Id
    name: Names
    timezone: str = "Asia/Shanghai"
    description: Names | None = None
    catalogue: Catalogue = msgspec.field(default_factory=Catalogue)
    common_duties: Annotated[
        list[Duty], msgspec.Meta(description="岗位共同职责: duties every post of the organisation carries.")
    ] = []
    departments: list[Department] = []
    posts: list[Post] = []
    separation_of_duties: list[SeparationOfDuties] = []
    people: list[Person] = []


def schema() -> dict:
    """The JSON Schema of an organisation file, as published in `policies/schema/org.schema.json`."""
    generated = msgspec.json.schema(Organisation)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://dutyline.dev/schema/org.schema.json",
        "title": "Dutyline organisation",
        **generated,
    }
