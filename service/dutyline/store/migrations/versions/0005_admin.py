"""The admin side: users, role grants, console sessions, API tokens, the audit trail, pending changes, settings.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
    )
    op.create_index("ux_users_username", "users", ["username"], unique=True)

    op.create_table(
        "role_grants",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("organisation", sa.String(64), nullable=False),
        sa.Column("granted_by", sa.String(64), nullable=False),
        sa.Column("granted_at", Time, nullable=False),
    )
    op.create_index("ux_role_grants", "role_grants", ["user_id", "role", "organisation"], unique=True)

    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("expires_at", Time, nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
    )
    op.create_index("ix_console_sessions_expires", "console_sessions", ["expires_at"])

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scopes", sa.String(64), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("expires_at", Time, nullable=True),
        sa.Column("revoked_at", Time, nullable=True),
    )
    op.create_index("ux_api_tokens_hash", "api_tokens", ["token_hash"], unique=True)

    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("at", Time, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("organisation", sa.String(64), nullable=True),
        sa.Column("target", sa.String(256), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_org_at", "audit_log", ["organisation", "at"])
    op.create_index("ix_audit_log_actor_at", "audit_log", ["actor", "at"])

    op.create_table(
        "admin_changes",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("organisation", sa.String(64), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("operation", sa.Text(), nullable=False),
        sa.Column("base_etag", sa.String(80), nullable=True),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("effective_at", Time, nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decided_at", Time, nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
    )
    op.create_index("ix_admin_changes_due", "admin_changes", ["status", "effective_at"])
    op.create_index("ix_admin_changes_org_status", "admin_changes", ["organisation", "status"])

    op.create_table(
        "org_settings",
        sa.Column("org_id", sa.String(64), primary_key=True),
        sa.Column("rules_four_eyes", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", Time, nullable=False),
    )


def downgrade() -> None:
    for table in ("org_settings", "admin_changes", "audit_log", "api_tokens", "console_sessions", "role_grants", "users"):
        op.drop_table(table)
