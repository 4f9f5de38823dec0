"""Rule packs are versioned documents too, in the same version sequence as organisations.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("org_versions") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="org"))
        batch.add_column(sa.Column("name", sa.String(64), nullable=False, server_default=""))
    op.create_index("ix_org_versions_kind_org_name", "org_versions", ["kind", "org_id", "name", "version"])


def downgrade() -> None:
    op.drop_index("ix_org_versions_kind_org_name", "org_versions")
    with op.batch_alter_table("org_versions") as batch:
        batch.drop_column("name")
        batch.drop_column("kind")
