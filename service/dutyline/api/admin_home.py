"""What the console's home page and its header need of an organisation: the overview, the search box, and one
entry of the decision log or the audit trail in full (the detail views). See docs/admin-api.md."""

from __future__ import annotations

import asyncio
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter

from dutyline.api.guards import requires, signed_in
from dutyline.api.openapi import ADMIN, answers
from dutyline.engines.admin_policy import ALL, AdminPermission
from dutyline.services.access import AccessService, Caller
from dutyline.services.audit_trail import AuditEntry, AuditReader
from dutyline.services.log_reader import LoggedDecision, LogReader
from dutyline.services.org_search import MAX_QUERY, MAX_RESULTS, OrgSearch, OrgSearchResults
from dutyline.services.overview import OrgOverview, Overview

TAGS = ["admin: organisations"]


class HomeController(Controller):
    path = "/admin/orgs/{org_id:str}"
    tags = TAGS

    @get(
        "/overview",
        summary="The organisation at a glance: policy state, what waits, vacancies, breaches, this week's acting",
        responses=answers({200: OrgOverview}, *ADMIN, 404),
        guards=[requires(AdminPermission.ORG_CHART_READ)],
    )
    async def overview(
        self,
        overview: NamedDependency[Overview],
        access: NamedDependency[AccessService],
        caller: NamedDependency[Caller],
        org_id: FromPath[str],
    ) -> OrgOverview:
        with_changes = access.allowed(caller, AdminPermission.CHANGE_READ, org_id)
        return await asyncio.to_thread(overview.of, org_id, with_changes)

    @get(
        "/search",
        summary="People, posts, departments, duties, resources and rules whose id or name contains `q`",
        responses=answers({200: OrgSearchResults}, *ADMIN, 404),
        guards=[requires(AdminPermission.ORG_CHART_READ)],
    )
    async def search(
        self,
        org_search: NamedDependency[OrgSearch],
        access: NamedDependency[AccessService],
        caller: NamedDependency[Caller],
        org_id: FromPath[str],
        q: Annotated[str, Parameter(description=f"What to look for: 1 to {MAX_QUERY} characters (Chinese or English)")],
        limit: Annotated[int, Parameter(ge=1, le=MAX_RESULTS)] = 20,
    ) -> OrgSearchResults:
        with_rules = access.allowed(caller, AdminPermission.RULE_PACK_READ, org_id)
        return await asyncio.to_thread(org_search.find, org_id, q, limit, with_rules)

    @get(
        "/decisions/{decision_id:str}",
        summary="One decision of the organisation's log in full: request, reasons, rules fired, approval, version",
        responses=answers({200: LoggedDecision}, *ADMIN, 404),
        guards=[requires(AdminPermission.DECISION_LOG_READ)],
    )
    async def decision(
        self, log_reader: NamedDependency[LogReader], org_id: FromPath[str], decision_id: FromPath[str]
    ) -> LoggedDecision:
        return await asyncio.to_thread(log_reader.one, org_id, decision_id)


class AuditEntryController(Controller):
    path = "/admin/audit"
    tags = ["admin: access"]

    @get(
        "/{seq:int}",
        summary="One entry of the audit trail (auditors of its organisation; system administrators for the rest)",
        responses=answers({200: AuditEntry}, *ADMIN, 404),
        guards=[signed_in],
    )
    async def audit_entry(
        self,
        audit_trail: NamedDependency[AuditReader],
        access: NamedDependency[AccessService],
        caller: NamedDependency[Caller],
        seq: Annotated[int, Parameter(ge=0, le=2**31 - 1)],
    ) -> AuditEntry:
        entry = await asyncio.to_thread(audit_trail.one, seq)
        # an entry of no organisation (a sign-in, a user, a token) is a system administrator's to read
        access.require(caller, AdminPermission.AUDIT_READ, entry.organisation or ALL)
        return entry


ROUTES = [HomeController, AuditEntryController]
