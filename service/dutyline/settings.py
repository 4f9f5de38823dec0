"""Settings, read from `DUTYLINE_*` environment variables. The only module that reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
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
    # Per logged decision, the most bytes of each of its context, subject and resource properties kept in the
    # decision log; beyond it the part is stored truncated and marked so. Parts shared by several decisions
    # (a batch's top-level context) are stored once.
    decision_log_max_context_bytes: int = 65_536
    # How long a check with `at_least_version` waits for this process to catch up before a 503, and how many
    # such checks may wait at once (beyond it: 503 with Retry-After).
    consistency_wait: float = 2.0
    consistency_waiters: int = 256
    # Queries over a whole organisation (who may, AuthZEN searches): computed results kept for paging (at most
    # this many results, holding at most this many ids in all), and how many big ones may be computed at once
    # off the event loop (beyond it: 503 with Retry-After).
    query_cache_entries: int = 256
    query_cache_ids: int = 1_000_000
    query_workers: int = 2
    # Limits on what one request may carry.
    max_body_bytes: int = 1_048_576
    max_batch: int = 1000
    # How long an approval waits at one level before it moves up its chain (seconds; env: 24h, 30m, 90s …).
    approval_sla: float = 24 * 3600.0
    # How often the escalation scheduler looks for overdue cases and approvals (seconds).
    escalation_interval: float = 5.0
    # Where notifications are POSTed (empty: they stay in the outbox for GET /v1/notifications).
    webhook_url: str = ""
    # PostgreSQL: apply other replicas' changes when they commit (LISTEN/NOTIFY; needs a direct or
    # session-pooled connection). Off, or on SQLite, the periodic refresh above is the only mechanism.
    listen: bool = True
    # Server processes `dutyline serve` starts on this machine (each a full replica; see docs/deployment.md).
    workers: int = 1
    # Benchmarks only: add `POST /bench/echo`, a trivial endpoint in the same app (the HTTP ceiling).
    bench_echo: bool = False
    # Decision endpoints (AuthZEN, /v1/*) need `Authorization: Bearer` with a decide or admin token.
    # Off by default; the admin API (/admin/*) always needs authentication.
    require_auth: bool = False
    # How long a console login lasts (seconds; env: 8h, 30m …).
    session_ttl: float = 8 * 3600.0
    # Rule pack changes wait for a second person's approval in every organisation (organisations can
    # also turn it on for themselves).
    rules_four_eyes: bool = False
    # Logins tried per username and address within `login_window` seconds before further ones are refused (429);
    # counted in the database, so the limit holds across replicas and workers.
    login_attempts: int = 5
    login_window: float = 60.0
    # Keys the digests that stand for typed usernames: in the login throttle, and in the audit trail for a name
    # that is no user (it may be a password typed into the wrong field). Empty: a key generated once and kept in
    # the database. Set it (the same on every replica) to keep the key out of the database.
    secret_key: str = field(default="", repr=False)

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
            decision_log_max_context_bytes=_at_least(
                env, "DUTYLINE_DECISION_LOG_MAX_CONTEXT_BYTES", base.decision_log_max_context_bytes, 256
            ),
            consistency_wait=float(env.get("DUTYLINE_CONSISTENCY_WAIT", base.consistency_wait)),
            consistency_waiters=_at_least(env, "DUTYLINE_CONSISTENCY_WAITERS", base.consistency_waiters, 0),
            query_cache_entries=_at_least(env, "DUTYLINE_QUERY_CACHE_ENTRIES", base.query_cache_entries, 0),
            query_cache_ids=_at_least(env, "DUTYLINE_QUERY_CACHE_IDS", base.query_cache_ids, 0),
            query_workers=_at_least(env, "DUTYLINE_QUERY_WORKERS", base.query_workers, 1),
            max_body_bytes=int(env.get("DUTYLINE_MAX_BODY_BYTES", base.max_body_bytes)),
            max_batch=int(env.get("DUTYLINE_MAX_BATCH", base.max_batch)),
            approval_sla=seconds(env.get("DUTYLINE_APPROVAL_SLA", ""), base.approval_sla),
            escalation_interval=seconds(env.get("DUTYLINE_ESCALATION_INTERVAL", ""), base.escalation_interval),
            webhook_url=env.get("DUTYLINE_WEBHOOK_URL", base.webhook_url),
            workers=int(env.get("DUTYLINE_WORKERS", base.workers)),
            listen=env.get("DUTYLINE_LISTEN", "1").strip().lower() not in ("0", "false", "no", "off"),
            bench_echo=env.get("DUTYLINE_BENCH_ECHO", "") not in ("", "0", "false"),
            require_auth=_flag(env.get("DUTYLINE_REQUIRE_AUTH", "")),
            session_ttl=seconds(env.get("DUTYLINE_SESSION_TTL", ""), base.session_ttl),
            rules_four_eyes=_flag(env.get("DUTYLINE_RULES_FOUR_EYES", "")),
            login_attempts=int(env.get("DUTYLINE_LOGIN_ATTEMPTS", base.login_attempts)),
            login_window=seconds(env.get("DUTYLINE_LOGIN_WINDOW", ""), base.login_window),
            secret_key=env.get("DUTYLINE_SECRET_KEY", base.secret_key),
        )


def _at_least(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    """An integer setting of at least `minimum`; the error names the variable."""
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name}: not a whole number: {text!r}") from None
    if value < minimum:
        raise ValueError(f"{name}: must be at least {minimum}, got {value}")
    return value


def _flag(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def seconds(text: str, default: float) -> float:
    """A duration setting: plain seconds (`5`, `0.2`) or with a unit (`90s`, `30m`, `24h`, `2d`)."""
    text = text.strip()
    if not text:
        return default
    unit = _UNITS.get(text[-1])
    try:
        return float(text[:-1]) * unit if unit is not None else float(text)
    except ValueError:
        raise ValueError(f"not a duration: {text!r} (use seconds, or 30m, 24h, 2d)") from None
