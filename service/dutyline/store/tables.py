"""The database tables. Alembic migrations in `migrations/` must match these (a test checks)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in and out, on PostgreSQL (timestamptz) and SQLite (text) alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime}


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
        {"sqlite_autoincrement": True},
    )

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(64), ForeignKey("organisations.id"))
    # The document as JSON; NULL marks the organisation deleted as of this version.
    document: Mapped[str | None] = mapped_column(Text, nullable=True)
    digest: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column()


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
