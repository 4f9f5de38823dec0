"""Decision log request parts stored once: a batch's shared context is not copied into every item's row.

Revision ID: 0011
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decision_log_parts",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_decision_log_parts_seen", "decision_log_parts", ["last_seen"])
    op.add_column("decision_log", sa.Column("parts", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decision_log") as batch:  # SQLite cannot drop a column in place
        batch.drop_column("parts")
    op.drop_table("decision_log_parts")
