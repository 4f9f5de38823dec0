"""The AuthZEN access request profile: access requests (tasks bound to an approval) and their callbacks' attempts.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "access_requests",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("organisation", sa.String(64), nullable=False),
        sa.Column("approval_id", sa.String(40), nullable=False),
        sa.Column("evaluation_id", sa.String(64), nullable=False),
        sa.Column("token_id", sa.String(64), nullable=False),
        sa.Column("caller", sa.String(200), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("body_digest", sa.String(64), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("template", sa.String(200), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("cancelled_at", Time, nullable=True),
        sa.Column("callback_url", sa.Text(), nullable=True),
        sa.Column("callback_state", sa.Text(), nullable=True),
        sa.Column("callback_events", sa.Text(), nullable=False),
        sa.Column("callback_status", sa.String(16), nullable=False),
        sa.Column("callback_attempts", sa.Integer(), nullable=False),
        sa.Column("callback_next_at", Time, nullable=True),
    )
    op.create_index("ux_access_requests_token", "access_requests", ["token_id"], unique=True)
    op.create_index("ux_access_requests_idempotency", "access_requests", ["caller", "idempotency_key"], unique=True)
    op.create_index("ix_access_requests_callback", "access_requests", ["callback_status", "callback_next_at"])
    op.create_index("ix_access_requests_approval", "access_requests", ["approval_id"])
    op.create_table(
        "callback_attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("access_request_id", sa.String(40), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", Time, nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
    )
    op.create_index("ux_callback_attempts_seq", "callback_attempts", ["access_request_id", "attempt"], unique=True)


def downgrade() -> None:
    op.drop_table("callback_attempts")
    op.drop_table("access_requests")
