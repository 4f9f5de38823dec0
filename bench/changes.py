"""Org changes of the three kinds the issue names, each with a check whose answer shows it has been applied."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import msgspec

from bench.generate import AT_TEXT, RESOURCES
from dutyline.engines.compiler import compile_org
from dutyline.engines.decision import Check, decide
from dutyline.orgmodel.document import Assignment, Duty, Organisation, Permission
from dutyline.rulemodel.document import RulePack

_ORG = msgspec.json.Decoder(Organisation)
_PACK = msgspec.json.Decoder(RulePack)
_ENC = msgspec.json.Encoder()


@dataclass
class Change:
    kind: str  # move_person | change_duty | change_limit
    org: str
    collection: str  # people | posts | rules: where the admin API takes it
    ident: str
    patch: dict[str, Any]  # JSON Merge Patch of that entity
    probe: dict[str, Any]  # a /v1/check body whose decision shows the change
    expect: str  # that decision once the change is applied
    document: Organisation | None = None  # the whole changed document (for writes through the store)
    pack: RulePack | None = None
    timings: dict[str, float] = field(default_factory=dict)


def copy(value: Any) -> Any:
    return (_ORG if isinstance(value, Organisation) else _PACK).decode(_ENC.encode(value))


class Changes:
    """Keeps the family's current documents and makes the next change on a random branch."""

    def __init__(self, orgs: list[Organisation], packs: list[RulePack], at: float, seed: int = 7) -> None:
        self.orgs = {o.id: o for o in orgs}
        self.packs = {p.org: p for p in packs}
        self.at = at
        self.rng = random.Random(seed)
        self.serial = 0

    def next(self, kind: str) -> Change:
        for _ in range(50):
            org = self.orgs[self.rng.choice(list(self.orgs))]
            change = getattr(self, kind)(org)
            if change is not None:
                return change
        raise RuntimeError(f"no {kind} change found")

    def _decide(self, org: Organisation, person: str, resource: str, action: str) -> str:
        return decide(compile_org(org), Check(person, resource, action, self.at)).outcome

    def _probe(self, org: str, person: str, resource: str, action: str, **context: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "organisation": org,
            "subject": {"id": person},
            "resource": {"type": resource},
            "action": action,
            "at": AT_TEXT,
        }
        if context:
            body["context"] = context
        return body

    def _keys(self) -> list[tuple[str, str]]:
        """(resource type, action) pairs in random order, without the one the limit rule governs: the probe's
        expected answer is the duty decision, which a rule could turn into needs_approval."""
        keys = [(r, a) for r, actions in RESOURCES.items() for a in actions if (r, a) != ("transaction", "enter")]
        self.rng.shuffle(keys)
        return keys

    def move_person(self, org: Organisation) -> Change | None:
        """A person with one assignment moves to another post: some decision of theirs changes."""
        people = [p for p in org.people if len(p.assignments) == 1]
        person = self.rng.choice(people)
        target = self.rng.choice([p.id for p in org.posts if p.id != person.assignments[0].post])
        changed = copy(org)
        moved = next(p for p in changed.people if p.id == person.id)
        moved.assignments = [Assignment(post=target)]
        before, after = compile_org(org), compile_org(changed)
        keys = self._keys()
        for resource, action in keys:
            check = Check(person.id, resource, action, self.at)
            new = decide(after, check).outcome
            if decide(before, check).outcome != new:
                self.orgs[org.id] = changed
                return Change(
                    "move_person",
                    org.id,
                    "people",
                    person.id,
                    {"assignments": [{"post": target}]},
                    self._probe(org.id, person.id, resource, action),
                    new,
                    document=changed,
                )
        return None

    def change_duty(self, org: Organisation) -> Change | None:
        """A post gets one more duty granting something its sole-post holders could not do before."""
        compiled = compile_org(org)
        post = self.rng.choice([p for p in org.posts if p.id.split("_staff_")[0] != p.id])
        holders = [p.id for p in org.people if [a.post for a in p.assignments] == [post.id]]
        if not holders:
            return None
        person = holders[0]
        keys = self._keys()
        for resource, action in keys:
            if decide(compiled, Check(person, resource, action, self.at)).code == "no_grant":
                self.serial += 1
                changed = copy(org)
                target = next(p for p in changed.posts if p.id == post.id)
                taken = {d.number for d in target.duties}
                number = next(str(n) for n in range(len(taken) + 1, 10_000) if str(n) not in taken)
                target.duties = [
                    *target.duties,
                    Duty(
                        number=number,
                        text=f"临时增加职责{self.serial}。",
                        permissions=[Permission(resource=resource, actions=[action])],
                    ),
                ]
                self.orgs[org.id] = changed
                return Change(
                    "change_duty",
                    org.id,
                    "posts",
                    post.id,
                    {"duties": msgspec.to_builtins(target.duties)},
                    self._probe(org.id, person, resource, action),
                    "allow",
                    document=changed,
                )
        return None

    def change_limit(self, org: Organisation) -> Change | None:
        """Counter staff's transaction limit goes from 50,000 to 100,000 or back: an 80,000 entry flips."""
        pack = copy(self.packs[org.id])
        rule = pack.rules[0]
        raised = rule.limits.get("counter_staff_0", 0) < 80_000
        for post in list(rule.limits):
            if post.startswith("counter_staff"):
                rule.limits[post] = 100_000 if raised else 50_000
        staff = [
            p.id for p in org.people if p.assignments[0].post.startswith("counter_staff") and len(p.assignments) == 1
        ]
        compiled = compile_org(org)
        allowed = [p for p in staff if decide(compiled, Check(p, "transaction", "enter", self.at)).allowed]
        if not allowed:
            return None
        self.packs[org.id] = pack
        return Change(
            "change_limit",
            org.id,
            "rules",
            "limits",
            {"rules": msgspec.to_builtins(pack.rules)},
            self._probe(org.id, allowed[0], "transaction", "enter", amount=80_000, currency="CNY"),
            "allow" if raised else "needs_approval",
            pack=pack,
        )
