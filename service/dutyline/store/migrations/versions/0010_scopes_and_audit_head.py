"""API tokens scoped to organisations; the audit trail's head anchor (its newest entry, with an HMAC), adopted
here from the chain as it stands.

Revision ID: 0010
Revises: 0007
"""

import datetime as dt
import secrets

import sqlalchemy as sa
from alembic import context, op

from dutyline.store.audit import HEAD_SECRET, head_mac

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("organisations", sa.Text(), nullable=True))
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    _adopt_head()


def _adopt_head() -> None:
    """The anchor of an existing chain is its last entry now: truncation from here on is detected."""
    bind = op.get_bind()
    last = bind.execute(sa.text("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")).first()
    if last is None:
        return
    now = dt.datetime.now(dt.timezone.utc)
    if bind.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # as tables.UTCDateTime stores it
    key = context.config.attributes.get("secret_key") or ""
    if not key:
        found = bind.execute(sa.text("SELECT value FROM server_secrets WHERE name = :n"), {"n": HEAD_SECRET}).first()
        key = found[0] if found is not None else secrets.token_hex(32)
        if found is None:
            bind.execute(sa.insert(_SECRETS).values(name=HEAD_SECRET, value=key, created_at=now))
    mac = head_mac(key.encode(), last[0], last[1])
    bind.execute(sa.insert(_HEAD).values(id=1, seq=last[0], hash=last[1], mac=mac, updated_at=now))


_TIME = sa.DateTime(timezone=True)
_SECRETS = sa.table("server_secrets", sa.column("name"), sa.column("value"), sa.column("created_at", _TIME))
_HEAD = sa.table(
    "audit_head", sa.column("id"), sa.column("seq"), sa.column("hash"), sa.column("mac"), sa.column("updated_at", _TIME)
)


def downgrade() -> None:
    op.drop_table("audit_head")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("organisations")
