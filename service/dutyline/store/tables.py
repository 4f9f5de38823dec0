"""The database tables. Alembic migrations in `migrations/` must match these (a test checks)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, Numeric, String, Text, false
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in and out, on PostgreSQL (timestamptz) and SQLite (text) alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class ExactDecimal(TypeDecorator[Decimal]):
    """Decimals stored exactly: NUMERIC(36, 18) on PostgreSQL, their text on SQLite (whose NUMERIC is a float).
    The ledger refuses amounts that do not fit (at most 18 significant digits, below 10^18, 18 decimals)."""

    impl = Numeric(36, 18)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(String(48) if dialect.name == "sqlite" else Numeric(36, 18, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Decimal | str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise ValueError(f"not a finite Decimal: {value!r}")
        return format(value, "f") if dialect.name == "sqlite" else value

    def process_result_value(self, value: object, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        number = (value if isinstance(value, Decimal) else Decimal(str(value))).normalize()
        return number.quantize(Decimal(1)) if number.as_tuple().exponent > 0 else number  # type: ignore[operator]


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[type, type]] = {dt.datetime: UTCDateTime}


class OrganisationRow(Base):
    """One row per organisation ever stored; `head_version` is its newest version (locked on change)."""

    __tablename__ = "organisations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    head_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column()


class OrgVersionRow(Base):
    """An immutable snapshot of one organisation's document. Its id is the global policy version:
    it only grows, so "at least version N" means the same on every replica."""

    __tablename__ = "org_versions"
    __table_args__ = (
        Index("ix_org_versions_org_version", "org_id", "version"),
        Index("ix_org_versions_kind_org_name", "kind", "org_id", "name", "version"),
        {"sqlite_autoincrement": True},
    )

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(64), ForeignKey("organisations.id"))
    # "org": the organisation document; "rules": rule pack `name` of the organisation.
    kind: Mapped[str] = mapped_column(String(16), default="org", server_default="org")
    name: Mapped[str] = mapped_column(String(64), default="", server_default="")
    # The document as JSON; NULL marks the organisation deleted as of this version.
    document: Mapped[str | None] = mapped_column(Text, nullable=True)
    digest: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column()
    # This document's own counter (1, 2, 3 … for the organisation, and for each rule pack), beside the global
    # policy version above; a deletion counts too.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The YAML text this version was imported from (a file, the seed), kept so that an export gives it back as
    # written (comments, order); NULL for a version made by an edit.
    source: Mapped[str | None] = mapped_column(Text, nullable=True)


class DecisionLogRow(Base):
    """One logged decision, written in batches off the decision path."""

    __tablename__ = "decision_log"
    __table_args__ = (
        Index("ix_decision_log_time", "decided_at", "id"),
        Index("ix_decision_log_org_time", "organisation", "decided_at"),
        Index("ix_decision_log_subject_time", "subject", "decided_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    decided_at: Mapped[dt.datetime] = mapped_column()
    organisation: Mapped[str | None] = mapped_column(String(64), nullable=True)
    subject_type: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(256))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(40))
    reasons: Mapped[str] = mapped_column(Text)
    request: Mapped[str] = mapped_column(Text)
    policy_version: Mapped[int] = mapped_column(Integer)
    latency_us: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    approval_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # the approval it was allowed through
    # JSON {"context": digest, ...}: the parts of `request` kept in `decision_log_parts` (too big to repeat in
    # every row, or shared by the items of a batch); NULL when the row holds its whole request.
    parts: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Asked by the console's simulator (or another caller trying a question out): left out of listings by default.
    simulated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class DecisionLogPartRow(Base):
    """A request part (context, subject or resource properties) of logged decisions, stored once by digest.

    `last_seen` is when it was last written for a decision: no row older than it refers to it, so retention
    removes it with the rows that were the last to use it.
    """

    __tablename__ = "decision_log_parts"
    __table_args__ = (Index("ix_decision_log_parts_seen", "last_seen"),)

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the part as the caller sent it
    body: Mapped[str] = mapped_column(Text)  # JSON; truncated (a subset of its keys) when `truncated`
    bytes: Mapped[int] = mapped_column(Integer)  # size of the whole part as JSON
    truncated: Mapped[bool] = mapped_column(Boolean)
    last_seen: Mapped[dt.datetime] = mapped_column()


class UsageRow(Base):
    """Usage the caller's system executed (a teller's cash paid out): the ledger behind cumulative limits.

    Amounts are exact and positive; a correction is a reversal, a row of the opposite amount naming the row it
    reverses (`reverses`, unique: a row is reversed at most once), so that no total goes below zero."""

    __tablename__ = "usage"
    __table_args__ = (
        Index("ix_usage_recorded", "recorded_at"),
        Index("ix_usage_key", "organisation", "rule", "person", "period"),
        Index("ix_usage_reverses", "reverses", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organisation: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(64))
    person: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(16))  # engines.rules.period_key: 2026-07-06, 2026-W28, 2026-07
    amount: Mapped[Decimal] = mapped_column(ExactDecimal())
    used_at: Mapped[dt.datetime] = mapped_column()
    recorded_at: Mapped[dt.datetime] = mapped_column()
    decision_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reverses: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the row this one reverses


class ApprovalRow(Base):
    """A request that needed approval, waiting at one level of its approver chain (or decided).

    `revision` grows with every change; each change is a conditional update on it, so two writers
    (an approver and the escalation scheduler, or two replicas) can never both apply theirs.
    """

    __tablename__ = "approvals"
    __table_args__ = (
        Index("ix_approvals_due", "status", "due_at"),
        Index("ix_approvals_inbox", "organisation", "status", "post"),
        Index("ix_approvals_requester", "organisation", "requester"),
        Index("ix_approvals_decided", "status", "decided_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organisation: Mapped[str] = mapped_column(String(64))
    requester: Mapped[str] = mapped_column(String(64))
    requester_posts: Mapped[str] = mapped_column(Text)  # JSON list: the posts the request was made through
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    request: Mapped[str] = mapped_column(Text)  # JSON: the check as asked (subject, resource, action, context, at)
    rules: Mapped[str] = mapped_column(Text)  # JSON list: ids of the rules that required approval
    chain: Mapped[str] = mapped_column(Text)  # JSON list of {post, people}: the approver chain, nearest first
    level: Mapped[int] = mapped_column(Integer)
    post: Mapped[str] = mapped_column(String(64))  # the post whose holders may decide now
    status: Mapped[str] = mapped_column(String(16))  # pending, approved, rejected
    comment: Mapped[str] = mapped_column(Text)
    decision_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column()
    due_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decision_comment: Mapped[str] = mapped_column(Text)
    revision: Mapped[int] = mapped_column(Integer)
    # What it is bound to (`engines.binding`): the digest of the request, the canonical JSON digested (to name
    # what differs), and the approved magnitude of each limited amount (JSON: path → decimal text or null).
    # No digest: opened before approvals were bound; such an approval covers nothing.
    digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    bound: Mapped[str | None] = mapped_column(Text, nullable=True)
    limits: Mapped[str] = mapped_column(Text, server_default="{}")
    # Uses chosen when opening, and left: each decision allowed thanks to the approval takes one, by a
    # conditional update (uses_left > 0, not expired). It expires DUTYLINE_APPROVAL_VALIDITY after it is approved.
    uses: Mapped[int] = mapped_column(Integer, server_default="1")
    uses_left: Mapped[int] = mapped_column(Integer, server_default="1")
    expires_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class CaseRow(Base):
    """A case (complaint, cash not remitted …) assigned to a post and escalated while unresolved."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_due", "status", "due_at"),
        Index("ix_cases_org_status_post", "organisation", "status", "post"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organisation: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str | None] = mapped_column(String(256), nullable=True)
    data: Mapped[str] = mapped_column(Text)  # JSON object
    post: Mapped[str] = mapped_column(String(64))  # assigned to
    step: Mapped[int] = mapped_column(Integer)  # escalation steps taken
    status: Mapped[str] = mapped_column(String(16))  # open, escalated, resolved
    created_at: Mapped[dt.datetime] = mapped_column()
    due_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)  # next escalation; None: no more timers
    resolved_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resolution: Mapped[str] = mapped_column(Text)
    revision: Mapped[int] = mapped_column(Integer)


