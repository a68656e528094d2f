"""Reaction time of the checkpoint-failure policy on a real local cluster (default 2 s tick).

Measures, per round, the time from the failure of the N-th failed checkpoint (Flink's own failure
timestamp) to the submission of the restarted job (goal <= one tick + 1 s). Run: ``make bench-policy``.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from streampilot.domain.apps import AppKind, AppSpec, CheckpointFailurePolicy, Checkpointing
from streampilot.flink.homes import bundled_home_path, inspect_home
from streampilot.flink.local import LocalCluster, LocalClusterLayout, free_port
from streampilot.services.platform import Platform
from streampilot.settings import Settings

ROUNDS = 5
JOB_SOURCE = Path(__file__).parent.parent / "tests" / "e2e" / "jobs" / "PolicyJob.java"


def build_jar(home: Path, out: Path) -> Path:
    classes = out / "classes"
    subprocess.run(["javac", "-d", str(classes), "-cp", f"{home}/lib/*", str(JOB_SOURCE)], check=True)
    jar = out / "policy-job.jar"
    subprocess.run(["jar", "--create", "--file", str(jar), "-C", str(classes), "."], check=True)
    return jar


async def wait(cond, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await cond():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError


async def run(root: Path) -> None:
    home_path = bundled_home_path()
    assert home_path is not None
    cluster = LocalCluster(
        LocalClusterLayout(
            home=inspect_home(home_path), root=root / "flink", rest_port=free_port(), rpc_port=free_port(), slots=8
        )
    )
    await cluster.start()
    platform = Platform(Settings().with_(home=root / "home"))
    markers = root / "markers"
    markers.mkdir()
    try:
        await platform.open()
        platform.start_loops()
        c = await platform.clusters.add("bench", "standalone", rest_url=cluster.layout.rest_url)
        jar = await platform.jars.store("policy-job.jar", build_jar(home_path, root).read_bytes())
        spec = AppSpec(
            kind=AppKind.JAR,
            jar_id=jar.id,
            entry_class="example.PolicyJob",
            args=[str(markers)],
            checkpointing=Checkpointing(interval_s=0.5, timeout_s=1, tolerable_failed_checkpoints=1000),
            checkpoint_failure_policy=CheckpointFailurePolicy(failures=2, window_s=300, action="restart"),
        )
        app = await platform.apps.create("policy-bench", c.id, spec)
        await platform.lifecycle.start(app.id)
        for _ in range(ROUNDS):
            current = await platform.apps.get(app.id)

            async def checkpointed() -> bool:
                a = await platform.apps.get(app.id)
                return a.state == "RUNNING" and (a.last_checkpoint or {}).get("completed", 0) >= 1

            await wait(checkpointed)
            (markers / f"slow-{current.job_id}").touch()

            async def restarted(old_job: str | None = current.job_id) -> bool:
                a = await platform.apps.get(app.id)
                return a.job_id != old_job and a.state == "RUNNING"

            await wait(restarted)
        reactions = [ms / 1000 for ms in platform.policies.reactions_ms]
        tick = platform.settings.tracking.tick_s
        print(
            f"checkpoint-failure policy reaction over {len(reactions)} restarts (tick {tick:g} s): "
            f"median {statistics.median(reactions):.2f} s, max {max(reactions):.2f} s   (goal <= {tick + 1:g} s)"
        )
    finally:
        await platform.close()
        await cluster.stop()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(Path(tmp)))


if __name__ == "__main__":
    main()
