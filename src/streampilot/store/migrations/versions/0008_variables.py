"""variables: values for ${name} in apps' scripts, secrets encrypted

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

import streampilot.store.orm

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "variables",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("secret", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("created_at", streampilot.store.orm.UTCDateTime(), nullable=False),
        sa.Column("updated_at", streampilot.store.orm.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("variables")
