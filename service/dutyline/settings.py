"""Settings, read from `DUTYLINE_*` environment variables. The only module that reads the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dutyline.content import content_root


def _default_database_url() -> str:
    return f"sqlite:///{Path.cwd() / 'dutyline.db'}"


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = field(default_factory=_default_database_url)
    host: str = "127.0.0.1"
    port: int = 8000
    # Org files loaded into an empty database at start-up, so that a fresh `dutyline serve` has the seed.
    seed_dir: Path | None = field(default_factory=lambda: content_root() / "policies")
    # How often a replica looks for changes other replicas made (seconds).
    refresh_interval: float = 1.0
    log_level: str = "info"
    # Fraction of decisions written to the decision log, and how long they are kept.
    decision_log_sample: float = 1.0
    decision_log_retention_days: float = 30.0
    # How long a check with `at_least_version` waits for this process to catch up before a 503.
    consistency_wait: float = 2.0
    # Limits on what one request may carry.
    max_body_bytes: int = 1_048_576
    max_batch: int = 1000

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        base = cls()
        seed = env.get("DUTYLINE_SEED_DIR")
        return cls(
            database_url=env.get("DUTYLINE_DATABASE_URL") or base.database_url,
            host=env.get("DUTYLINE_HOST", base.host),
            port=int(env.get("DUTYLINE_PORT", base.port)),
            seed_dir=base.seed_dir if seed is None else (Path(seed) if seed else None),
            refresh_interval=float(env.get("DUTYLINE_REFRESH_INTERVAL", base.refresh_interval)),
            log_level=env.get("DUTYLINE_LOG_LEVEL", base.log_level),
            decision_log_sample=float(env.get("DUTYLINE_DECISION_LOG_SAMPLE", base.decision_log_sample)),
            decision_log_retention_days=float(
                env.get("DUTYLINE_DECISION_LOG_RETENTION_DAYS", base.decision_log_retention_days)
            ),
            consistency_wait=float(env.get("DUTYLINE_CONSISTENCY_WAIT", base.consistency_wait)),
            max_body_bytes=int(env.get("DUTYLINE_MAX_BODY_BYTES", base.max_body_bytes)),
            max_batch=int(env.get("DUTYLINE_MAX_BATCH", base.max_batch)),
        )
