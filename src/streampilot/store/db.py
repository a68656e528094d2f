"""Engine, sessions and schema migration at start-up."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from streampilot.domain.urls import without_password

MIGRATIONS = Path(__file__).parent / "migrations"


def head_revision() -> str:
    """The newest migration's revision; revisions are named by their file's number (0006_...)."""
    return max(p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


class DatabaseUrlError(ValueError):
    pass


def _async_url(url: str) -> str:
    try:
        parsed = make_url(url)
    except Exception as exc:
        shown = without_password(url)
        raise DatabaseUrlError(
            f"STREAMPILOT_DATABASE_URL {shown!r} is not a database URL ({str(exc).replace(url, shown)}); "
            "write it like postgresql://user:password@host:5432/db"
        ) from None
    driver = {
        "sqlite": "sqlite+aiosqlite",
        "postgresql": "postgresql+asyncpg",
        "postgres": "postgresql+asyncpg",
        "mysql": "mysql+aiomysql",
        "mariadb": "mysql+aiomysql",
    }
    if "+" not in parsed.drivername:
        if parsed.drivername not in driver:
            raise DatabaseUrlError(f"database {parsed.drivername!r} is not supported: use sqlite, postgresql or mysql")
        parsed = parsed.set(drivername=driver[parsed.drivername])
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str) -> AsyncEngine:
    async_url = _async_url(url)
    if async_url.startswith("sqlite"):
        # aiosqlite runs each connection in a thread of its own: a connection made for a burst beyond the
        # pool (QueuePool's overflow) is a thread started and ended, so the pool keeps more than the
        # default 5 (the tracker's writes after a tick with many changes made ~2 threads a second).
        engine = create_async_engine(async_url, connect_args={"timeout": 30}, pool_size=16, max_overflow=16)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            # With WAL, NORMAL survives a crash of the process (not of the machine) and saves an fsync per commit.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_async_engine(async_url, pool_pre_ping=True, pool_recycle=1800, pool_timeout=30)


async def reachable(url: str, timeout_s: float = 15.0) -> None:
    """Connect once before the server starts: a wrong URL or an unreachable database is one clear line
    (``DatabaseUrlError``, password hidden), not a traceback from deep inside the start-up."""
    engine = create_engine(url)
    try:
        async with asyncio.timeout(timeout_s):
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
    except (OSError, TimeoutError, sa.exc.SQLAlchemyError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0] or type(exc).__name__
        raise DatabaseUrlError(
            f"cannot reach the database at {without_password(url)}: {reason.replace(url, without_password(url))}"
        ) from None
    finally:
        await engine.dispose()


def sessions(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    return async_sessionmaker(engine, expire_on_commit=False)


def _current_revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _upgrade(conn: Connection) -> None:
    if _current_revision(conn) == head_revision():
        return  # the usual start: no need to load alembic (a quarter of a second)
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


async def migrate(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # SQLite changes a table by copying it and dropping the old one; with foreign keys on, that
            # drop deletes (ON DELETE CASCADE) or refuses the rows of every table referring to it. The
            # pragma only takes effect outside a transaction: this is the connection's first statement.
            await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        try:
            await conn.run_sync(_upgrade)
            if sqlite:
                broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if broken:
                    raise RuntimeError(f"the migration left rows pointing nowhere: {broken[:5]}")
            await conn.commit()
        finally:
            if sqlite:
                await conn.rollback()
                await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                await conn.commit()


def lost_connection(exc: sa.exc.DBAPIError) -> bool:
    """Whether a database error means the connection dropped (the statement's outcome is unknown)."""
    return bool(exc.connection_invalidated) or isinstance(exc, sa.exc.InterfaceError | sa.exc.OperationalError)
