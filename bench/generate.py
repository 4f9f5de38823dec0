"""A generated organisation family: many branches (one organisation, one Casbin domain each), sized by policy lines.

Every branch has the shape of a bank sub-branch: departments with a head, deputies and staff posts, a
reporting line, duty lists that grant and forbid (some on resource groups), common duties, people with
primary, concurrent and acting (顶替岗) assignments with windows, and identities. A branch compiles to
about 1,000 Casbin policy lines, so 1k lines is one branch and 1M lines a thousand; the documents are
Dutyline's own structs, so they are valid organisation files (`validate` checks it).

Requests are drawn from the same family: allowed and denied, through primary and acting posts, on
resource types and inside groups, so that every engine is asked the same questions.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from dutyline.engines.compiler import compile_org, policy_lines
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
from dutyline.rulemodel.document import AppliesTo, Limit, RulePack

# The instant every engine is asked about: inside the acting windows of some people, outside others'.
AT_TEXT = "2026-07-05T10:00:00+08:00"

RESOURCES: dict[str, list[str]] = {
    "account": ["view", "open", "close", "freeze"],
    "transaction": ["view", "enter", "authorize", "reverse"],
    "loan": ["view", "draft", "approve", "disburse"],
    "cash_box": ["view", "withdraw", "deposit", "count"],
    "card": ["view", "issue", "maintain", "destroy"],
    "report": ["view", "draft", "submit"],
    "customer": ["view", "contact", "edit"],
    "budget": ["view", "draft", "approve"],
    "contract": ["view", "draft", "sign", "archive"],
    "vault": ["view", "open", "audit"],
    "voucher": ["view", "issue", "check"],
    "seal": ["view", "use", "keep"],
    "archive": ["view", "file", "destroy"],
    "complaint": ["view", "handle", "close"],
    "expense": ["view", "submit", "approve"],
    "schedule": ["view", "edit", "approve"],
}
GROUPS = {
    "front_office": ["account", "transaction", "card", "customer"],
    "back_office": ["report", "archive", "voucher", "seal"],
    "finance": ["front_office", "budget", "expense"],
}
DEPARTMENTS = ["counter", "credit", "operations", "risk", "office", "security"]
STAFF_POSTS = 6  # per department, besides the head and the deputy
_NAME = Names(zh="名", en="name")


def branch(index: int, seed: int = 0) -> Organisation:
    """One branch: about 1,000 policy lines, different from every other branch in its details."""
    rng = random.Random(seed * 1_000_003 + index)
    targets = list(RESOURCES) + list(GROUPS)

    def permission() -> Permission:
        resource = rng.choice(targets)
        actions: list[str] | str
        if resource in RESOURCES and rng.random() < 0.8:
            actions = rng.sample(RESOURCES[resource], rng.randint(1, 2))
        else:
            actions = "*" if rng.random() < 0.3 else ["view"]
        effect = "deny" if rng.random() < 0.08 else "allow"
        return Permission(resource=resource, actions=actions, effect=effect)

    def duties(count: int, prefix: str) -> list[Duty]:
        return [
            Duty(
                number=str(n + 1),
                text=f"{prefix}职责第{n + 1}项:按制度办理相关业务。",
                permissions=[permission() for _ in range(rng.randint(1, 3))],
            )
            for n in range(count)
        ]

    departments, posts = [], []
    director = "director"
    for d, dept in enumerate(DEPARTMENTS):
        head = director if d == 0 else f"{dept}_head"
        deputy = f"{dept}_deputy"
        departments.append(Department(id=dept, name=_NAME, head=head, duties=duties(2, f"{dept}部门")))
        posts.append(
            Post(id=head, name=_NAME, department=dept, reports_to=None if d == 0 else director, duties=duties(4, head))
        )
        posts.append(Post(id=deputy, name=_NAME, department=dept, reports_to=head, duties=duties(3, deputy)))
        for s in range(STAFF_POSTS):
            staff = f"{dept}_staff_{s}"
            duty_list = duties(3, staff)
            if dept == "counter":  # counter staff enter transactions: what the limit rule is about
                duty_list.append(
                    Duty(
                        number="9",
                        text="办理柜面交易。",
                        permissions=[Permission(resource="transaction", actions=["view", "enter"])],
                    )
                )
            # a senior staff post inherits its junior's duties (declared inheritance)
            inherits = [f"{dept}_staff_{s - 1}"] if s and rng.random() < 0.5 else []
            posts.append(
                Post(id=staff, name=_NAME, department=dept, reports_to=deputy, inherits=inherits, duties=duty_list)
            )

    people: list[Person] = []
    holders: dict[str, list[str]] = {}
    serial = 0
    for post in posts:
        for _ in range(1 if post.id.endswith(("_head", "director")) else rng.randint(3, 5)):
            serial += 1
            pid = f"p{index:04d}_{serial:03d}"
            holders.setdefault(post.id, []).append(pid)
            people.append(
                Person(id=pid, name=_NAME, identities=[f"{pid}@bank.example"], assignments=[Assignment(post=post.id)])
            )
    post_ids = [p.id for p in posts]
    for person in people:
        extra: list[Assignment] = []
        roll = rng.random()
        if roll < 0.15:  # 顶替岗: stands in for the head or deputy of a department for two weeks
            post = rng.choice([p for p in post_ids if p.endswith(("_head", "_deputy", "director"))])
            start = rng.choice(["2026-07-01", "2026-07-04", "2026-07-10", "2026-06-20"])
            end = {
                "2026-07-01": "2026-07-14",
                "2026-07-04": "2026-07-06",
                "2026-07-10": "2026-07-24",
                "2026-06-20": "2026-07-02",
            }[start]
            extra.append(
                Assignment(post=post, kind="acting", valid_from=start, valid_to=end, stands_in_for=holders[post][0])
            )
        elif roll < 0.25:
            extra.append(Assignment(post=rng.choice(post_ids), kind="concurrent"))
        person.assignments.extend(a for a in extra if a.post != person.assignments[0].post)
    for post in posts:
        post.headcount = max(1, sum(1 for p in people for a in p.assignments if a.post == post.id))

    return Organisation(
        id=f"branch_{index:04d}",
        name=Names(zh=f"第{index}支行营业部", en=f"Branch {index} business department"),
        catalogue=Catalogue(
            resources=[ResourceType(id=r, name=_NAME, actions=list(a)) for r, a in RESOURCES.items()],
            groups=[ResourceGroup(id=g, name=_NAME, members=list(m)) for g, m in GROUPS.items()],
        ),
        common_duties=[
            Duty(
                number="1",
                text="严禁越权办理业务。",
                permissions=[
                    Permission(resource="report", actions=["view"]),
                    Permission(resource="archive", actions=["destroy"], effect="deny"),
                ],
            ),
        ],
        departments=departments,
        posts=posts,
        people=people,
    )


def rule_pack(org: Organisation) -> RulePack:
    """A counter transaction limit per post (a limit rule on transaction/enter): the rule the bench triggers."""
    limits = {p.id: 50_000 for p in org.posts if p.id.startswith("counter_staff")}
    limits["counter_deputy"] = 200_000
    limits["director"] = 1_000_000  # the counter department's head
    return RulePack(
        org=org.id,
        name=Names(zh="柜面交易限额", en="counter transaction limits"),
        rules=[
            Limit(
                id="transaction_limit",
                name=Names(zh="柜面交易权限额度", en="counter transaction limit per post"),
                applies_to=AppliesTo(resources=["transaction"], actions=["enter"]),
                attribute="context.amount",
                limits=limits,
                default=0,
                message=Names(zh="超过本岗位柜面交易权限额度", en="Above this post's counter transaction limit"),
            )
        ],
    )


def lines_of(org: Organisation, at: float | None = None) -> int:
    return sum(1 for _ in policy_lines(org, at))


def family(target_lines: int, seed: int = 0) -> list[Organisation]:
    """Branches until the family is as close to `target_lines` policy lines as whole branches allow."""
    orgs: list[Organisation] = []
    total = 0
    while not orgs or total + total / len(orgs) / 2 < target_lines:
        org = branch(len(orgs) + 1, seed)
        orgs.append(org)
        total += lines_of(org)
    return orgs


def one_big_org(target_lines: int, seed: int = 0) -> Organisation:
    """The same family folded into one organisation (departments per branch): what if one org were huge?"""
    parts = family(target_lines, seed)
    first = parts[0]
    departments, posts, people = [], [], []
    for i, org in enumerate(parts):
        rename = {d.id: f"{d.id}_{i}" for d in org.departments} | {p.id: f"{p.id}_{i}" for p in org.posts}
        for d in org.departments:
            departments.append(Department(id=rename[d.id], name=d.name, head=rename.get(d.head or ""), duties=d.duties))
        for p in org.posts:
            posts.append(
                Post(
                    id=rename[p.id],
                    name=p.name,
                    department=rename[p.department],
                    reports_to=rename.get(p.reports_to or ""),
                    inherits=[rename[x] for x in p.inherits],
                    duties=p.duties,
                )
            )
        for person in org.people:
            people.append(
                Person(
                    id=person.id,
                    name=person.name,
                    identities=person.identities,
                    assignments=[
                        Assignment(
                            post=rename[a.post],
                            kind=a.kind,
                            valid_from=a.valid_from,
                            valid_to=a.valid_to,
                            stands_in_for=a.stands_in_for,
                        )
                        for a in person.assignments
                    ],
                )
            )
    return Organisation(
        id="one_big_org",
        name=first.name,
        catalogue=first.catalogue,
        common_duties=first.common_duties,
        departments=departments,
        posts=posts,
        people=people,
    )


@dataclass(frozen=True, slots=True)
class Request:
    org: str
    person: str
    resource: str
    action: str
    amount: int | None = None  # set for transaction/enter requests the limit rule reads


def requests(orgs: list[Organisation], count: int, at: float, seed: int = 1) -> list[Request]:
    """A mix of questions: half about something one of the person's active posts is granted, half random."""
    rng = random.Random(seed)
    compiled = {}
    out: list[Request] = []
    while len(out) < count:
        org = rng.choice(orgs)
        c = compiled.get(org.id) or compiled.setdefault(org.id, compile_org(org))
        person = rng.choice(org.people)
        if rng.random() < 0.5:
            active = [a.post for a in c.assignments[person.id] if a.active(at)]
            # within the catalogue: Casbin knows no catalogue, and Dutyline denies an action the type lacks
            keys = [k for post in active for k in c.posts[post].allow if k[1] in RESOURCES[k[0]]]
            if keys:
                resource, action = rng.choice(keys)
                out.append(Request(org.id, person.id, resource, action))
                continue
        resource = rng.choice(list(RESOURCES))
        out.append(Request(org.id, person.id, resource, rng.choice(RESOURCES[resource])))
    return out


def limit_requests(orgs: list[Organisation], count: int, amount: int, seed: int = 2) -> Iterator[Request]:
    """Counter staff entering a transaction of `amount`: within their limit (50,000) or above it."""
    rng = random.Random(seed)
    for _ in range(count):
        org = rng.choice(orgs)
        staff = [p for p in org.people if p.assignments[0].post.startswith("counter_staff")]
        yield Request(org.id, rng.choice(staff).id, "transaction", "enter", amount)
