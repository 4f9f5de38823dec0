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
        )