class WorkflowEventRow(Base):
    """Every change to a case or an approval, in order. (entity, entity_id, seq) is unique: the event of
    one revision can be written once only, whichever replica tries."""

    __tablename__ = "workflow_events"
    __table_args__ = (Index("ux_workflow_events_entity_seq", "entity", "entity_id", "seq", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(String(16))  # case, approval
    entity_id: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(Integer)  # the entity's revision this event made
    kind: Mapped[str] = mapped_column(String(32))  # opened, requested, escalated, overdue, approved, rejected, resolved
    at: Mapped[dt.datetime] = mapped_column()
    from_post: Mapped[str | None] = mapped_column(String(64), nullable=True)
    to_post: Mapped[str | None] = mapped_column(String(64), nullable=True)
    actor: Mapped[str] = mapped_column(String(200))  # a person id, or escalation@<host>:<pid>
    comment: Mapped[str] = mapped_column(Text)


class NotificationRow(Base):
    """The outbox: who must be told what. Written in the transaction of the change it reports."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_org_time", "organisation", "created_at"),
        Index("ix_notifications_undelivered", "delivered_at", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organisation: Mapped[str] = mapped_column(String(64))
    post: Mapped[str] = mapped_column(String(64))
    people: Mapped[str] = mapped_column(Text)  # JSON list: who held the post when it was written
    kind: Mapped[str] = mapped_column(String(32))  # case_opened, case_escalated, approval_requested, obligation …
    subject_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the case, approval or decision
    message_zh: Mapped[str] = mapped_column(Text)
    message_en: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column()
    delivered_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


# --- the admin side: console users, their roles, sessions, API tokens, the audit trail, pending changes ---


class UserRow(Base):
    """Someone who may use the admin API or the console. Roles are in `role_grants`."""

    __tablename__ = "users"
    __table_args__ = (Index("ux_users_username", "username", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)  # argon2id; None: tokens only
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column()
    updated_at: Mapped[dt.datetime] = mapped_column()


class RoleGrantRow(Base):
    """A role a user holds in one organisation (`*`: every organisation; system_admin is always `*`)."""

    __tablename__ = "role_grants"
    __table_args__ = (Index("ux_role_grants", "user_id", "role", "organisation", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id"))
    role: Mapped[str] = mapped_column(String(32))
    organisation: Mapped[str] = mapped_column(String(64))
    granted_by: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[dt.datetime] = mapped_column()


class UserPersonRow(Base):
    """Who a console user is in one organisation: the person they act as on approvals and cases."""

    __tablename__ = "user_people"

    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id"), primary_key=True)
    organisation: Mapped[str] = mapped_column(String(64), primary_key=True)
    person: Mapped[str] = mapped_column(String(64))
    linked_by: Mapped[str] = mapped_column(String(64))
    linked_at: Mapped[dt.datetime] = mapped_column()


class ConsoleSessionRow(Base):
    """A console login. The cookie carries the token; only its SHA-256 is stored."""

    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_expires", "expires_at"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column()
    expires_at: Mapped[dt.datetime] = mapped_column()
    ip: Mapped[str] = mapped_column(String(64))


class ApiTokenRow(Base):
    """A machine client's bearer token, acting as its user within its scopes. Only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (Index("ux_api_tokens_hash", "token_hash", unique=True),)

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[str] = mapped_column(String(64))  # comma-separated: decide, read, admin
    # The organisations it may reach on the decision API, comma-separated; `*`: every one; '': none (a read
    # token). NULL: issued before organisation scopes existed: its user's organisations, as a console session.
    organisations: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column()
    expires_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class AuditRow(Base):
    """One entry of the admin audit trail. `hash` is SHA-256 over the entry's canonical content and
    `prev_hash`, so editing or removing any entry breaks every link after it (`dutyline audit verify`)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_org_at", "organisation", "at"),
        Index("ix_audit_log_actor_at", "actor", "at"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    organisation: Mapped[str | None] = mapped_column(String(64), nullable=True)
    target: Mapped[str] = mapped_column(String(256))
    detail: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """The newest entry of the audit trail (one row, `id` 1), moved by every append in the same transaction, with
    an HMAC over its seq and hash: entries cut off the end of the chain leave it pointing past the last one."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column()


class AdminChangeRow(Base):
    """A policy change that is not applied yet: waiting for a second person (four-eyes on rule packs) or
    for its time (scheduled). Every transition is a conditional update on `revision`."""

    __tablename__ = "admin_changes"
    __table_args__ = (
        Index("ix_admin_changes_due", "status", "effective_at"),
        Index("ix_admin_changes_org_status", "organisation", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organisation: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200))  # org, posts/<id>, rules/<pack> …
    operation: Mapped[str] = mapped_column(Text)  # JSON: {"method": put|delete, "value": …}
    base_etag: Mapped[str | None] = mapped_column(String(80), nullable=True)
    reason: Mapped[str] = mapped_column(String(16))  # four_eyes, scheduled
    status: Mapped[str] = mapped_column(String(16))  # pending, scheduled, applied, rejected, failed
    author: Mapped[str] = mapped_column(String(64))
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column()
    effective_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the policy version it became
    message: Mapped[str] = mapped_column(Text)
    revision: Mapped[int] = mapped_column(Integer)
    # Every problem a failed change had (JSON list of issues), beside `message` (the first one in words).
    issues: Mapped[str | None] = mapped_column(Text, nullable=True)


class OrgSettingRow(Base):
    """Per-organisation admin settings (kept outside the org document: they govern editing, not decisions)."""

    __tablename__ = "org_settings"

    org_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # four-eyes on rule packs and on the org chart; None: the system default (DUTYLINE_*_FOUR_EYES) applies
    rules_four_eyes: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    org_four_eyes: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column()


class LoginAttemptRow(Base):
    """Logins tried for one (username, address) in the current window, counted by every replica in one place.
    `key` is a keyed digest of the two, never the name as typed (a password typed into the username field
    must not be stored)."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_window", "window_start"),)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[dt.datetime] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer)


class ServerSecretRow(Base):
    """A secret generated by the first process that needs it and shared by every replica, for when the
    settings give none (`DUTYLINE_SECRET_KEY`)."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column()


# --- the AuthZEN access request profile (services/access_requests.py) ---


class AccessRequestRow(Base):
    """An access request (an AuthZEN task): the Dutyline approval it opened, the denial it was bound to, who
    submitted it, and the callback to tell when the approval is decided. The binding token's id (`token_id`) is
    unique: a token opens one task, however often it is presented; so is (`caller`, `idempotency_key`)."""

    __tablename__ = "access_requests"
    __table_args__ = (
        Index("ux_access_requests_token", "token_id", unique=True),
        Index("ux_access_requests_idempotency", "caller", "idempotency_key", unique=True),
        Index("ix_access_requests_callback", "callback_status", "callback_next_at"),
        Index("ix_access_requests_approval", "approval_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organisation: Mapped[str] = mapped_column(String(64))
    approval_id: Mapped[str] = mapped_column(String(40))
    evaluation_id: Mapped[str] = mapped_column(String(64))
    token_id: Mapped[str] = mapped_column(String(64))
    caller: Mapped[str] = mapped_column(String(200))  # who submitted it (a token, a console user, or anonymous)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    body_digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the submission's canonical JSON
    request: Mapped[str] = mapped_column(Text)  # JSON: the submission (subject, resource, action, context …)
    template: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column()
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    # The callback (none: `callback_status` is "none"): where, the PEP's opaque state, the events it wants (JSON
    # list, empty: every one), and its delivery: waiting (for the approval's decision), delivered, failed, skipped.
    callback_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    callback_state: Mapped[str | None] = mapped_column(Text, nullable=True)
    callback_events: Mapped[str] = mapped_column(Text)
    callback_status: Mapped[str] = mapped_column(String(16))
    callback_attempts: Mapped[int] = mapped_column(Integer)
    callback_next_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)  # also the lease of a claim


class CallbackAttemptRow(Base):
    """One attempt to deliver an access request's callback: when, the event sent, the HTTP status (0: no answer)."""

    __tablename__ = "callback_attempts"
    __table_args__ = (Index("ux_callback_attempts_seq", "access_request_id", "attempt", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    access_request_id: Mapped[str] = mapped_column(String(40))
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column()
    event: Mapped[str] = mapped_column(String(16))
    status: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text)
