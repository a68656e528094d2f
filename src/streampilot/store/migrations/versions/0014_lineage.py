"""lineage: each job's sources and sinks, pushed by its JobManager at the job's creation

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

import streampilot.store.orm

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lineage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=True),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("sinks", sa.JSON(), nullable=False),
        sa.Column("relations", sa.JSON(), nullable=False),
        sa.Column("created_at", streampilot.store.orm.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("lineage", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lineage_app_id"), ["app_id"], unique=False)


def downgrade() -> None:
    op.drop_table("lineage")
