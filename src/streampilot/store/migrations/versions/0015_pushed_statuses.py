"""pushed_statuses: pushes received by an instance that does not watch the cluster, for its lease holder

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

import streampilot.store.orm

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pushed_statuses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("new_status", sa.String(length=20), nullable=False),
        sa.Column("received_at", streampilot.store.orm.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["cluster_id"], ["clusters.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("pushed_statuses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pushed_statuses_cluster_id"), ["cluster_id"], unique=False)


def downgrade() -> None:
    op.drop_table("pushed_statuses")
