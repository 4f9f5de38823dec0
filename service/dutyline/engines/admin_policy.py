"""Who may do what in the admin API, decided by Dutyline's own engine in its own domain.

The users and their role grants become an organisation document, `dutyline_admin`: one post per role,
one person per user, and permissions whose conditions scope each role to the organisations it was granted
in (`resource.organisation in subject.hr_admin_orgs`). The document is compiled with `compile_org` and
every admin request is a `decide` against it, exactly like a customer's check. It is generated, never
stored with the other organisations, and not served by the public decision API.

The permissions (`AdminPermission`, and `CATALOGUE`, resource type → actions, made from it) are the one list that
routes and the policy share: a route asks for a permission in an organisation, the policy grants them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from dutyline.engines.compiler import CompiledOrg, compile_org
from dutyline.engines.decision import Check, Decision, decide
from dutyline.orgmodel.document import (
    Assignment,
    Catalogue,
    Department,
    Duty,
    Names,
    Organisation,
    Permission,
    Person,
    Post,
    ResourceGroup,
    ResourceType,
)

ORG_ID = "dutyline_admin"
ALL = "*"  # a grant in every organisation
ROLES = ("system_admin", "hr_admin", "compliance_officer", "auditor")


class AdminPermission(StrEnum):
    """Every permission of the admin API: the routes ask for one (`api.guards.requires`), the policy grants them,
    the console draws its navigation from those its user holds. The value, `resource:action`, is what
    GET /admin/session lists."""

    ORGANISATION_READ = "organisation:read"
    ORGANISATION_CREATE = "organisation:create"
    ORGANISATION_DELETE = "organisation:delete"
    ORGANISATION_CONFIGURE = "organisation:configure"
    ORG_CHART_READ = "org_chart:read"  # the document: departments, posts, duties, people, catalogue; versions
    ORG_CHART_WRITE = "org_chart:write"
    RULE_PACK_READ = "rule_pack:read"
    RULE_PACK_WRITE = "rule_pack:write"
    CHANGE_READ = "change:read"  # pending changes (four-eyes, scheduled)
    CHANGE_APPROVE = "change:approve"
    AUDIT_READ = "audit:read"
    DECISION_LOG_READ = "decision_log:read"
    USER_READ = "user:read"  # users, role grants, API tokens (organisation `*`)
    USER_WRITE = "user:write"

    @classmethod
    def of(cls, resource: str, action: str) -> AdminPermission:
        """`resource:action` (`rule_pack`, `write` → RULE_PACK_WRITE); a ValueError for one that does not exist."""
        return cls(f"{resource}:{action}")

    @property
    def resource(self) -> str:
        return self.value.partition(":")[0]

    @property
    def action(self) -> str:
        return self.value.partition(":")[2]


# Resource type → its actions, in the enum's order: the catalogue of the generated admin document.
CATALOGUE: Mapping[str, tuple[str, ...]] = {
    resource: tuple(p.action for p in AdminPermission if p.resource == resource)
    for resource in dict.fromkeys(p.resource for p in AdminPermission)
}
CHANGING = ("create", "delete", "configure", "write", "approve")

_NAMES = {
    "system_admin": Names(zh="系统管理员", en="System administrator"),
    "hr_admin": Names(zh="人事管理员", en="HR administrator"),
    "compliance_officer": Names(zh="合规官", en="Compliance officer"),
    "auditor": Names(zh="审计员", en="Auditor"),
    "organisation": Names(zh="组织", en="organisation"),
    "org_chart": Names(zh="组织架构与岗位职责", en="org chart and duties"),
    "rule_pack": Names(zh="业务规则包", en="rule pack"),
    "change": Names(zh="待生效变更", en="pending change"),
    "audit": Names(zh="审计记录", en="audit trail"),
    "decision_log": Names(zh="决策日志", en="decision log"),
    "user": Names(zh="用户与令牌", en="users and tokens"),
}


def _within(role: str) -> str:
    attribute = f"subject.{role}_orgs"
    return f'resource.organisation in {attribute} or "*" in {attribute}'


def _approves(role: str, kind: str) -> str:
    """A pending change of `kind` (rule_pack, org_chart) in the role's organisations: who may make such changes
    approves them (four-eyes)."""
    return f'({_within(role)}) and resource.kind == "{kind}"'


def _duty(number: str, zh: str, en: str, *permissions: Permission) -> Duty:
    return Duty(number=number, text=zh, en=en, permissions=list(permissions))


_DUTIES: Mapping[str, list[Duty]] = {
    "system_admin": [
        _duty(
            "1",
            "管理所有组织、规则、用户与令牌。",
            "Manages every organisation, rule pack, user and token.",
            Permission(resource="everything", actions="*"),
        ),
    ],
    "hr_admin": [
        _duty(
            "1",
            "维护本组织的部门、岗位、职责、人员与任职。",
            "Maintains the organisation's departments, posts, duties, people and assignments.",
            Permission(resource="org_chart", actions="*", condition=_within("hr_admin")),
        ),
        _duty(
            "2",
            "查阅本组织的规则包与待生效变更。",
            "Reads the organisation's rule packs and pending changes.",
            Permission(resource="organisation", actions=["read"], condition=_within("hr_admin")),
            Permission(resource="rule_pack", actions=["read"], condition=_within("hr_admin")),
            Permission(resource="change", actions=["read"], condition=_within("hr_admin")),
        ),
        _duty(
            "3",
            "审批本组织他人提交的组织架构变更。",
            "Approves others' changes to the organisation's org chart.",
            Permission(resource="change", actions=["approve"], condition=_approves("hr_admin", "org_chart")),
        ),
    ],
    "compliance_officer": [
        _duty(
            "1",
            "维护并审批本组织的业务规则包。",
            "Maintains and approves the organisation's rule packs.",
            Permission(resource="rule_pack", actions="*", condition=_within("compliance_officer")),
            Permission(resource="change", actions=["read"], condition=_within("compliance_officer")),
            Permission(resource="change", actions=["approve"], condition=_approves("compliance_officer", "rule_pack")),
        ),
        _duty(
            "2",
            "查阅本组织的组织架构。",
            "Reads the organisation's org chart.",
            Permission(resource="organisation", actions=["read"], condition=_within("compliance_officer")),
            Permission(resource="org_chart", actions=["read"], condition=_within("compliance_officer")),
        ),
    ],
    "auditor": [
        _duty(
            "1",
            "只读查阅本组织的一切,包括审计记录与决策日志。",
            "Reads everything of the organisation, audit trail and decision log included.",
            Permission(resource="everything", actions=["read"], condition=_within("auditor")),
        ),
    ],
}

_COMMON = [
    _duty(
        "1",
        "只读令牌不得做任何修改。",
        "A read-only token changes nothing.",
        Permission(resource="everything", actions=list(CHANGING), effect="deny", condition='context.scope == "read"'),
    ),
    _duty(
        "2",
        "决策令牌只能调用决策接口,不得使用管理接口。",
        "A decision token may call the decision API only, never the admin API.",
        Permission(resource="everything", actions="*", effect="deny", condition='context.scope == "decide"'),
    ),
    _duty(
        "3",
        "任何人不得审批自己提交的变更。",
        "Nobody approves a change they made.",
        Permission(
            resource="change", actions=["approve"], effect="deny", condition="resource.author == subject.username"
        ),
    ),
]


@dataclass(frozen=True, slots=True)
class Member:
    """One active user and the (role, organisation) pairs granted to them."""

    user_id: int
    username: str
    grants: tuple[tuple[str, str], ...]


def person_id(user_id: int) -> str:
    return f"user_{user_id}"


def admin_document(members: Iterable[Member]) -> Organisation:
    """The `dutyline_admin` organisation of these users and grants."""
    people = []
    for member in members:
        roles = sorted({role for role, _ in member.grants if role in ROLES}, key=ROLES.index)
        attributes: dict[str, Any] = {"username": member.username}
        for role in ROLES:
            attributes[f"{role}_orgs"] = sorted({org for r, org in member.grants if r == role})
        people.append(
            Person(
                id=person_id(member.user_id),
                name=Names(zh=member.username, en=member.username),
                attributes=attributes,
                assignments=[
                    Assignment(post=r, kind="primary" if i == 0 else "concurrent") for i, r in enumerate(roles)
                ],
            )
        )
    return Organisation(
        id=ORG_ID,
        name=Names(zh="Dutyline 管理", en="Dutyline administration"),
        timezone="UTC",
        catalogue=Catalogue(
            resources=[ResourceType(id=r, name=_NAMES[r], actions=list(a)) for r, a in CATALOGUE.items()],
            groups=[ResourceGroup(id="everything", name=Names(zh="全部", en="everything"), members=list(CATALOGUE))],
        ),
        common_duties=_COMMON,
        departments=[Department(id="administration", name=Names(zh="管理", en="Administration"))],
        posts=[
            Post(id=role, name=_NAMES[role], department="administration", headcount=100000, duties=_DUTIES[role])
            for role in ROLES
        ],
        people=people,
    )


@dataclass(frozen=True, slots=True)
class AdminPolicy:
    """The compiled admin organisation; `decide` answers one admin request."""

    org: CompiledOrg

    def decide(
        self,
        user_id: int,
        resource: str,
        action: str,
        organisation: str,
        scope: str,
        at: float,
        attributes: Mapping[str, Any] | None = None,
    ) -> Decision:
        """May this user, through a session or a token of `scope`, do `action` on `resource` of `organisation`?"""
        check = Check(
            subject_id=person_id(user_id),
            resource_type=resource,
            action=action,
            at=at,
            resource_properties={**(attributes or {}), "organisation": organisation},
            context={"scope": scope},
        )
        return decide(self.org, check)

    def organisations_with(self, user_id: int, role_attribute: str) -> list[str]:
        value = self.org.person_attributes.get(person_id(user_id), {}).get(role_attribute, [])
        return list(value) if isinstance(value, list) else []


def compile_admin(members: Iterable[Member], version: int = 0) -> AdminPolicy:
    return AdminPolicy(compile_org(admin_document(members), version))
