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
class Bounds:
    """What one request's attributes and one rule pack may hold before the rules engine refuses them.

    A value a rule reads beyond these makes that rule fail closed (deny, or needs_approval where the rule's effect
    is that), with a reason naming the attribute; a pack beyond them is refused when it is written. Every bound
    is listed in docs/hardening.md."""

    # Nesting of one attribute value a rule reads (a list in a list is depth 2), its items in all, its JSON size.
    value_depth: int = 8
    value_items: int = 1000
    value_bytes: int = 16_384
    # Rules in one pack, and the ruleset JSON one condition compiles to (durable_rules registers it under the
    # process-wide engine lock, so its size bounds how long one registration can stop every decision).
    pack_rules: int = 500
    condition_bytes: int = 32_768


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
    # The change stream (GET /v1/changes): streams open at once in one process (beyond it: 503 with Retry-After),
    # seconds between keep-alive comments, and the most entities one event lists (beyond: `entities_truncated`).
    changes_streams: int = 100
    # Of them, how many one caller may hold (a token, a console user; anonymous callers by their address).
    changes_streams_per_caller: int = 10
    changes_keepalive: float = 15.0
    changes_max_entities: int = 1000
    # Limits on what one request may carry.
    max_body_bytes: int = 1_048_576
    max_batch: int = 1000
    # How long an approval waits at one level before it moves up its chain (seconds; env: 24h, 30m, 90s …).
    approval_sla: float = 24 * 3600.0
    # How long an approval may be presented after it was approved (seconds; env: 24h, 30m …), and the most uses
    # one approval may be opened with (each decision allowed through it takes one; the default is a single use).
    approval_validity: float = 24 * 3600.0
    approval_max_uses: int = 100
    # How often the escalation scheduler looks for overdue cases and approvals (seconds).
    escalation_interval: float = 5.0
    # Where notifications are POSTed (empty: they stay in the outbox for GET /v1/notifications).
    webhook_url: str = ""
    # The AuthZEN access request profile (docs/authzen-profiles.md): how long a requestable denial may be turned into
    # an access request (seconds); the callback hosts allowed although they are loopback or private addresses
    # (comma-separated; by default such callbacks are refused); the key callbacks are signed with (HMAC-SHA256 of the
    # body; without one, a submission asking for a callback is refused: callbacks must be authenticated).
    access_request_window: float = 600.0
    callback_allow: tuple[str, ...] = ()
    callback_secret: str = field(default="", repr=False)
    # The longest one callback may take in all (connecting, sending, reading the answer's head; seconds): the
    # scheduler sends callbacks one after the other, so a slow receiver holds it this long at most.
    callback_timeout: float = 5.0
    # PostgreSQL: apply other replicas' changes when they commit (LISTEN/NOTIFY; needs a direct or
    # session-pooled connection). Off, or on SQLite, the periodic refresh above is the only mechanism.
    listen: bool = True
    # Server processes `dutyline serve` starts on this machine (each a full replica; see docs/deployment.md).
    workers: int = 1
    # Benchmarks only: add `POST /bench/echo`, a trivial endpoint in the same app (the HTTP ceiling).
    bench_echo: bool = False
    # Decision endpoints (AuthZEN, /v1/*) need `Authorization: Bearer` with a decide or admin token, or a console
    # session. Off by default; the admin API (/admin/*) always needs authentication.
    require_auth: bool = False
    # With require_auth off, the decision API still refuses anonymous callers when the server is bound to an
    # address other than loopback (0.0.0.0, ::, a LAN address) or a request reaches it on one, unless this is on.
    allow_anonymous: bool = False
    # How long a console login lasts (seconds; env: 8h, 30m …).
    session_ttl: float = 8 * 3600.0
    # Rule pack changes wait for a second person's approval in every organisation (organisations can
    # also turn it on for themselves).
    rules_four_eyes: bool = False
    # Logins tried per username and address within `login_window` seconds before further ones are refused (429);
    # counted in the database, so the limit holds across replicas and workers.
    login_attempts: int = 5
    login_window: float = 60.0
    # Logins tried from one address (whatever the usernames) within `login_window` before further ones are refused;
    # checked before any password is hashed. A successful login gives its try back.
    login_attempts_per_address: int = 50
    # Password hashes (argon2id, 64 MiB each) computed at once in one process, and how long a login waits for one
    # (seconds) before a 503.
    password_hash_concurrency: int = 2
    password_hash_wait: float = 10.0
    # Keys the digests that stand for typed usernames: in the login throttle, and in the audit trail for a name
    # that is no user (it may be a password typed into the wrong field); and the MAC of the audit trail's head
    # anchor. Empty: keys generated once and kept in the database. Set it (the same on every replica and wherever
    # `dutyline` commands write) to keep the keys out of the database.
    secret_key: str = field(default="", repr=False)
    bounds: Bounds = field(default_factory=Bounds)
    # Org chart changes (documents, their entities, creating and deleting organisations) wait for a second
    # person's approval in every organisation (organisations can also turn it on for themselves). Off by default.
    org_four_eyes: bool = False
    # The most scalars a YAML document (an admin body, a file `dutyline import` reads) may hold once its aliases
    # are expanded; a scalar counts once per started 100 characters. The largest seed organisation holds 2,135.
    max_yaml_scalars: int = 100_000
    # Which rule backend runs the rules: "durable_rules" (the engine) or "reference" (the same semantics in pure
    # Python; engines/rulehost/reference.py).
    rules_backend: str = "durable_rules"
    # OpenTelemetry traces (docs/deployment.md, Observability): off unless asked for. On, spans of the request, the
    # decision, its rules and its database work are exported over OTLP/HTTP to `otel_endpoint` (empty: the OTLP
    # default, http://localhost:4318/v1/traces), as service `otel_service_name`. A bad endpoint leaves tracing off
    # and says so in the log; it never stops the server.
    otel: bool = False
    otel_endpoint: str = ""
    otel_service_name: str = "dutyline"

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
            changes_streams=_at_least(env, "DUTYLINE_CHANGES_STREAMS", base.changes_streams, 0),
            changes_streams_per_caller=_at_least(
                env, "DUTYLINE_CHANGES_STREAMS_PER_CALLER", base.changes_streams_per_caller, 1
            ),
            changes_keepalive=_positive_seconds(env, "DUTYLINE_CHANGES_KEEPALIVE", base.changes_keepalive),
            changes_max_entities=_at_least(env, "DUTYLINE_CHANGES_MAX_ENTITIES", base.changes_max_entities, 0),
            max_body_bytes=int(env.get("DUTYLINE_MAX_BODY_BYTES", base.max_body_bytes)),
            max_batch=int(env.get("DUTYLINE_MAX_BATCH", base.max_batch)),
            approval_sla=seconds(env.get("DUTYLINE_APPROVAL_SLA", ""), base.approval_sla),
            approval_validity=seconds(env.get("DUTYLINE_APPROVAL_VALIDITY", ""), base.approval_validity),
            approval_max_uses=int(env.get("DUTYLINE_APPROVAL_MAX_USES", base.approval_max_uses)),
            escalation_interval=seconds(env.get("DUTYLINE_ESCALATION_INTERVAL", ""), base.escalation_interval),
            webhook_url=env.get("DUTYLINE_WEBHOOK_URL", base.webhook_url),
            access_request_window=seconds(env.get("DUTYLINE_ACCESS_REQUEST_WINDOW", ""), base.access_request_window),
            callback_allow=tuple(
                h.strip().lower() for h in env.get("DUTYLINE_CALLBACK_ALLOW", "").split(",") if h.strip()
            ),
            callback_secret=env.get("DUTYLINE_CALLBACK_SECRET", base.callback_secret),
            callback_timeout=seconds(env.get("DUTYLINE_CALLBACK_TIMEOUT", ""), base.callback_timeout),
            workers=int(env.get("DUTYLINE_WORKERS", base.workers)),
            listen=env.get("DUTYLINE_LISTEN", "1").strip().lower() not in ("0", "false", "no", "off"),
            bench_echo=env.get("DUTYLINE_BENCH_ECHO", "") not in ("", "0", "false"),
            require_auth=_flag(env.get("DUTYLINE_REQUIRE_AUTH", "")),
            allow_anonymous=_flag(env.get("DUTYLINE_ALLOW_ANONYMOUS", "")),
            session_ttl=seconds(env.get("DUTYLINE_SESSION_TTL", ""), base.session_ttl),
            rules_four_eyes=_flag(env.get("DUTYLINE_RULES_FOUR_EYES", "")),
            login_attempts=int(env.get("DUTYLINE_LOGIN_ATTEMPTS", base.login_attempts)),
            login_window=seconds(env.get("DUTYLINE_LOGIN_WINDOW", ""), base.login_window),
            login_attempts_per_address=int(
                env.get("DUTYLINE_LOGIN_ATTEMPTS_PER_ADDRESS", base.login_attempts_per_address)
            ),
            password_hash_concurrency=int(
                env.get("DUTYLINE_PASSWORD_HASH_CONCURRENCY", base.password_hash_concurrency)
            ),
            password_hash_wait=seconds(env.get("DUTYLINE_PASSWORD_HASH_WAIT", ""), base.password_hash_wait),
            secret_key=env.get("DUTYLINE_SECRET_KEY", base.secret_key),
            bounds=Bounds(
                value_depth=_positive(env, "DUTYLINE_MAX_VALUE_DEPTH", base.bounds.value_depth),
                value_items=_positive(env, "DUTYLINE_MAX_VALUE_ITEMS", base.bounds.value_items),
                value_bytes=_positive(env, "DUTYLINE_MAX_VALUE_BYTES", base.bounds.value_bytes),
                pack_rules=_positive(env, "DUTYLINE_MAX_PACK_RULES", base.bounds.pack_rules),
                condition_bytes=_positive(env, "DUTYLINE_MAX_CONDITION_BYTES", base.bounds.condition_bytes),
            ),
            org_four_eyes=_flag(env.get("DUTYLINE_ORG_FOUR_EYES", "")),
            max_yaml_scalars=_positive(env, "DUTYLINE_MAX_YAML_SCALARS", base.max_yaml_scalars),
            rules_backend=rules_backend_name(env),
            otel=_otel_on(env),
            otel_endpoint=otel_traces_endpoint(env),
            otel_service_name=env.get("OTEL_SERVICE_NAME", "").strip() or base.otel_service_name,
        )


