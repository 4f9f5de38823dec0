"""Usage ledger, approvals, cases, their events, and the notification outbox.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "usage",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("organisation", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("used_at", Time, nullable=False),
        sa.Column("recorded_at", Time, nullable=False),
        sa.Column("decision_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_usage_recorded", "usage", ["recorded_at"])
    op.create_index("ix_usage_key", "usage", ["organisation", "rule", "person", "period"])

    op.create_table(
        "approvals",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("organisation", sa.String(64), nullable=False),
        sa.Column("requester", sa.String(64), nullable=False),
        sa.Column("requester_posts", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("resource_id", sa.String(256), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("chain", sa.Text(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("post", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("decision_id", sa.String(64), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("due_at", Time, nullable=True),
        sa.Column("decided_at", Time, nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decision_comment", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
    )
    op.create_index("ix_approvals_due", "approvals", ["status", "due_at"])
    op.create_index("ix_approvals_inbox", "approvals", ["organisation", "status", "post"])
    op.create_index("ix_approvals_requester", "approvals", ["organisation", "requester"])
    op.create_index("ix_approvals_decided", "approvals", ["status", "decided_at"])

    op.create_table(
        "cases",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("organisation", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("subject", sa.String(256), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("post", sa.String(64), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("due_at", Time, nullable=True),
        sa.Column("resolved_at", Time, nullable=True),
        sa.Column("resolved_by", sa.String(64), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
    )
    op.create_index("ix_cases_due", "cases", ["status", "due_at"])
    op.create_index("ix_cases_org_status_post", "cases", ["organisation", "status", "post"])

    op.create_table(
        "workflow_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("entity_id", sa.String(40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", Time, nullable=False),
        sa.Column("from_post", sa.String(64), nullable=True),
        sa.Column("to_post", sa.String(64), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
    )
    op.create_index("ux_workflow_events_entity_seq", "workflow_events", ["entity", "entity_id", "seq"], unique=True)

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("organisation", sa.String(64), nullable=False),
        sa.Column("post", sa.String(64), nullable=False),
        sa.Column("people", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=True),
        sa.Column("message_zh", sa.Text(), nullable=False),
        sa.Column("message_en", sa.Text(), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("delivered_at", Time, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", Time, nullable=True),
    )
    op.create_index("ix_notifications_org_time", "notifications", ["organisation", "created_at"])
    op.create_index("ix_notifications_undelivered", "notifications", ["delivered_at", "next_attempt_at"])


def downgrade() -> None:
    for table in ("notifications", "workflow_events", "cases", "approvals", "usage"):
        op.drop_table(table)
