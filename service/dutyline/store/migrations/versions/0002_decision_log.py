"""The decision log.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decision_log",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("organisation", sa.String(64), nullable=True),
        sa.Column("subject_type", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("resource_id", sa.String(256), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("latency_us", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(200), nullable=True),
    )
    op.create_index("ix_decision_log_time", "decision_log", ["decided_at", "id"])
    op.create_index("ix_decision_log_org_time", "decision_log", ["organisation", "decided_at"])
    op.create_index("ix_decision_log_subject_time", "decision_log", ["subject", "decided_at"])


def downgrade() -> None:
    op.drop_table("decision_log")