RULES_BACKENDS = ("durable_rules", "reference")


def rules_backend_name(environ: Mapping[str, str] | None = None) -> str:
    """DUTYLINE_RULES_BACKEND: the rule backend every rule host of the process is made with (default
    durable_rules); the error names the variable."""
    env = os.environ if environ is None else environ
    name = env.get("DUTYLINE_RULES_BACKEND", "").strip() or "durable_rules"
    if name not in RULES_BACKENDS:
        raise ValueError(f"DUTYLINE_RULES_BACKEND: one of {', '.join(RULES_BACKENDS)}, not {name!r}")
    return name


def otel_traces_endpoint(env: Mapping[str, str]) -> str:
    """Where spans go, from the standard variables: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is, else
    OTEL_EXPORTER_OTLP_ENDPOINT with the traces path appended (as the OpenTelemetry specification says)."""
    traces = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if traces:
        return traces
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    return f"{base.rstrip('/')}/v1/traces" if base else ""


def _otel_on(env: Mapping[str, str]) -> bool:
    """Tracing is on when DUTYLINE_OTEL says so, or, unless it says otherwise, when an OTLP endpoint is configured;
    OTEL_SDK_DISABLED=true (the standard switch) turns it off whatever else is set."""
    if _flag(env.get("OTEL_SDK_DISABLED", "")):
        return False
    asked = env.get("DUTYLINE_OTEL", "").strip()
    return _flag(asked) if asked else bool(otel_traces_endpoint(env))


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    return _at_least(env, name, default, 1)


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


def _positive_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A duration setting above zero (seconds, or 30s, 5m …); the error names the variable."""
    try:
        value = seconds(env.get(name, ""), default)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name}: must be a positive number of seconds, got {env.get(name)!r}")
    return value


def bind_workers_to(host: str) -> None:
    """Make `host` the DUTYLINE_HOST of this process's children: `dutyline serve --host` tells the workers it starts
    which address they serve on (whether anonymous callers are refused depends on it)."""
    os.environ["DUTYLINE_HOST"] = host


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
