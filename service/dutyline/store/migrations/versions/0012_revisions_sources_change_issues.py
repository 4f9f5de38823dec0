"""Each document's own revision, the text a document was imported from, and a waiting change's issues.

`org_versions.revision` counts the versions of one document (the organisation, or one rule pack): 1, 2, 3 … ,
beside the global policy version (`version`). `org_versions.source` keeps the YAML text of a version that came
from a file (import, seed), so that an export gives it back as written. `admin_changes.issues` keeps every
problem a change failed with (JSON), not only the first in words.

Revision ID: 0012
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("org_versions") as table:
        table.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
        table.add_column(sa.Column("source", sa.Text(), nullable=True))
    # The versions already stored: each document's revisions counted in version order (both databases).
    op.execute(
        "UPDATE org_versions SET revision = (SELECT COUNT(*) FROM org_versions AS earlier "
        "WHERE earlier.org_id = org_versions.org_id AND earlier.kind = org_versions.kind "
        "AND earlier.name = org_versions.name AND earlier.version <= org_versions.version)"
    )
    with op.batch_alter_table("admin_changes") as table:
        table.add_column(sa.Column("issues", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("admin_changes") as table:
        table.drop_column("issues")
    with op.batch_alter_table("org_versions") as table:
        table.drop_column("source")
        table.drop_column("revision")
