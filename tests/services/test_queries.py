"""The query use cases of the services directly: which organisation a question is about, who may do something,
what a subject may do and on which instances, whole-organisation listings kept per compiled version and instant
span (and refused when too many big ones are computed at once), and an organisation as it was in force then.
The use cases the HTTP routes are thin over (`Queries`, `Search`) are specified here too: a person's permissions,
who may, the reporting line, and the AuthZEN searches, at a moment named in the organisation's time zone."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest

from dutyline.engines.compiler import CompiledOrg
from dutyline.engines.decision import Check, decide
from dutyline.errors import Forbidden, Invalid, NotFound, Unavailable
from dutyline.runtime import Runtime
from dutyline.services.decisions import (
    Question,
    actions_allowed,
    resolve_organisation,
    resources_allowed,
    sole_owner,
    subjects_allowed,
)
from dutyline.services.listings import Listing, Listings, subjects_to_decide, who_may
from dutyline.services.reach import CURRENT, Reach
from tests.aio import run_apart
from tests.services.conftest import COUNTER, copy_of

pytestmark = pytest.mark.live
T = TypeVar("T")


def by_duties(org: CompiledOrg) -> Callable[[Check], bool]:
    """What the duty model alone permits (the searches add the business rules)."""
    return lambda check: decide(org, check).allowed


def org_of(runtime: Runtime, ident: str) -> CompiledOrg:
    org = runtime.policies.current.get(ident)
    assert org is not None
    return org


def test_a_question_is_about_the_organisation_it_names_or_the_only_one_that_knows_the_subject(runtime: Runtime) -> None:
    policies = runtime.policies.current
    assert resolve_organisation(policies, Question("mia", "transaction", "enter", organisation=COUNTER)).id == COUNTER  # type: ignore[union-attr]
    assert resolve_organisation(policies, Question("mia@counter.example", "transaction", "enter")).id == COUNTER  # type: ignore[union-attr]
    named = Question("li_na", "expense", "submit", context={"organisation": "sales_company"})
    assert resolve_organisation(policies, named).id == "sales_company"  # type: ignore[union-attr]
    assert resolve_organisation(policies, Question("nobody_at_all", "x", "y")) is None
    assert sole_owner(policies, "wealth_product") == "securities_branch" and sole_owner(policies, "cash_box") is None, (
        "two have it"
    )
    assert sole_owner(policies, "no_such_type") is None


def test_a_subject_known_in_several_organisations_must_be_named_in_context_organisation(
    runtime: Runtime, tmp_path: Path
) -> None:
    copy = copy_of(runtime, tmp_path)  # li_na is now a person of sales_company and of its copy
    policies = runtime.policies.current
    with pytest.raises(
        Invalid, match=f"subject 'li_na' is known in several organisations \\({copy}, sales_company\\)"
    ) as refused:
        resolve_organisation(policies, Question("li_na", "expense", "submit"))
    assert [i.path for i in refused.value.issues] == ["context.organisation"]
    assert (
        resolve_organisation(policies, Question("li_na", "expense", "submit", context={"organisation": copy})).id
        == copy
    )  # type: ignore[union-attr]


def test_an_organisation_outside_the_callers_reach_is_forbidden_named_or_not(runtime: Runtime) -> None:
    token = CURRENT.set(Reach(frozenset({"sales_company"}), "token t1"))
    try:
        with pytest.raises(Forbidden, match=COUNTER):
            resolve_organisation(
                runtime.policies.current, Question("mia", "transaction", "enter", organisation=COUNTER)
            )
        assert resolve_organisation(runtime.policies.current, Question("mia", "transaction", "enter")) is None, (
            "not a candidate"
        )
    finally:
        CURRENT.reset(token)


def test_who_may_lists_the_people_allowed_now_and_the_posts_granted(runtime: Runtime) -> None:
    org = org_of(runtime, COUNTER)
    listing = who_may(org, Check("", "transaction", "authorize", time.time()))
    assert listing.ids == ("dan", "kay", "mia", "rob"), "tom's acting window is over"
    assert {p for p, _, _ in listing.posts} == {"director", "deputy", "manager"}
    assert ("manager", "营业经理", "Operations manager") in listing.posts
    assert subjects_to_decide(org, Check("", "transaction", "authorize", time.time())) >= len(listing.ids)
    past = Check("", "transaction", "authorize", dt.datetime(2020, 1, 15, 12, tzinfo=dt.UTC).timestamp())
    assert "tom" in subjects_allowed(org, past, by_duties(org)), "inside tom's acting window"


def test_what_a_subject_may_do_and_on_which_instances(runtime: Runtime) -> None:
    counter = org_of(runtime, COUNTER)
    assert actions_allowed(counter, Check("ann", "transaction", "", time.time()), by_duties(counter)) == [
        "view",
        "enter",
    ]
    assert actions_allowed(counter, Check("ann", "no_such_type", "", time.time()), by_duties(counter)) == []
    securities = org_of(runtime, "securities_branch")
    assert resources_allowed(
        securities, Check("qian_lu", "wealth_product", "sell", time.time()), by_duties(securities)
    ) == [
        "equity_growth_fund",
        "steady_income_fund",
    ]
    assert (
        resources_allowed(securities, Check("wu_di", "wealth_product", "sell", time.time()), by_duties(securities))
        == []
    )


def test_a_listing_is_kept_per_version_and_span_and_computed_once(runtime: Runtime) -> None:
    org = org_of(runtime, COUNTER)
    listings = Listings(max_entries=8, max_ids=1000, workers=1)
    now = time.time()
    computed: list[int] = []

    def compute() -> Listing:
        computed.append(1)
        return who_may(org, Check("", "transaction", "enter", now))

    try:
        key = listings.key(org, "who", Check("", "transaction", "enter", now))
        assert listings.key(org, "who", Check("", "transaction", "enter", now + 60)) == key, "no window edge between"
        in_toms_window = dt.datetime(2020, 1, 15, tzinfo=dt.UTC).timestamp()
        assert listings.key(org, "who", Check("", "transaction", "enter", in_toms_window)) != key
        assert listings.key(org, "who", Check("", "transaction", "view", now)) != key
        first = run_apart(listings.get(key, 10, compute))
        second = run_apart(listings.get(key, 10, compute))
        assert first == second and len(computed) == 1
    finally:
        listings.close()


def test_a_big_listing_beyond_the_workers_is_refused_with_a_retry_and_a_same_one_waits(runtime: Runtime) -> None:
    org = org_of(runtime, COUNTER)
    listings = Listings(max_entries=8, max_ids=1000, workers=1)
    release = threading.Event()
    started = threading.Event()

    def slow() -> Listing:
        started.set()
        release.wait(30)
        return Listing(("a",))

    async def scenario() -> None:
        one = listings.key(org, "who", Check("", "transaction", "enter", time.time()))
        other = listings.key(org, "who", Check("", "transaction", "view", time.time()))
        first = asyncio.ensure_future(listings.get(one, 5000, slow))
        await asyncio.sleep(0)
        with pytest.raises(Unavailable, match="DUTYLINE_QUERY_WORKERS=1") as refused:
            await listings.get(other, 5000, slow)
        assert refused.value.retry_after == 1
        same = asyncio.ensure_future(listings.get(one, 5000, lambda: pytest.fail("computed twice")))
        await asyncio.to_thread(started.wait, 30)
        release.set()
        assert await first == await same == Listing(("a",))

    try:
        run_apart(scenario())
    finally:
        release.set()
        listings.close()


def test_an_organisation_as_it_was_in_force_at_a_moment(runtime: Runtime) -> None:
    now = dt.datetime.now(dt.UTC)
    then = runtime.versions.compiled_at(COUNTER, now)
    assert then is not None and then.version == org_of(runtime, COUNTER).version
    assert runtime.versions.compiled_at(COUNTER, dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) is None
    assert runtime.versions.compiled_at("nowhere", now) is None


def test_a_persons_permissions_are_read_at_a_moment_in_the_organisations_time_zone(runtime: Runtime) -> None:
    queries = runtime.queries
    now = queries.organisation(COUNTER)
    held = queries.permissions(now, "ann", None)
    assert held.person == "ann" and held.policy_version == runtime.policies.current.version
    assert ("transaction", "enter") in {(p.resource, p.action) for p in held.permissions}
    assert ("transaction", "authorize") not in {(p.resource, p.action) for p in held.permissions}
    tz = org_of(runtime, COUNTER).document.timezone
    naive = queries.permissions(now, "tom", "2020-01-15T12:00")
    assert naive.at == dt.datetime(2020, 1, 15, 12, tzinfo=ZoneInfo(tz)).timestamp(), "naive: the org's zone"
    assert ("transaction", "authorize") in {(p.resource, p.action) for p in naive.permissions}, "tom was acting"
    with pytest.raises(Invalid) as bad:
        queries.permissions(now, "ann", "yesterday")
    assert bad.value.issues[0].path == "at" and "yesterday" in str(bad.value)
    with pytest.raises(NotFound, match="nobody"):
        queries.permissions(now, "nobody", None)


def test_a_query_as_of_a_moment_answers_on_the_version_then_and_names_a_bad_moment(runtime: Runtime) -> None:
    queries = runtime.queries
    asked = queries.organisation(COUNTER, dt.datetime.now(dt.UTC).isoformat())
    assert asked.then is not None and asked.policy_version == org_of(runtime, COUNTER).version
    assert asked.at(None) == asked.then, "`at` defaults to the as_of moment"
    with pytest.raises(NotFound, match="did not exist"):
        queries.organisation(COUNTER, "2000-01-01")
    with pytest.raises(Invalid) as bad:
        queries.organisation(COUNTER, "soon")
    assert bad.value.issues[0].path == "as_of"


def test_who_may_is_checked_against_the_catalogue_and_paged_from_one_listing(runtime: Runtime) -> None:
    queries = runtime.queries
    asked = queries.organisation(COUNTER)
    found = run_apart(queries.who(asked, "transaction", "authorize", None, time.time()))
    assert found.listing.ids == ("dan", "kay", "mia", "rob")
    page = queries.who_page(found, found.listing.ids[:2], "next")
    assert [p.id for p in page.people] == ["dan", "kay"] and page.total_people == 4 and page.next_token == "next"
    assert all(p.posts for p in page.people), "each with the posts they hold now"
    for resource, action, field in (("spaceship", "authorize", "resource"), ("transaction", "fly", "action")):
        with pytest.raises(Invalid) as bad:
            run_apart(queries.who(asked, resource, action, None, time.time()))
        assert bad.value.issues[0].path == field


def test_the_reporting_line_names_each_post_above_with_its_holders_and_vacancies(runtime: Runtime) -> None:
    line = runtime.queries.reporting_line(COUNTER, "teller", None)
    assert [step.post for step in line.line] == ["manager", "deputy", "director"]
    assert line.line[0].name.zh == "营业经理"
    assert {h.person for h in line.line[0].holders} == {"mia", "kay", "rob"}, "acting holders inside their window"
    assert {h.kind for h in line.line[0].holders if h.person != "mia"} == {"acting"}
    assert line.line[1].vacant and not line.line[1].holders
    assert [h.person for h in line.line[2].holders] == ["dan"]
    assert set(line.holders) == {"ann", "bob", "tom"}
    with pytest.raises(NotFound):
        runtime.queries.reporting_line(COUNTER, "astronaut", None)


def test_a_search_lists_what_evaluation_permits_and_a_subject_search_finds_its_organisation(runtime: Runtime) -> None:
    search = runtime.search
    asked = Question(
        subject_id="",
        resource_type="transaction",
        action="authorize",
        at=time.time(),
        context={"organisation": COUNTER},
    )
    located = search.subject_search_question(asked)
    assert located.organisation == COUNTER
    people = run_apart(search.ids("subject", located))
    assert set(people) == {"dan", "kay", "mia", "rob"}
    posts = run_apart(search.ids("subject_post", located))
    assert set(posts) == {"director", "deputy", "manager"}

    def ann_may(context: dict[str, object] | None) -> tuple[str, ...]:
        asked = Question(
            subject_id="ann", resource_type="transaction", action="", organisation=COUNTER, context=context
        )
        return run_apart(search.ids("action", asked))

    # `enter` is under a limit on context.amount: without an amount it is not permitted as such, so not listed
    assert ann_may(None) == ("view",)
    assert ann_may({"amount": 5000}) == ("view", "enter")
    assert ann_may({"amount": 50000}) == ("view",), "above the teller's limit"
    unknown = Question(subject_id="", resource_type="transaction", action="authorize", organisation="nowhere")
    assert run_apart(search.ids("subject", unknown)) == ()
