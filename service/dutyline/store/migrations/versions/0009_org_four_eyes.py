"""Four-eyes on org charts per organisation; either switch may be unset (the system default applies).

Revision ID: 0009
Revises: 0011 (0009 was this branch's number; it runs after the migrations merged before it, 0010 and 0011)
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("org_settings") as table:  # SQLite cannot alter a column in place
        table.alter_column("rules_four_eyes", existing_type=sa.Boolean(), nullable=True)
        table.add_column(sa.Column("org_four_eyes", sa.Boolean(), nullable=True))


def downgrade() -> None:
    op.execute("UPDATE org_settings SET rules_four_eyes = false WHERE rules_four_eyes IS NULL")
    with op.batch_alter_table("org_settings") as table:
        table.drop_column("org_four_eyes")
        table.alter_column("rules_four_eyes", existing_type=sa.Boolean(), nullable=False)
