"""The migrations build exactly the schema the models describe, on every supported database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from streampilot.store.db import create_engine, migrate
from streampilot.store.orm import Base


def _diff(conn: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


async def test_migrations_match_models(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await migrate(engine)
        await migrate(engine)  # idempotent: a second start changes nothing
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


def test_the_shortcut_head_is_alembics_head() -> None:
    """A start skips alembic when the database is at head_revision(): it must be alembic's own head."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from streampilot.store.db import MIGRATIONS, head_revision

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == head_revision()


async def test_teams_migration_moves_everything_to_default_and_keeps_the_admin_token(db_url: str) -> None:
    """A database of the previous release: its objects end up in team 'default', its admin token still
    logs in (as the admin's personal token 'initial')."""
    import hashlib
    from datetime import datetime

    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from streampilot.store.db import MIGRATIONS

    def upgrade_to(conn: Connection, revision: str) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

    token_hash = hashlib.sha256(b"the-old-admin-token").hexdigest()
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(upgrade_to, "0010")
            await conn.execute(
                sa.text("INSERT INTO accounts (name, role, token_hash, created_at) VALUES ('admin', 'admin', :h, :t)"),
                {"h": token_hash, "t": datetime(2026, 1, 1)},
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO clusters (name, kind, options, desired_running, created_at) "
                    "VALUES ('old', 'standalone', '{}', false, :t)"
                ),
                {"t": datetime(2026, 1, 1)},
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO variables (name, value, secret, description, created_at, updated_at) "
                    "VALUES ('v', 'x', false, '', :t, :t)"
                ),
                {"t": datetime(2026, 1, 1)},
            )
        await migrate(engine)
        async with engine.connect() as conn:
            default = (await conn.execute(sa.text("SELECT id FROM teams WHERE name = 'default'"))).scalar_one()
            for table in ("clusters", "variables"):
                teams = (await conn.execute(sa.text(f"SELECT team_id FROM {table}"))).scalars().all()
                assert teams == [default], table
            row = (
                await conn.execute(
                    sa.text(
                        "SELECT a.name, a.role, t.name FROM api_tokens t JOIN accounts a ON a.id = t.account_id "
                        "WHERE t.token_hash = :h"
                    ),
                    {"h": token_hash},
                )
            ).one()
            assert tuple(row) == ("admin", "admin", "initial")
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()
