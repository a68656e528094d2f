"""Flink's reason for a job's failure: the root cause of its newest exception, read from its REST API."""

from __future__ import annotations

import asyncio

from streampilot.flink.client import FlinkError
from streampilot.services.context import Context
from streampilot.services.targets import target_for
from streampilot.store.orm import Cluster


async def failure_reason(ctx: Context, cluster: Cluster, job_id: str, *, attempts: int = 5) -> str | None:
    """None when Flink cannot be asked or has not told (its exception history may lag FAILED a moment)."""
    rest = target_for(ctx, cluster).flink_api(job_id)
    if rest is None:
        return None
    for attempt in range(attempts):
        try:
            found = await asyncio.wait_for(rest[0].exceptions(rest[1]), timeout=3)
        except (FlinkError, TimeoutError):
            return None
        if found:
            return str(found[0]["message"])
        if attempt + 1 < attempts:
            await asyncio.sleep(0.3)
    return None
