"""Identity (issue #12, ADR 0009): roles, Unix accounts, credentials, tenant managers, audit.

Existing users become plain users without credentials. (A batch job's Unix account travels in
its ``extra`` object as ``run_as``; jobs without one run as their user name, as before.)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Added in place, never by a batch copy: on SQLite a copy drops ``users``, which bookings,
    # jobs and memberships reference, and ``foreign_keys=ON`` refuses that as soon as they
    # hold rows (found by tests/store/test_upgrade_paths.py; the result is the same schema).
    op.add_column("users", sa.Column("role", sa.String(16), nullable=False, server_default="user"))
    op.add_column("users", sa.Column("unix_user", sa.String(128), nullable=True))
    op.add_column("users", sa.Column("password_hash", sa.Text, nullable=True))
    op.add_column(
        "users", sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false())
    )
    op.add_column(
        "memberships",
        sa.Column("manager", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "credentials",
        sa.Column("pk", sa.Integer, autoincrement=True),
        sa.Column("user_pk", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_credentials"),
        sa.ForeignKeyConstraint(
            ["user_pk"],
            ["users.pk"],
            name="fk_credentials_user_pk_users",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("digest", name="uq_credentials_digest"),
    )
    op.create_index("ix_credentials_user", "credentials", ["user_pk"])
    op.create_table(
        "audit",
        sa.Column("pk", sa.Integer, autoincrement=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(256), nullable=False),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("as_admin", sa.Boolean, nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_audit"),
    )
    op.create_index("ix_audit_at", "audit", ["at"])


def downgrade() -> None:
    op.drop_table("audit")
    op.drop_table("credentials")
    with op.batch_alter_table("memberships") as batch:
        batch.drop_column("manager")
    with op.batch_alter_table("users") as batch:
        for name in ("disabled", "password_hash", "unix_user", "role"):
            batch.drop_column(name)
