"""Queries of stored operations (the rows services/operations.py writes)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from streampilot.store.orm import Operation

UNFINISHED = ("pending", "running")


@dataclass
class OperationRepository:
    sessions: async_sessionmaker[AsyncSession]

    async def get(self, op_id: int) -> Operation | None:
        async with self.sessions() as s:
            return await s.get(Operation, op_id)

    async def of_app(self, app_id: int, limit: int) -> list[Operation]:
        async with self.sessions() as s:
            q = sa.select(Operation).where(Operation.app_id == app_id).order_by(Operation.id.desc()).limit(limit)
            return list((await s.execute(q)).scalars())

    async def unfinished(self) -> list[Operation]:
        async with self.sessions() as s:
            q = sa.select(Operation).where(Operation.state.in_(UNFINISHED)).order_by(Operation.id)
            return list((await s.execute(q)).scalars())
