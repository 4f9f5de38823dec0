"""Prometheus metrics of this process (served at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DECISIONS = Counter("dutyline_decisions", "Decisions made, by result", ["result"])
DECISION_LATENCY = Histogram(
    "dutyline_decision_seconds",
    "Time to decide one question in-process (excluding HTTP)",
    buckets=(2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2),
)
DECISION_ERRORS = Counter("dutyline_decision_errors", "Decisions that failed internally and were denied")
POLICY_VERSION = Gauge("dutyline_policy_version", "Policy version this process decides with")
LOG_QUEUE_DEPTH = Gauge("dutyline_decision_log_queue_depth", "Decisions waiting to be written to the log")
LOG_DROPPED = Counter("dutyline_decision_log_dropped", "Decisions not logged because the queue was full")
LOG_WRITTEN = Counter("dutyline_decision_log_written", "Decisions written to the decision log")
PASSWORD_HASHES = Counter(
    "dutyline_password_hashes", "argon2id computations (64 MiB each): login and password checks, new hashes", ["kind"]
)
PASSWORD_HASHES_RUNNING = Gauge("dutyline_password_hashes_running", "argon2id computations running now")
PASSWORD_HASHES_PEAK = Gauge("dutyline_password_hashes_running_peak", "Most argon2id computations at once since start")
LOGINS_THROTTLED = Counter(
    "dutyline_logins_throttled", "Logins refused (429) before any password check, by budget: user or address", ["by"]
)
LOG_TRUNCATED = Counter(
    "dutyline_decision_log_truncated",
    "Request parts logged truncated (above DUTYLINE_DECISION_LOG_MAX_CONTEXT_BYTES)",
)
CONSISTENCY_WAITERS = Gauge(
    "dutyline_consistency_waiters", "Checks waiting (at_least_version) for this process to apply a policy version"
)
CONSISTENCY_REFUSED = Counter(
    "dutyline_consistency_refused", "Checks with at_least_version refused because too many were waiting already"
)
LISTINGS_COMPUTED = Counter("dutyline_listings_computed", "Whole-organisation listings (who may, searches) computed")
LISTINGS_SERVED_CACHED = Counter(
    "dutyline_listings_served_cached", "Listing pages served from a listing computed for an earlier page or request"
)
CHANGE_STREAMS = Gauge("dutyline_change_streams", "Change streams (GET /v1/changes) open now")
CHANGE_STREAMS_REFUSED = Counter(
    "dutyline_change_streams_refused", "Change streams refused (503) because DUTYLINE_CHANGES_STREAMS were open"
)
LISTINGS_RUNNING = Gauge("dutyline_listings_running", "Big listings being computed off the event loop now")
LISTINGS_REFUSED = Counter(
    "dutyline_listings_refused", "Big listings refused (503) because DUTYLINE_QUERY_WORKERS were computing already"
)
POLICY_ERRORS = Counter(
    "dutyline_policy_errors",
    "Stored versions of an organisation (document or rule pack) this process could not use, each counted once",
    ["organisation"],
)
POLICY_NOT_CURRENT = Gauge(
    "dutyline_policy_organisations_not_current",
    "Organisations not decided at their newest stored version: stale (on their last good one) or unavailable",
    ["state"],
)
