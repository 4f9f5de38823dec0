"""Approvals bound to their request (digest, approved amounts), with uses and an expiry; the usage ledger exact
(decimal amounts) with reversals; the decision log names the approval a decision was allowed through.

Approvals opened before keep no digest: they cover nothing. Usage amounts stored as floats are kept as the decimal
of their shortest text.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

Time = sa.DateTime(timezone=True)


def _amount() -> sa.types.TypeEngine:
    return sa.String(48) if op.get_bind().dialect.name == "sqlite" else sa.Numeric(36, 18)


def upgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("digest", sa.String(64), nullable=True))
        batch.add_column(sa.Column("bound", sa.Text(), nullable=True))
        batch.add_column(sa.Column("limits", sa.Text(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("uses", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("uses_left", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("expires_at", Time, nullable=True))
    with op.batch_alter_table("usage") as batch:
        batch.alter_column("amount", type_=_amount(), existing_type=sa.Float(), existing_nullable=False,
                           postgresql_using="amount::numeric(36, 18)")
        batch.add_column(sa.Column("reverses", sa.Integer(), nullable=True))
        batch.create_index("ix_usage_reverses", ["reverses"], unique=True)
    with op.batch_alter_table("decision_log") as batch:
        batch.add_column(sa.Column("approval_id", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decision_log") as batch:
        batch.drop_column("approval_id")
    with op.batch_alter_table("usage") as batch:
        batch.drop_index("ix_usage_reverses")
        batch.drop_column("reverses")
        batch.alter_column("amount", type_=sa.Float(), existing_type=_amount(), existing_nullable=False,
                           postgresql_using="amount::double precision")
    with op.batch_alter_table("approvals") as batch:
        for column in ("expires_at", "uses_left", "uses", "limits", "bound", "digest"):
            batch.drop_column(column)
