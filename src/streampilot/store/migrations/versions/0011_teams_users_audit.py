"""teams, memberships, personal API tokens, the audit log; objects belong to a team

Every existing object moves to a team named ``default``; the admin's token becomes its first personal
token (named ``initial``), so the admin token file keeps working.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

import streampilot.store.orm

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

OWNED = ("clusters", "jars", "variables", "apps", "alert_channels")


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("created_at", streampilot.store.orm.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "memberships",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("created_at", streampilot.store.orm.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "account_id"),
    )
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_memberships_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_memberships_team_id"), ["team_id"], unique=False)
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", streampilot.store.orm.UTCDateTime(), nullable=True),
        sa.Column("last_used_at", streampilot.store.orm.UTCDateTime(), nullable=True),
        sa.Column("created_at", streampilot.store.orm.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "name"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_account_id"), ["account_id"], unique=False)
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", streampilot.store.orm.UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("client", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("object_kind", sa.String(length=40), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=True),
        sa.Column("object_name", sa.String(length=200), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("diff", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_actor"), ["actor"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_team_id"), ["team_id"], unique=False)

    bind = op.get_bind()
    now = streampilot.store.orm.utcnow()
    teams = sa.table(
        "teams",
        sa.column("id", sa.Integer()),
        sa.column("name", sa.String()),
        sa.column("description", sa.String()),
        sa.column("created_at", streampilot.store.orm.UTCDateTime()),
    )
    bind.execute(
        teams.insert().values(name="default", description="everything made before teams existed", created_at=now)
    )
    default_id = bind.execute(sa.select(teams.c.id).where(teams.c.name == "default")).scalar_one()
    for table in OWNED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("team_id", sa.Integer(), nullable=True))
        bind.execute(sa.text(f"UPDATE {table} SET team_id = :t").bindparams(t=default_id))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("team_id", existing_type=sa.Integer(), nullable=False)
            batch_op.create_index(batch_op.f(f"ix_{table}_team_id"), ["team_id"], unique=False)
            batch_op.create_foreign_key(f"fk_{table}_team_id_teams", "teams", ["team_id"], ["id"])

    # Accounts: passwords, where they come from; their tokens move to api_tokens.
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("password_hash", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("source", sa.String(length=20), nullable=False, server_default="local"))
        batch_op.add_column(sa.Column("email", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()))
    tokens = sa.table(
        "api_tokens",
        sa.column("account_id", sa.Integer()),
        sa.column("name", sa.String()),
        sa.column("token_hash", sa.String()),
        sa.column("created_at", streampilot.store.orm.UTCDateTime()),
    )
    for account_id, token_hash in bind.execute(sa.text("SELECT id, token_hash FROM accounts")).all():
        bind.execute(
            tokens.insert().values(account_id=account_id, name="initial", token_hash=token_hash, created_at=now)
        )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("token_hash")
        batch_op.alter_column("source", existing_type=sa.String(length=20), server_default=None)
        batch_op.alter_column("disabled", existing_type=sa.Boolean(), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_hash", sa.String(length=64), nullable=True))
        batch_op.drop_column("disabled")
        batch_op.drop_column("email")
        batch_op.drop_column("source")
        batch_op.drop_column("password_hash")
    for table in OWNED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_team_id_teams", type_="foreignkey")
            batch_op.drop_index(batch_op.f(f"ix_{table}_team_id"))
            batch_op.drop_column("team_id")
    op.drop_table("audit_events")
    op.drop_table("api_tokens")
    op.drop_table("memberships")
    op.drop_table("teams")
