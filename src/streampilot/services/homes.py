"""Which Flink distribution a cluster uses, inspected once per path and cached in the context."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from streampilot.flink.homes import HomeInfo, NotAFlinkHome, inspect_home
from streampilot.services.context import Context
from streampilot.services.errors import Conflict
from streampilot.store.orm import FlinkHome


async def home_info(ctx: Context, home_id: int | None) -> HomeInfo:
    """The given home, or the bundled one (used to build the SQL runner for remote clusters)."""
    async with ctx.sessions() as s:
        if home_id is not None:
            home = await s.get(FlinkHome, home_id)
        else:
            home = (
                (await s.execute(sa.select(FlinkHome).order_by(FlinkHome.bundled.desc(), FlinkHome.id)))
                .scalars()
                .first()
            )
    if home is None:
        raise Conflict("no Flink home is registered; install streampilot with its 'flink' extra or add one")
    cached = ctx.homes.get(home.path)
    if cached is not None:
        return cached
    try:
        info = await asyncio.to_thread(inspect_home, Path(home.path))
    except NotAFlinkHome as exc:
        raise Conflict(f"Flink home {home.name!r} is no longer usable: {exc}") from None
    ctx.homes[home.path] = info
    return info
