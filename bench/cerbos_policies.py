"""Dutyline's compiled organisations as Cerbos resource policies and principals.

One resource policy per organisation and resource type, its kind `<organisation>.<type>` (`branch_0001.account`):
the organisation is in the kind rather than a `scope`, because Cerbos evaluates a scoped policy together with
every ancestor scope (a root policy per type, a walk up the chain on every check) while org-qualified kinds are
independent policies its rule table indexes by kind directly, and because AuthZEN's `resource.type` then carries
the organisation with no extension. Roles are posts (`post.<id>`); a principal's roles are the person's posts
active at the instant asked (the Casbin policy materialises assignments at an instant the same way).

Each post's permissions come from the compiled decision index (`CompiledOrg.posts`): inheritance, resource
groups, department-head duties and common duties already expanded. Dutyline denies when any active post denies;
Cerbos allows when any of the principal's roles allows (its rule for multiple roles). So a deny is written as
a condition on the allow rules of the same action: allowed unless the principal also holds a post that denies
it (`hasIntersection`), and the denying posts themselves get no allow rule. Cerbos's default deny does the rest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from dutyline.engines.compiler import CompiledOrg

API_VERSION = "api.cerbos.dev/v1"
NO_POST = "none"  # Cerbos needs at least one role; a person with no active post has only this, which no rule names


def kind(org: str, resource_type: str) -> str:
    return f"{org}.{resource_type}"


def role(post: str) -> str:
    return f"post.{post}"


def roles(org: CompiledOrg, person: str, at: float) -> list[str]:
    """The principal's roles: the person's posts active at `at` (what `decide` reads), in assignment order."""
    active = [role(a.post) for a in org.assignments.get(person, ()) if a.active(at)]
    return list(dict.fromkeys(active)) or [NO_POST]


def resource_policies(org: CompiledOrg) -> Iterator[dict]:
    """The organisation's resource policies, one per resource type of its catalogue."""
    for resource_type, actions in org.action_order.items():
        # (posts allowed, posts that deny) → the actions with exactly that pair: one rule each
        rules: dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]] = {}
        for action in actions:
            key = (resource_type, action)
            allowers, deniers = [], []
            for post, permissions in org.posts.items():
                for grants, out in (
                    (permissions.allow.get(key, ()), allowers),
                    (permissions.deny.get(key, ()), deniers),
                ):
                    if any(g.condition is not None for g in grants):
                        raise ValueError(
                            f"{org.id}: {post} has a conditional grant on {resource_type}:{action}; "
                            "the Cerbos peer is written for unconditional duties only"
                        )
                    if grants:
                        out.append(post)
            allowed = tuple(p for p in allowers if p not in deniers)
            if allowed:
                rules.setdefault((allowed, tuple(deniers)), []).append(action)
        yield {
            "apiVersion": API_VERSION,
            "resourcePolicy": {
                "version": "default",
                "resource": kind(org.id, resource_type),
                "rules": [_rule(actions, allowed, deniers) for (allowed, deniers), actions in rules.items()],
            },
        }


def _rule(actions: list[str], allowed: tuple[str, ...], deniers: tuple[str, ...]) -> dict:
    rule: dict = {"actions": actions, "effect": "EFFECT_ALLOW", "roles": [role(p) for p in allowed]}
    if deniers:
        listed = ", ".join(json.dumps(role(p)) for p in deniers)
        rule["condition"] = {"match": {"expr": f"!hasIntersection(request.principal.roles, [{listed}])"}}
    return rule


def write(orgs: list[CompiledOrg], folder: Path) -> int:
    """Write every organisation's policies under `folder` (one file each, JSON, which Cerbos reads as YAML);
    returns how many policies were written."""
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for org in orgs:
        for policy in resource_policies(org):
            name = policy["resourcePolicy"]["resource"]
            (folder / f"{name}.yaml").write_text(json.dumps(policy, ensure_ascii=False, separators=(",", ":")))
            count += 1
    return count
