"""Several instances on one database share the clusters through leases kept in it.

Each pass an instance beats its heartbeat, renews the leases it holds, takes unheld or expired ones up
to its fair share (the clusters over the live instances, rounded up) and lets go of leases above that
share, so a new instance gets work and a dead one's clusters are taken over once its leases expire
(``STREAMPILOT_TRACKING_LEASE_TTL_S``). A takeover raises the lease's ``token``: every write the
tracker makes is fenced by the holder's token in the same transaction (``fence``), so an instance that
was paused past its lease cannot act on a cluster another one now watches.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from streampilot.services.context import Context
from streampilot.store.orm import Cluster, ClusterLease, Instance, utcnow

log = logging.getLogger("streampilot.leases")


class LeaseLost(Exception):
    """This instance no longer holds the cluster's lease: it must not act on it."""


@dataclass
class LeaseKeeper:
    ctx: Context
    instance_id: str
    held: dict[int, int] = field(default_factory=dict)  # cluster id -> token
    _started: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def ttl(self) -> timedelta:
        return timedelta(seconds=self.ctx.settings.tracking.lease_ttl_s)

    def holds(self, cluster_id: int) -> bool:
        return cluster_id in self.held

    async def ensure_started(self) -> None:
        """The first pass before any loop acts (they start together; the tracker must not wait a tick)."""
        if self._started:
            return
        async with self._lock:
            if not self._started:
                await self.run_once()

    async def run_once(self) -> None:
        self._started = True
        now = utcnow()
        until = now + self.ttl
        async with self.ctx.sessions() as s, s.begin():
            beat = await s.execute(sa.update(Instance).where(Instance.id == self.instance_id).values(heartbeat_at=now))
            if beat.rowcount == 0:  # type: ignore[attr-defined]
                s.add(Instance(id=self.instance_id, started_at=now, heartbeat_at=now))
            await s.execute(
                sa.update(ClusterLease)
                .where(ClusterLease.instance_id == self.instance_id, ClusterLease.expires_at > now)
                .values(expires_at=until)
            )
        async with self.ctx.sessions() as s:
            mine = (
                await s.execute(
                    sa.select(ClusterLease.cluster_id, ClusterLease.token).where(
                        ClusterLease.instance_id == self.instance_id, ClusterLease.expires_at > now
                    )
                )
            ).all()
            live = (
                await s.execute(
                    sa.select(sa.func.count()).select_from(Instance).where(Instance.heartbeat_at > now - self.ttl)
                )
            ).scalar_one()
            total = (await s.execute(sa.select(sa.func.count()).select_from(Cluster))).scalar_one()
            share = math.ceil(total / max(1, live))
            # At its share (the steady state), an instance reads no other lease: one pass is a few rows.
            free: list[tuple[int, int | None]] = []
            if len(mine) < share:
                held_by_any = {
                    row.cluster_id: row
                    for row in await s.execute(
                        sa.select(ClusterLease.cluster_id, ClusterLease.token, ClusterLease.expires_at)
                    )
                }
                for cluster_id in (await s.execute(sa.select(Cluster.id))).scalars():
                    lease = held_by_any.get(cluster_id)
                    if lease is None:
                        free.append((cluster_id, None))
                    elif lease.expires_at <= now:  # its holder is gone (or was paused)
                        free.append((cluster_id, lease.token))
        before = set(self.held)
        self.held = {cid: token for cid, token in mine}
        if free:
            # Instances starting together pick different free clusters, so they seldom collide; each takes
            # its pick in cluster order, so two taking at once wait on each other in one order (no deadlock).
            free.sort(key=lambda f: hashlib.sha256(f"{self.instance_id}:{f[0]}".encode()).digest())
            self.held.update(await self._take(sorted(free[: share - len(self.held)]), now, until))
        if len(self.held) > share:  # a new instance joined: give it its share
            await self._release(sorted(self.held)[share:])
        if set(self.held) != before:
            gained, lost = set(self.held) - before, before - set(self.held)
            self.ctx.metrics.lease_changes.labels("gained").inc(len(gained))
            self.ctx.metrics.lease_changes.labels("lost").inc(len(lost))
            log.info(
                "instance %s watches %d clusters (gained %s, lost %s)",
                self.instance_id, len(self.held), sorted(gained), sorted(lost),
            )  # fmt: skip

    async def _take(self, free: list[tuple[int, int | None]], now: datetime, until: datetime) -> dict[int, int]:
        """Take free leases in one transaction (one commit, however many): the tokens of those this instance
        got; one another instance was quicker to is skipped (its savepoint undone, the rest kept)."""
        got: dict[int, int] = {}
        async with self.ctx.sessions() as s, s.begin():
            for cluster_id, token in free:
                if token is None:
                    try:
                        async with s.begin_nested():
                            await s.execute(
                                sa.insert(ClusterLease).values(
                                    cluster_id=cluster_id, instance_id=self.instance_id, token=1, expires_at=until
                                )
                            )
                    except sa.exc.IntegrityError:
                        continue  # another instance was quicker
                    got[cluster_id] = 1
                    continue
                taken = await s.execute(
                    sa.update(ClusterLease)
                    .where(
                        ClusterLease.cluster_id == cluster_id,
                        ClusterLease.token == token,
                        ClusterLease.expires_at <= now,
                    )
                    .values(instance_id=self.instance_id, token=token + 1, expires_at=until)
                )
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    got[cluster_id] = token + 1
        return got

    async def _release(self, cluster_ids: list[int]) -> None:
        for cluster_id in cluster_ids:
            self.held.pop(cluster_id, None)
        async with self.ctx.sessions() as s, s.begin():
            await s.execute(
                sa.update(ClusterLease)
                .where(ClusterLease.cluster_id.in_(cluster_ids), ClusterLease.instance_id == self.instance_id)
                .values(expires_at=utcnow())
            )

    async def release_all(self) -> None:
        """At a clean shutdown: the others take over at once instead of after the lease's time."""
        async with self.ctx.sessions() as s, s.begin():
            await s.execute(
                sa.update(ClusterLease).where(ClusterLease.instance_id == self.instance_id).values(expires_at=utcnow())
            )
            await s.execute(sa.delete(Instance).where(Instance.id == self.instance_id))
        self.held.clear()

    async def fence(self, s: AsyncSession, cluster_id: int) -> None:
        """In a write's transaction: LeaseLost unless this instance still holds the cluster with its token
        (the lease row is locked until the write commits, so a takeover waits for it)."""
        token = self.held.get(cluster_id)
        found = None
        if token is not None:
            found = (
                await s.execute(
                    sa.select(ClusterLease.token)
                    .where(
                        ClusterLease.cluster_id == cluster_id,
                        ClusterLease.instance_id == self.instance_id,
                        ClusterLease.token == token,
                    )
                    .with_for_update()
                )
            ).scalar_one_or_none()
        if found is None:
            self.held.pop(cluster_id, None)
            raise LeaseLost(f"instance {self.instance_id} no longer watches cluster {cluster_id}")


async def instances(ctx: Context) -> list[dict[str, object]]:
    """The live instances with the clusters each watches."""
    now = utcnow()
    ttl = timedelta(seconds=ctx.settings.tracking.lease_ttl_s)
    async with ctx.sessions() as s:
        alive = list(
            (
                await s.execute(sa.select(Instance).where(Instance.heartbeat_at > now - ttl).order_by(Instance.id))
            ).scalars()
        )
        leases = (
            await s.execute(
                sa.select(ClusterLease.instance_id, ClusterLease.cluster_id).where(ClusterLease.expires_at > now)
            )
        ).all()
    by_instance: dict[str, list[int]] = {}
    for instance_id, cluster_id in leases:
        by_instance.setdefault(instance_id, []).append(cluster_id)
    return [
        {"id": i.id, "heartbeat_at": i.heartbeat_at, "cluster_ids": sorted(by_instance.get(i.id, []))} for i in alive
    ]
