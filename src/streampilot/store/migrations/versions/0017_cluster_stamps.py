"""cluster stamps: when each cluster's job listing last answered (one row per cluster a tick instead
of one per app); apps.observed_at keeps the app's own observation

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

import streampilot.store.orm

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster_stamps",
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column("observed_at", streampilot.store.orm.UTCDateTime(), nullable=False),
        sa.Column("pass_started_at", streampilot.store.orm.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["cluster_id"], ["clusters.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("cluster_id"),
    )


def downgrade() -> None:
    op.drop_table("cluster_stamps")
