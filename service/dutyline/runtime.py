"""What a running process holds: settings, the database, and the current compiled policy."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from dutyline.services import orgs
from dutyline.services.decision_log import DecisionLog
from dutyline.services.decisions import DecisionService
from dutyline.services.policies import PolicyService
from dutyline.settings import Settings
from dutyline.store import orgs as org_store
from dutyline.store.db import make_engine, session_factory, upgrade

log = logging.getLogger("dutyline")


@dataclass(slots=True)
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    policies: PolicyService
    decision_log: DecisionLog
    decisions: DecisionService

    @classmethod
    def start(cls, settings: Settings) -> Runtime:
        """Migrate the database, load the seed into an empty one, compile the stored policy, start the log."""
        engine = make_engine(settings.database_url)
        upgrade(engine)
        sessions = session_factory(engine)
        policies = PolicyService(sessions)
        decision_log = DecisionLog(
            sessions,
            sample_rate=settings.decision_log_sample,
            retention_days=settings.decision_log_retention_days,
        )
        runtime = cls(settings, engine, sessions, policies, decision_log, DecisionService(policies, decision_log))
        runtime.seed_if_empty()
        runtime.policies.refresh()
        decision_log.start()
        return runtime

    def seed_if_empty(self) -> None:
        seed = self.settings.seed_dir
        if seed is None or not seed.is_dir():
            return
        with self.sessions() as session:
            if org_store.latest_version(session) > 0:
                return
        results = orgs.import_paths(self.sessions, [seed / "orgs"], author="seed", comment=f"seed from {seed}")
        log.info("loaded %d seed organisation(s) from %s", len(results), seed)

    def database_ok(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except Exception:  # any driver error means "not reachable"; readiness reports it
            return False

    def close(self) -> None:
        self.decision_log.stop()
        self.engine.dispose()
