"""cluster_events: the timeline of a supervised local cluster

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

import streampilot.store.orm

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column("at", streampilot.store.orm.UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["cluster_id"], ["clusters.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_cluster_events_cluster_id", "cluster_events", ["cluster_id"])


def downgrade() -> None:
    op.drop_index("ix_cluster_events_cluster_id", table_name="cluster_events")
    op.drop_table("cluster_events")
