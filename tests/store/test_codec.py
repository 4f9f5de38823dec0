"""What is stored is what a refresh reads: every writer checks that the document reads back as given (a NaN
limit used to be stored as null, accepted, and made every later refresh fail)."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import func, select

from dutyline.errors import Invalid, Unreadable
from dutyline.orgmodel.document import Organisation
from dutyline.orgmodel.validate import parse_organisation
from dutyline.rulemodel.document import RulePack
from dutyline.services import orgs
from dutyline.store import codec
from dutyline.store import orgs as org_store
from dutyline.store import rule_packs as pack_store
from dutyline.store.tables import OrgVersionRow

REPO = Path(__file__).resolve().parents[2]
SALES = REPO / "policies" / "orgs" / "sales_company.yaml"


def pack_with_limit(value: float) -> RulePack:
    """A pack built past validation (as a bug in a writer could), its one limit `value`."""
    rule = {
        "kind": "limit",
        "id": "cap",
        "name": {"zh": "上限", "en": "cap"},
        "attribute": "context.amount",
        "applies_to": {"resources": ["expense"], "actions": ["submit"]},
        "limits": {"sales_representative": 1000},
    }
    pack = msgspec.convert({"org": "sales_company", "rules": [rule]}, RulePack)
    pack.rules[0].limits["sales_representative"] = value  # type: ignore[union-attr]
    return pack


def versions(sessions) -> int:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return session.execute(select(func.count()).select_from(OrgVersionRow)).scalar_one()


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_rule_pack_that_would_not_read_back_is_not_stored_and_the_error_names_the_field(
    sessions, value: float
) -> None:  # type: ignore[no-untyped-def]
    orgs.import_paths(sessions, [SALES], author="test")
    before = versions(sessions)
    with pytest.raises(Invalid) as caught, sessions.begin() as session:
        pack_store.save(session, [("caps", pack_with_limit(value))], author="test")
    assert caught.value.issues[0].path == "rules[0].limits.sales_representative", caught.value.issues
    assert versions(sessions) == before


def test_an_organisation_that_would_not_read_back_is_not_stored(sessions) -> None:  # type: ignore[no-untyped-def]
    document = msgspec.to_builtins(parse_organisation(SALES.read_text(encoding="utf-8"), str(SALES)).organisation)
    document["people"][0]["attributes"] = {"risk_score": math.nan}
    with pytest.raises(Invalid) as caught, sessions.begin() as session:
        org_store.save(session, [msgspec.convert(document, Organisation)], author="test")
    assert caught.value.issues[0].path == "people[0].attributes.risk_score", caught.value.issues
    assert versions(sessions) == 0


def test_what_reads_back_as_given_is_stored(sessions) -> None:  # type: ignore[no-untyped-def]
    orgs.import_paths(sessions, [SALES], author="test")
    pack = pack_with_limit(1e17)
    with sessions.begin() as session:
        [saved] = pack_store.save(session, [("caps", pack)], author="test")
    with sessions() as session:
        [stored] = [p for p in pack_store.current(session, "sales_company") if p.name == "caps"]
    assert saved.changed and stored.pack == pack and stored.error is None


def test_an_unreadable_version_is_reported_by_the_readers_a_refresh_uses(sessions) -> None:  # type: ignore[no-untyped-def]
    orgs.import_paths(sessions, [SALES], author="test")
    with sessions.begin() as session:
        session.add(
            OrgVersionRow(
                org_id="sales_company",
                kind="rules",
                name="next",
                document='{"org": "sales_company", "rules": [{"kind": "fx"}]}',
                digest="x",
                author="release-next",
                comment="",
                created_at=dt.datetime.now(dt.UTC),
            )
        )
    with sessions() as session:
        [broken] = [p for p in pack_store.current(session, "sales_company") if p.name == "next"]
        head = org_store.head(session, "sales_company")
    assert (
        broken.pack is None
        and "cannot be read by this release" in (broken.error or "")
        and "fx" in (broken.error or "")
    )
    assert head.document is not None
    with pytest.raises(Unreadable):
        codec.decode(b'{"org": "x", "rules": [{"kind": "fx"}]}', RulePack, "a pack")
