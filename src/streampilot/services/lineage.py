"""Lineage: what each app's job reads and writes (pushed by Flink 2.x at the job's creation), and across
apps which one writes what another reads."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from streampilot.services import access
from streampilot.services.context import Context
from streampilot.services.push import dataset_key
from streampilot.store.orm import App, Lineage


def _names(vertices: list[dict[str, Any]]) -> list[str]:
    return sorted({dataset_key(d) for v in vertices for d in v.get("datasets", [])})


def describe(row: Lineage) -> dict[str, Any]:
    return {
        "job_id": row.job_id,
        "mode": row.mode,
        "at": row.created_at,
        "sources": row.sources,
        "sinks": row.sinks,
        "relations": row.relations,
        "reads": _names(row.sources),
        "writes": _names(row.sinks),
    }


async def app_lineage(ctx: Context, app_id: int) -> dict[str, Any] | None:
    """The newest lineage of the app's jobs (None: no Flink 2.x job pushed one yet)."""
    async with ctx.sessions() as s:
        row = (
            await s.execute(sa.select(Lineage).where(Lineage.app_id == app_id).order_by(Lineage.id.desc()).limit(1))
        ).scalar_one_or_none()
    return describe(row) if row is not None else None


async def fleet_lineage(ctx: Context) -> dict[str, Any]:
    """Across the apps the caller sees: each dataset with the apps writing and reading it, and the
    app-to-app edges that follow (A writes what B reads)."""
    newest = sa.select(sa.func.max(Lineage.id)).group_by(Lineage.app_id)
    q = sa.select(Lineage, App.name).join(App, App.id == Lineage.app_id).where(Lineage.id.in_(newest))
    teams = access.team_filter()
    if teams is not None:
        q = q.where(App.team_id.in_(teams))
    async with ctx.sessions() as s:
        rows = (await s.execute(q)).all()
    datasets: dict[str, dict[str, list[str]]] = {}
    for row, name in rows:
        for key in _names(row.sources):
            datasets.setdefault(key, {"writers": [], "readers": []})["readers"].append(name)
        for key in _names(row.sinks):
            datasets.setdefault(key, {"writers": [], "readers": []})["writers"].append(name)
    edges = sorted(
        {
            (writer, reader, key)
            for key, ends in datasets.items()
            for writer in ends["writers"]
            for reader in ends["readers"]
            if writer != reader
        }
    )
    return {
        "datasets": [{"name": k, **v} for k, v in sorted(datasets.items())],
        "edges": [{"from": a, "to": b, "dataset": d} for a, b, d in edges],
    }
