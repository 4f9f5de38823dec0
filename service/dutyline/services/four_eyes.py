"""Four-eyes: which changes to an organisation wait for a second person. The one place that says so.

Rule packs (`DUTYLINE_RULES_FOUR_EYES`) and org charts (`DUTYLINE_ORG_FOUR_EYES`: the document, its entities,
creating and deleting the organisation) each have a default for every organisation, and each organisation may
set its own (`PUT /admin/orgs/{org}/settings`). `Editor` asks `required` inside the transaction that would
write the change, so no way of writing (now, scheduled, restored, imported through the API) can skip it;
`dutyline import` asks it too and refuses what would need a second person.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from dutyline.store import history


def kind_of(target: str) -> str:
    """What an edit's target is, for the admin policy and four-eyes: `rule_pack` or `org_chart`."""
    return "rule_pack" if target == "rules" or target.startswith("rules/") else "org_chart"


@dataclass(frozen=True, slots=True)
class Settings:
    """An organisation's four-eyes switches as in force (its own, else the defaults)."""

    rules: bool
    org: bool

    def applies_to(self, target: str) -> bool:
        return self.rules if kind_of(target) == "rule_pack" else self.org


@dataclass(frozen=True, slots=True)
class FourEyes:
    """The defaults, from the settings; `settings` and `required` read the organisation's own switches."""

    rules: bool = False
    org: bool = False

    def settings(self, session: Session, org_id: str) -> Settings:
        rules, org = history.four_eyes_settings(session, org_id)
        return Settings(self.rules if rules is None else rules, self.org if org is None else org)

    def required(self, session: Session, org_id: str, target: str) -> bool:
        """Whether a change of `target` (`org`, `posts/teller`, `rules/limits` …) in `org_id` needs a second person."""
        return self.settings(session, org_id).applies_to(target)
