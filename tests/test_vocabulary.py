"""The closed vocabularies (admin permissions, audit events) are the ones the console speaks: every permission the
console asks about exists, and every audit event has a name in both languages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dutyline.engines.admin_policy import CATALOGUE, AdminPermission
from dutyline.store.audit import AuditEvent

CONSOLE = Path(__file__).resolve().parents[1] / "console"
pytestmark = pytest.mark.pure


def _catalogue(language: str) -> dict[str, str]:
    return dict(json.loads((CONSOLE / "i18n" / f"{language}.json").read_text(encoding="utf-8")))


def test_every_permission_the_console_asks_about_is_an_admin_permission() -> None:
    asked = set()
    for script in (CONSOLE / "js").rglob("*.js"):
        asked |= set(re.findall(r"['\"]([a-z_]+:[a-z]+)['\"]", script.read_text(encoding="utf-8")))
    assert asked, "the console asks about permissions"
    unknown = {p for p in asked if p not in {m.value for m in AdminPermission}}
    assert not unknown, unknown


def test_the_catalogue_of_the_admin_policy_is_made_of_the_permissions() -> None:
    assert {f"{r}:{a}" for r, actions in CATALOGUE.items() for a in actions} == {p.value for p in AdminPermission}
    assert AdminPermission.of("rule_pack", "write") is AdminPermission.RULE_PACK_WRITE
    with pytest.raises(ValueError):
        AdminPermission.of("rule_pack", "destroy")


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_audit_event_has_a_name_in_each_language(language: str) -> None:
    names = _catalogue(language)
    missing = [e.value for e in AuditEvent if not names.get(f"audit.event.{e.value}")]
    assert not missing, missing
    stale = [k for k in names if k.startswith("audit.event.") and k.removeprefix("audit.event.") not in set(AuditEvent)]
    assert not stale, stale


def test_the_chinese_names_of_audit_events_are_chinese() -> None:
    zh = _catalogue("zh")
    latin = [e.value for e in AuditEvent if re.search(r"[A-Za-z]", zh[f"audit.event.{e.value}"])]
    assert not latin, latin


def test_an_audit_event_made_of_parts_is_one_of_the_set() -> None:
    assert AuditEvent.of("posts", "created") is AuditEvent.POSTS_CREATED
    with pytest.raises(ValueError):
        AuditEvent.of("posts", "exploded")
