"""Decisions asked by the console's simulator are marked, so that the decision log can tell them from real calls.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "decision_log", sa.Column("simulated", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    with op.batch_alter_table("decision_log") as batch:  # SQLite cannot drop a column in place
        batch.drop_column("simulated")
