"""instances and cluster_leases: several streampilot instances on one database share the clusters

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

import streampilot.store.orm

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("started_at", streampilot.store.orm.UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", streampilot.store.orm.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_instances_heartbeat_at"), ["heartbeat_at"], unique=False)
    op.create_table(
        "cluster_leases",
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.String(length=100), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", streampilot.store.orm.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["cluster_id"], ["clusters.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("cluster_id"),
    )
    with op.batch_alter_table("cluster_leases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cluster_leases_instance_id"), ["instance_id"], unique=False)


def downgrade() -> None:
    op.drop_table("cluster_leases")
    op.drop_table("instances")
