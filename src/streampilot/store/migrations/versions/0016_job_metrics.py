"""job metrics: samples of each running job's metrics, each checkpoint Flink's history told, the
breaches of metric alerts; an index on apps.updated_at

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

import streampilot.store.orm

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_metric_samples",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("at", streampilot.store.orm.UTCDateTime(), nullable=False),
        sa.Column("step_s", sa.Integer(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_job_metric_samples_app_step_at", "job_metric_samples", ["app_id", "step_s", "at"])
    op.create_table(
        "checkpoint_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("checkpoint_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("triggered_at", streampilot.store.orm.UTCDateTime(), nullable=False),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("is_savepoint", sa.Boolean(), nullable=False),
        sa.Column("failure", sa.String(length=1000), nullable=True),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("app_id", "job_id", "checkpoint_id"),
    )
    with op.batch_alter_table("checkpoint_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checkpoint_records_app_id"), ["app_id"], unique=False)

    op.create_table(
        "metric_breaches",
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("since", streampilot.store.orm.UTCDateTime(), nullable=False),
        sa.Column("alerted_at", streampilot.store.orm.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("app_id", "reason"),
    )

    # The tracker reads the apps changed since its last read (services/tracker.py).
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_apps_updated_at"), ["updated_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_apps_updated_at"))
    op.drop_table("metric_breaches")
    op.drop_table("checkpoint_records")
    op.drop_table("job_metric_samples")
