"""What a running process holds: settings, the database, and the current compiled policy."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from dutyline.services import orgs
from dutyline.services.access import AccessService
from dutyline.services.access_requests import AccessRequests, Callbacks, Requestable
from dutyline.services.approvals import ApprovalService
from dutyline.services.audit_trail import AuditReader
from dutyline.services.cases import CaseService
from dutyline.services.changes import ChangeFeed
from dutyline.services.consistency import VersionWaits
from dutyline.services.decision_log import DecisionLog
from dutyline.services.decisions import DecisionService
from dutyline.services.editing import Editor
from dutyline.services.escalation import Escalator
from dutyline.services.four_eyes import FourEyes
from dutyline.services.ledger import Ledger
from dutyline.services.listener import ChangeListener
from dutyline.services.listings import Listings
from dutyline.services.log_reader import LogReader
from dutyline.services.notifications import Obligations, Outbox
from dutyline.services.org_search import OrgSearch
from dutyline.services.overview import Overview
from dutyline.services.policies import PolicyService
from dutyline.services.queries import Queries
from dutyline.services.search import Search
from dutyline.services.versions import Versions
from dutyline.settings import Settings
from dutyline.store import access as access_store
from dutyline.store import notify
from dutyline.store import orgs as org_store
from dutyline.store.db import exclusive, make_engine, session_factory, upgrade

if TYPE_CHECKING:
    from dutyline.services.tracing import Tracing

log = logging.getLogger("dutyline")


def page_key(sessions: sessionmaker[Session], secret_key: str, purpose: str = "page") -> bytes:
    """The key of page tokens (`purpose` "page"; "binding": of the access request profile's binding tokens): derived
    from the settings' secret key when there is one, else a secret generated once and kept in the database. Shared,
    not per process: every replica must accept the others' tokens."""
    if secret_key:
        return hmac.new(secret_key.encode(), f"dutyline {purpose} tokens".encode(), hashlib.sha256).digest()
    with sessions.begin() as session:
        now = dt.datetime.now(dt.UTC)
        return access_store.server_secret(session, f"{purpose}_token", secrets.token_hex(32), now).encode()


@dataclass(slots=True)
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    policies: PolicyService
    decision_log: DecisionLog
    decisions: DecisionService
    ledger: Ledger  # usage totals and approval history the rules read; the decision service's facts
    approvals: ApprovalService
    cases: CaseService
    outbox: Outbox  # the notifications approvals, cases and obligations wrote, as the webhook sends them
    log_reader: LogReader  # the decision log read back
    escalation: Escalator  # the scheduler thread: escalations, obligations, webhook
    # The admin side: users, sessions, tokens and the admin policy; editing; history.
    access: AccessService
    audit_trail: AuditReader
    editor: Editor
    versions: Versions
    # Checks waiting for a policy version (`at_least_version`), and whole-organisation listings.
    waits: VersionWaits
    listings: Listings
    queries: Queries
    search: Search
    # The change stream: each new policy version, from this replica or another, to its subscribers.
    changes: ChangeFeed
    # PostgreSQL only: applies other replicas' changes as soon as they commit (LISTEN/NOTIFY).
    listener: ChangeListener | None
    # The key of page tokens (`api.paging`), the same on every replica (`page_key`).
    page_key: bytes
    # The AuthZEN access request profile: requestable denials, access requests and their tasks.
    access_requests: AccessRequests
    # The console's home page of an organisation, and its search box.
    overview: Overview
    org_search: OrgSearch

    @classmethod
    def start(cls, settings: Settings, tracing: Tracing | None = None) -> Runtime:
        """Migrate the database, load the seed into an empty one, compile the stored policy, start the log. With
        `tracing`, decisions, their rules and database work are spanned (services/tracing.py)."""
        engine = make_engine(settings.database_url)
        if tracing is not None:
            tracing.trace_engine(engine)
        with exclusive(engine):  # replicas and workers start together: one migrates, the others wait
            upgrade(engine, secret_key=settings.secret_key)
        sessions = session_factory(engine, settings.secret_key)
        policies = PolicyService(sessions, bounds=settings.bounds)
        decision_log = DecisionLog(
            sessions,
            sample_rate=settings.decision_log_sample,
            retention_days=settings.decision_log_retention_days,
            max_part_bytes=settings.decision_log_max_context_bytes,
        )
        ledger = Ledger(sessions, policies)
        obligations = Obligations()
        decisions = (DecisionService if tracing is None else tracing.decisions)(
            policies, decision_log, facts=ledger, obligations=obligations.put
        )
        approvals = ApprovalService(
            sessions,
            policies,
            ledger,
            decisions,
            settings.approval_sla,
            settings.approval_validity,
            settings.approval_max_uses,
        )
        cases = CaseService(sessions, policies)
        access_requests = AccessRequests(
            sessions,
            policies,
            approvals,
            Requestable(page_key(sessions, settings.secret_key, "binding"), settings.access_request_window),
            settings.callback_allow,
            settings.callback_secret,
        )
        escalation = Escalator(
            sessions,
            cases,
            approvals,
            obligations,
            settings.escalation_interval,
            webhook_url=settings.webhook_url,
            callbacks=(
                Callbacks(sessions, settings.callback_secret, settings.callback_timeout, settings.callback_allow)
                if settings.callback_secret
                else None
            ),
        )
        access = AccessService(
            sessions,
            settings.session_ttl,
            settings.login_attempts,
            settings.login_window,
            settings.secret_key,
            policies,
            login_attempts_per_address=settings.login_attempts_per_address,
            hash_concurrency=settings.password_hash_concurrency,
            hash_wait=settings.password_hash_wait,
        )
        waits = VersionWaits(policies, settings.consistency_waiters)
        versions = Versions(sessions)
        listings = Listings(settings.query_cache_entries, settings.query_cache_ids, settings.query_workers)
        changes = ChangeFeed(
            sessions,
            max_streams=settings.changes_streams,
            max_per_caller=settings.changes_streams_per_caller,
            keepalive=settings.changes_keepalive,
            max_entities=settings.changes_max_entities,
        )

        def applied(version: int) -> None:  # the policy service is made first: the waits and the stream watch it
            waits.applied(version)
            changes.applied(version)

        policies.applied = applied
        versions = Versions(sessions)
        listener = (
            ChangeListener(settings.database_url, policies)
            if settings.listen and notify.is_postgres(settings.database_url)
            else None
        )
        runtime = cls(
            settings,
            engine,
            sessions,
            policies,
            decision_log,
            decisions,
            ledger,
            approvals,
            cases,
            Outbox(sessions),
            LogReader(sessions, versions),
            escalation,
            access=access,
            audit_trail=AuditReader(sessions),
            editor=Editor(sessions, policies, FourEyes(settings.rules_four_eyes, settings.org_four_eyes)),
            versions=versions,
            waits=waits,
            listings=listings,
            queries=Queries(policies, versions, listings),
            search=Search(decisions, listings),
            changes=changes,
            listener=listener,
            page_key=page_key(sessions, settings.secret_key),
            access_requests=access_requests,
            overview=Overview(sessions, policies, versions),
            org_search=OrgSearch(sessions, policies),
        )
        runtime.access.refresh()
        if not runtime.access.users():
            log.warning(
                "no console users yet: create the first administrator with "
                "`dutyline admin create NAME --role system_admin` (it asks for the password), then open /console"
            )
        runtime.seed_if_empty()
        runtime.policies.refresh()
        ledger.refresh()
        decision_log.start()
        escalation.start()
        if listener is not None:
            listener.start()
        return runtime

    def seed_if_empty(self) -> None:
        seed = self.settings.seed_dir
        if seed is None or not seed.is_dir():
            return
        with exclusive(self.engine):  # the first of several starting processes seeds; the others find it done
            with self.sessions() as session:
                if org_store.latest_version(session) > 0:
                    return
            # the organisations, and the rule packs kept beside `policies/` (rules/<org>.yaml). Not through
            # four-eyes: only an empty database is seeded, so nothing is changed, and nobody could approve yet.
            paths = [seed / "orgs"] + [p for p in sorted((seed.parent / "rules").glob("*.yaml")) if p.is_file()]
            results = orgs.import_paths(
                self.sessions,
                paths,
                author="seed",
                comment=f"seed from {seed}",
                max_scalars=self.settings.max_yaml_scalars,
                how="seeded",
            )
        log.info("loaded %d seed organisation(s) and rule pack(s) from %s", len(results), seed.parent)

    def database_ok(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except Exception:  # any driver error means "not reachable"; readiness reports it
            return False

    def close(self) -> None:
        self.escalation.stop()
        if self.listener is not None:
            self.listener.stop()
        self.decision_log.stop()
        self.versions.close()
        self.listings.close()
        self.engine.dispose()
