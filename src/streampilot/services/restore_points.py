"""Where an app's state can be restored from: savepoints and retained checkpoints, the newest first.

What the database recorded is not all there is: while the platform was down (or between two reads
of the details loop) Flink kept completing checkpoints and subsumed the recorded ones. So the
candidates are the recorded snapshots, the ``chk-*`` directories beside any recorded checkpoint and
under the app's checkpoint directory, and Flink's own checkpoint history of the app's last job while
the cluster still knows it; they are compared by when they were written.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

import sqlalchemy as sa

from streampilot.flink.client import FlinkError
from streampilot.services.context import Context
from streampilot.services.errors import ServiceError
from streampilot.services.targets import target_for
from streampilot.store.orm import App, Cluster, Snapshot

HISTORY_TIMEOUT_S = 1.0


def local_path(path: str) -> Path | None:
    parsed = urlparse(path)
    if parsed.scheme == "file":
        return Path(parsed.path)
    if parsed.scheme == "" and path.startswith("/"):
        return Path(path)
    return None


def snapshot_problem(path: str) -> str | None:
    """Why a snapshot cannot be restored, or None if it can (as far as we can see: remote paths are trusted)."""
    local = local_path(path)
    if local is None:
        return None
    metadata = local if local.name == "_metadata" else local / "_metadata"
    try:
        with metadata.open("rb") as f:
            f.read(1)
    except FileNotFoundError:
        return f"no _metadata in {local}"
    except NotADirectoryError:
        return f"{local} is not a directory"
    except OSError as exc:
        return f"cannot read {metadata}: {exc.strerror or exc}"
    return None


@dataclass(frozen=True)
class Candidate:
    path: str
    written_at: float  # seconds since the epoch: the _metadata file's time where we can see it
    source: str  # "recorded", "on storage" or "Flink's history"


def _written_at(path: str, fallback: float) -> float:
    local = local_path(path)
    if local is None:
        return fallback
    try:
        return (local / "_metadata").stat().st_mtime
    except OSError:
        return fallback


def _on_storage(job_dirs: set[Path]) -> list[Candidate]:
    found = []
    for job_dir in job_dirs:
        try:
            checkpoints = list(job_dir.glob("chk-*"))
        except OSError:
            continue
        for chk in checkpoints:
            try:
                written = (chk / "_metadata").stat().st_mtime
            except OSError:
                continue
            found.append(Candidate(f"file:{chk}", written, "on storage"))
    return found


async def candidates(ctx: Context, app: App) -> list[Candidate]:
    """Every snapshot of the app we can find, newest first."""
    async with ctx.sessions() as s:
        rows = list((await s.execute(sa.select(Snapshot).where(Snapshot.app_id == app.id))).scalars())
        cluster = await s.get(Cluster, app.cluster_id)
    job_ids = {r.job_id for r in rows if r.job_id} | ({app.job_id} if app.job_id else set())
    job_dirs: set[Path] = set()
    for r in rows:
        local = local_path(r.path)
        if r.kind == "checkpoint" and local is not None:
            job_dirs.add(local.parent)  # the job's directory: chk-* written after the recorded one
            job_dirs.update(local.parent.parent / j for j in job_ids)
    base = local_path(str((app.launch_config or {}).get("execution.checkpointing.dir", "")))
    if base is not None:
        job_dirs.update(base / j for j in job_ids)
    recorded = [(r.path, _epoch(r.created_at)) for r in rows]

    def from_files() -> list[Candidate]:  # every file system look in one thread
        known = [Candidate(path, _written_at(path, at), "recorded") for path, at in recorded]
        return known + _on_storage(job_dirs)

    found = await asyncio.to_thread(from_files)
    if app.job_id and cluster is not None:
        found += await _flink_history(ctx, cluster, app.job_id)
        found += await _kept_by_the_target(ctx, cluster, app.job_id)
    by_path: dict[str, Candidate] = {}
    for c in found:
        known = by_path.get(c.path)
        if known is None or c.written_at > known.written_at:
            by_path[c.path] = c
    return sorted(by_path.values(), key=lambda c: c.written_at, reverse=True)


async def _flink_history(ctx: Context, cluster: Cluster, job_id: str) -> list[Candidate]:
    """The last completed checkpoint of the app's last job, while Flink still lists the job."""
    rest = target_for(ctx, cluster).flink_api(job_id)
    if rest is None:
        return []
    try:  # asked while a request waits (start's checks): a slow cluster only loses this source
        stats = await asyncio.wait_for(rest[0].checkpoints(rest[1]), HISTORY_TIMEOUT_S)
    except (FlinkError, TimeoutError):
        return []
    latest = stats.latest_completed
    if latest is None or not latest.external_path or latest.latest_ack_ms is None:
        return []
    return [Candidate(latest.external_path, latest.latest_ack_ms / 1000, "Flink's history")]


async def _kept_by_the_target(ctx: Context, cluster: Cluster, job_id: str) -> list[Candidate]:
    """Savepoints the target keeps by itself (the Kubernetes operator's FlinkStateSnapshots, e.g. its
    periodic savepoints): a target that does not answer only loses this source."""
    try:
        kept = await asyncio.wait_for(target_for(ctx, cluster).kept_savepoints(job_id), HISTORY_TIMEOUT_S)
    except (ServiceError, TimeoutError):
        return []
    return [Candidate(path, at, "the operator's FlinkStateSnapshots") for path, at in kept]


async def newest_restorable(ctx: Context, app: App) -> Candidate | None:
    for candidate in await candidates(ctx, app):
        if await asyncio.to_thread(snapshot_problem, candidate.path) is None:
            return candidate
    return None


def _epoch(at: datetime) -> float:
    return at.timestamp()
