"""Clusters: register, list, delete; start and stop local ones."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from streampilot.api.deps import PlatformDep, account
from streampilot.api.schemas import ClusterCreate, ClusterEventOut, ClusterOut
from streampilot.domain.access import Role
from streampilot.services.push import push_configuration

router = APIRouter(prefix="/api/v1/clusters", tags=["clusters"], dependencies=[Depends(account)])
jobs = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], dependencies=[Depends(account)])


@router.get("")
async def list_clusters(p: PlatformDep) -> list[ClusterOut]:
    return [ClusterOut.of(c, state=p.clusters.phase(c)) for c in await p.clusters.list_clusters()]


@router.post("", status_code=201)
async def add_cluster(body: ClusterCreate, p: PlatformDep) -> ClusterOut:
    cluster = await p.clusters.add(
        body.name,
        body.kind,
        rest_url=body.rest_url,
        flink_home_id=body.flink_home_id,
        slots=body.slots,
        taskmanagers=body.taskmanagers,
        options_raw=body.options,
        team_id=body.team_id,
    )
    return ClusterOut.of(cluster)


@jobs.get("/unmanaged")
async def unmanaged_jobs(p: PlatformDep) -> list[dict[str, Any]]:
    """Jobs running on known clusters that no application owns."""
    return await p.clusters.unmanaged_jobs()


@router.get("/{cluster_id}")
async def get_cluster(cluster_id: int, p: PlatformDep) -> ClusterOut:
    cluster = await p.clusters.get(cluster_id)
    return ClusterOut.of(cluster, await p.clusters.status(cluster), p.clusters.phase(cluster))


@router.get("/{cluster_id}/push")
async def cluster_push(cluster_id: int, p: PlatformDep) -> dict[str, str]:
    """What a JobManager's configuration needs to push this cluster's job events (a developer's call:
    the token is in it); the jar is streampilot's status listener (see the README)."""
    await p.clusters.get(cluster_id, Role.DEVELOPER, "read the push token of this cluster")
    return push_configuration(p.ctx, cluster_id)


@router.get("/{cluster_id}/events")
async def cluster_events(
    cluster_id: int, p: PlatformDep, limit: int = Query(200, ge=1, le=1000)
) -> list[ClusterEventOut]:
    """The cluster's timeline (local clusters: processes that died and were started again), newest first."""
    return [ClusterEventOut.of(e) for e in await p.clusters.events(cluster_id, limit)]


@router.delete("/{cluster_id}", status_code=204)
async def delete_cluster(cluster_id: int, p: PlatformDep) -> None:
    await p.clusters.delete(cluster_id)


@router.post("/{cluster_id}/start")
async def start_cluster(cluster_id: int, p: PlatformDep) -> ClusterOut:
    cluster = await p.clusters.start(cluster_id)
    return ClusterOut.of(cluster, await p.clusters.status(cluster), p.clusters.phase(cluster))


@router.post("/{cluster_id}/stop")
async def stop_cluster(cluster_id: int, p: PlatformDep) -> ClusterOut:
    cluster = await p.clusters.stop(cluster_id)
    return ClusterOut.of(cluster, state=p.clusters.phase(cluster))
