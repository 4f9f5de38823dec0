"""The console's search box: people, posts, duties, resources and rules of one organisation whose id or name (in
Chinese or English) contains what was typed.

Matching is by case-folded substring, so `li na`, `LI_NA` and `李` all find 李娜; a person's other identities
(e-mail, staff number) count as ids. Results are ranked: an exact id or name first, then those starting with the
text, then the rest, each in document order; at most `limit` of them, and `more` says there were others. The text
is bounded (`MAX_QUERY` characters) so that a search never walks the document with something unbounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

from sqlalchemy.orm import Session, sessionmaker

from dutyline.engines.compiler import full_number
from dutyline.errors import Invalid, Issue, IssueCode, NotFound
from dutyline.orgmodel.document import Duty, Names, Organisation
from dutyline.services.policies import PolicyService
from dutyline.services.shapes import Shape, Texts
from dutyline.store import rule_packs as pack_store

MAX_QUERY = 100
MAX_RESULTS = 50

HitKind = Literal["person", "post", "department", "duty", "resource", "group", "rule"]


class Hit(Shape):
    """One result. `owner`: a duty's post or department (`post:<id>`, `department:<id>`, `common`); `pack`: a rule's
    rule pack; `number`: a duty's number."""

    kind: HitKind
    id: str
    name: Texts
    owner: str | None = None
    pack: str | None = None
    number: str | None = None


class OrgSearchResults(Shape):
    organisation: str
    query: str
    items: list[Hit]
    more: bool  # there were more results than `limit`


class OrgSearch:
    def __init__(self, sessions: sessionmaker[Session], policies: PolicyService) -> None:
        self._sessions = sessions
        self._policies = policies

    def find(self, org_id: str, text: str, limit: int = 20, with_rules: bool = True) -> OrgSearchResults:
        """What matches `text` in the organisation (rules only `with_rules`: the caller may read rule packs)."""
        wanted = text.strip()
        if not wanted or len(wanted) > MAX_QUERY:
            bound, limit_of = ("at_least", "1") if not wanted else ("at_most", str(MAX_QUERY))
            raise Invalid(
                f"q: give 1 to {MAX_QUERY} characters to search for",
                [
                    Issue(
                        "<request>",
                        0,
                        "q",
                        f"give 1 to {MAX_QUERY} characters to search for",
                        code=IssueCode.BAD_LENGTH,
                        params={
                            "field": "q",
                            "bound": bound,
                            "limit": limit_of,
                            "unit": "characters",
                            "got": str(len(wanted)),
                        },
                    )
                ],
            )
        org = self._policies.current.get(org_id)
        if org is None:
            raise NotFound(f"organisation {org_id!r} not found")
        candidates = list(_candidates(org.document))
        if with_rules:
            with self._sessions() as session:
                packs = pack_store.current(session, org_id)
            for stored in packs:
                if stored.pack is None:
                    continue
                for rule in stored.pack.rules:
                    candidates.append((Hit("rule", rule.id, _texts(rule.name), pack=stored.name), ()))
        needle = wanted.casefold()
        ranked: list[tuple[int, int, Hit]] = []
        for order, (hit, extra_ids) in enumerate(candidates):
            rank = _rank(needle, (hit.id, *extra_ids), (hit.name.zh, hit.name.en))
            if rank is not None:
                ranked.append((rank, order, hit))
        ranked.sort(key=lambda r: (r[0], r[1]))
        bounded = max(1, min(limit, MAX_RESULTS))
        return OrgSearchResults(org_id, wanted, [r[2] for r in ranked[:bounded]], len(ranked) > bounded)


def _texts(names: Names) -> Texts:
    return Texts(names.zh, names.en)


def _rank(needle: str, ids: Iterable[str], names: Iterable[str]) -> int | None:
    """0: an id or name equal to the text; 1: one starting with it; 2: one containing it; None: no match. An id's
    underscores count as spaces (`li na` finds `li_na`)."""
    best: int | None = None
    for value in (*ids, *(i.replace("_", " ") for i in ids), *names):
        folded = value.casefold()
        if folded == needle:
            return 0
        if folded.startswith(needle):
            best = 1
        elif needle in folded and best is None:
            best = 2
    return best


def _candidates(doc: Organisation) -> Iterator[tuple[Hit, tuple[str, ...]]]:
    """Every searchable entity of the document, with the other ids it is known by."""
    for person in doc.people:
        yield Hit("person", person.id, _texts(person.name)), tuple(person.identities)
    for post in doc.posts:
        yield Hit("post", post.id, _texts(post.name)), ()
    for department in doc.departments:
        yield Hit("department", department.id, _texts(department.name)), ()
    for resource in doc.catalogue.resources:
        yield Hit("resource", resource.id, _texts(resource.name)), ()
    for group in doc.catalogue.groups:
        yield Hit("group", group.id, _texts(group.name)), ()
    for owner, duties in (
        *((f"post:{p.id}", p.duties) for p in doc.posts),
        *((f"department:{d.id}", d.duties) for d in doc.departments),
        ("common", doc.common_duties),
    ):
        for number, duty in _duties(duties):
            yield Hit("duty", f"{owner}#{number}", Texts(duty.text, duty.en or duty.text), owner, number=number), ()


def _duties(duties: list[Duty], parent: str = "") -> Iterator[tuple[str, Duty]]:
    for duty in duties:
        number = full_number(parent, duty.number)
        yield number, duty
        yield from _duties(duty.duties, number)
