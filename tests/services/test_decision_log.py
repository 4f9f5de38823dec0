"""The decision log keeps the facts behind each decision's reasons and renders them again when it is read: the
reasons read back are the reasons the caller was given, in both languages, as of the version that decided."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dutyline.orgmodel.windows import moment
from dutyline.services import orgs
from dutyline.services.decision_log import DecisionLog
from dutyline.services.decisions import DecisionService, Question
from dutyline.services.log_reader import LogFilter, LogReader
from dutyline.services.policies import PolicyService
from dutyline.services.versions import Versions
from dutyline.store.tables import DecisionLogRow

REPO = Path(__file__).resolve().parents[2]
ORG = "ninger_branch"
IN_WINDOW = moment("2026-08-05T10:00:00+08:00")  # 陈红 acts as 营业经理 (operations manager) that day

QUESTIONS = [
    Question(
        "huang_wei", "transaction", "enter", ORG, context={"amount": 100, "currency": "CNY"}, at=IN_WINDOW
    ),  # granted by a duty
    Question("huang_wei", "transaction", "authorize", ORG, at=IN_WINDOW),  # forbidden by a duty
    Question(
        "chen_hong",
        "transaction",
        "authorize",
        ORG,
        context={"amount": 100, "currency": "CNY", "maker": "huang_wei"},
        at=IN_WINDOW,
    ),  # acting
    Question(
        "huang_wei", "transaction", "enter", ORG, context={"amount": 300_000, "currency": "CNY"}, at=IN_WINDOW
    ),  # a limit fires
    Question("huang_wei", "no_such_thing", "enter", ORG, at=IN_WINDOW),
    Question("nobody", "transaction", "enter", ORG, at=IN_WINDOW),
    Question("huang_wei", "transaction", "enter", "no_such_org", at=IN_WINDOW),
]


def _logged(sessions: sessionmaker[Session]) -> dict[str, DecisionLogRow]:
    with sessions() as session:
        return {row.id: row for row in session.execute(select(DecisionLogRow)).scalars()}


def test_reasons_read_from_the_log_are_the_reasons_given(sessions: sessionmaker[Session]) -> None:
    orgs.import_paths(
        sessions, [REPO / "policies" / "orgs" / f"{ORG}.yaml", REPO / "rules" / f"{ORG}.yaml"], author="test"
    )
    policies = PolicyService(sessions)
    policies.refresh()
    log = DecisionLog(sessions, flush_interval=0.05)
    log.start()
    try:
        answers = [DecisionService(policies, log).answer(q) for q in QUESTIONS]
        log.flush()
    finally:
        log.stop()
    codes = {a.decision.code for a in answers}
    assert {"granted", "denied_by_duty", "unknown_resource", "unknown_subject", "unknown_organisation"} <= codes
    assert any(r.acting for a in answers for r in a.reasons), "an acting holder's reason is among them"
    assert any(a.verdict.hits for a in answers), "a rule fired in one of them"
    rows = _logged(sessions)
    ordered = [rows[a.decision_id] for a in answers]
    versions = Versions(sessions)
    try:
        assert versions.logged_reasons(ordered) == [a.reasons for a in answers]
    finally:
        versions.close()
    granted = json.loads(ordered[0].reasons)
    assert granted == [{"code": "granted", "post": "teller", "duty": "post:teller#1"}], "facts only, no text"


def test_logged_reasons_name_things_as_they_were_when_decided(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    source = REPO / "policies" / "orgs" / f"{ORG}.yaml"
    orgs.import_paths(sessions, [source], author="test")
    policies = PolicyService(sessions)
    policies.refresh()
    log = DecisionLog(sessions, flush_interval=0.05)
    log.start()
    try:
        before = DecisionService(policies, log).answer(QUESTIONS[0])
        log.flush()
    finally:
        log.stop()
    text = source.read_text(encoding="utf-8")
    renamed = tmp_path / f"{ORG}.yaml"
    assert "综合经办柜员" in text
    renamed.write_text(text.replace("综合经办柜员", "柜员(改名后)"), encoding="utf-8")
    orgs.import_paths(sessions, [renamed], author="test")
    versions = Versions(sessions)
    try:
        [reasons] = versions.logged_reasons([_logged(sessions)[before.decision_id]])
    finally:
        versions.close()
    assert reasons == before.reasons and "综合经办柜员" in reasons[0].zh


def test_the_log_reads_back_newest_first_a_page_at_a_time_in_full_or_in_summary(
    sessions: sessionmaker[Session],
) -> None:
    orgs.import_paths(
        sessions, [REPO / "policies" / "orgs" / f"{ORG}.yaml", REPO / "rules" / f"{ORG}.yaml"], author="test"
    )
    policies = PolicyService(sessions)
    policies.refresh()
    log = DecisionLog(sessions, flush_interval=0.05)
    log.start()
    try:
        answers = [DecisionService(policies, log).answer(q) for q in QUESTIONS[:4]]
        log.flush()
    finally:
        log.stop()
    newest_first = [a.decision_id for a in reversed(answers)]
    versions = Versions(sessions)
    reader = LogReader(sessions, versions)
    try:
        where = LogFilter(organisation=ORG)
        first = reader.page(where, 3)
        assert [d.decision_id for d in first.items] == newest_first[:3] and first.following is not None
        last = reader.page(where, 3, first.following)
        assert [d.decision_id for d in last.items] == newest_first[3:] and last.following is None
        entry = last.items[0]
        assert (entry.decision, entry.code, entry.reasons) == (answers[0].outcome, "granted", answers[0].reasons)
        assert entry.request.context == {"amount": 100, "currency": "CNY"} and entry.request.at == IN_WINDOW
        summaries = reader.summaries(where, 10)
        assert [s.decision_id for s in summaries.items] == newest_first and summaries.following is None
        assert reader.page(LogFilter(organisation=ORG, subject="chen_hong"), 10).items[0].subject == "chen_hong"
    finally:
        versions.close()
