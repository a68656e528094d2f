"""operations.idempotency_key: a retried request (lost answer, dropped database connection) finds the
operation it already began instead of a 409

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint("uq_operations_app_id_idempotency_key", ["app_id", "idempotency_key"])


def downgrade() -> None:
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.drop_constraint("uq_operations_app_id_idempotency_key", type_="unique")
        batch_op.drop_column("idempotency_key")
