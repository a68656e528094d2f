"""web_sessions: console logins kept on the server (expiring, ended by logout), with their CSRF token

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

import streampilot.store.orm

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", streampilot.store.orm.UTCDateTime(), nullable=False),
        sa.Column("expires_at", streampilot.store.orm.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )


def downgrade() -> None:
    op.drop_table("web_sessions")
