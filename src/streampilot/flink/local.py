"""A standalone session cluster that the platform starts, owns and stops.

Each local cluster lives in its own folder (conf, log, pid, checkpoints, savepoints, uploads),
binds to loopback on its own ports and uses fast REST settings, so several can run side by side.
Daemon scripts are used (not foreground children) so a cluster survives a crash of the platform
and is adopted again on its next start.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from streampilot.flink.client import FlinkClient, FlinkError
from streampilot.flink.homes import HomeInfo, java_options


class LocalClusterError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class LocalClusterLayout:
    home: HomeInfo
    root: Path
    rest_port: int
    rpc_port: int
    slots: int = 4
    taskmanagers: int = 1
    extra_conf: tuple[tuple[str, str], ...] = ()
    extra_jars: tuple[Path, ...] = ()  # put in the cluster's lib/ (streampilot's status listener)

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def checkpoint_dir(self) -> Path:
        return self.root / "checkpoints"

    @property
    def savepoint_dir(self) -> Path:
        return self.root / "savepoints"

    @property
    def lib_dir(self) -> Path:
        """The home's lib/ plus opt/flink-python: PyFlink classes load once, not once per job."""
        return self.root / "lib"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            FLINK_CONF_DIR=str(self.root / "conf"),
            FLINK_LOG_DIR=str(self.root / "log"),
            FLINK_PID_DIR=str(self.root / "pid"),
            FLINK_HOME=str(self.home.path),
            FLINK_LIB_DIR=str(self.lib_dir),
        )
        return env

    def config(self) -> dict[str, Any]:
        java_opts = " ".join(java_options(self.home))
        conf: dict[str, Any] = {
            "env.java.opts.all": java_opts,
            "jobmanager.bind-host": "127.0.0.1",
            "jobmanager.rpc.address": "127.0.0.1",
            "jobmanager.rpc.port": self.rpc_port,
            "taskmanager.bind-host": "127.0.0.1",
            "taskmanager.host": "127.0.0.1",
            "rest.address": "127.0.0.1",
            "rest.bind-address": "127.0.0.1",
            "rest.port": self.rest_port,
            "jobmanager.memory.process.size": "1024m",
            "taskmanager.memory.process.size": "1280m",
            "taskmanager.numberOfTaskSlots": self.slots,
            "parallelism.default": 1,
            "rest.cache.execution-graph.timeout": "0 ms",
            "web.refresh-interval": "500 ms",
            "heartbeat.interval": "1 s",
            "heartbeat.timeout": "5 s",
            "execution.checkpointing.dir": self.checkpoint_dir.as_uri(),
            "execution.checkpointing.savepoint-dir": self.savepoint_dir.as_uri(),
            "web.upload.dir": str(self.root / "uploads"),
            "io.tmp.dirs": str(self.root / "tmp"),
            "blob.server.port": "0",
            "taskmanager.rpc.port": "0",
            "taskmanager.data.port": 0,
            "jobmanager.execution.failover-strategy": "region",
        }
        conf.update(dict(self.extra_conf))
        return conf

    def write(self) -> None:
        conf_dir = self.root / "conf"
        for sub in ("conf", "log", "pid", "checkpoints", "savepoints", "uploads", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        lib = self.lib_dir
        if lib.exists():
            shutil.rmtree(lib)
        lib.mkdir()
        for jar in [
            *(self.home.path / "lib").glob("*.jar"),
            *(self.home.path / "opt").glob("flink-python*.jar"),
            *self.extra_jars,
        ]:
            (lib / jar.name).symlink_to(jar)
        for f in (self.home.path / "conf").glob("log4j*.properties"):
            (conf_dir / f.name).write_text(f.read_text())
        (conf_dir / "config.yaml").write_text(yaml.safe_dump(self.config(), sort_keys=True))


class LocalCluster:
    """Start, stop, adopt and inspect one local standalone cluster."""

    def __init__(self, layout: LocalClusterLayout) -> None:
        self.layout = layout

    async def _script(self, script: str, *args: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            str(self.layout.home.path / "bin" / script),
            *args,
            env=self.layout.env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
        if proc.returncode != 0:
            raise LocalClusterError(f"{script} {' '.join(args)} failed: {out.decode(errors='replace')[-2000:]}")

    def pids(self, role: str) -> list[int]:
        name = "standalonesession" if role == "jobmanager" else "taskexecutor"
        pid_file = self.layout.root / "pid" / f"flink-{os.environ.get('USER', '')}-{name}.pid"
        files = [pid_file] if pid_file.exists() else list((self.layout.root / "pid").glob(f"*-{name}.pid"))
        pids: list[int] = []
        for f in files:
            for line in f.read_text().split():
                if line.strip().isdigit() and _alive(int(line)):
                    pids.append(int(line))
        return pids

    async def is_up(self) -> bool:
        client = FlinkClient(self.layout.rest_url, timeout_s=2)
        try:
            await client.overview()
            return True
        except FlinkError:
            return False
        finally:
            await client.close()

    async def start(self, timeout_s: float = 60) -> None:
        """Start the JobManager and TaskManagers, or adopt them if they already run."""
        if self.pids("jobmanager") and await self.is_up():
            missing = self.layout.taskmanagers - len(self.pids("taskmanager"))
            for _ in range(max(0, missing)):
                await self.start_taskmanager()
            await self.wait_ready(timeout_s)
            return
        await self.stop()
        self.layout.write()

        # TaskManagers retry until their JobManager answers, so they start alongside it (each script
        # runs a JVM of its own to size memory: seconds apiece). TaskManagers one after another: the
        # daemon script numbers their log files by counting those already started.
        async def taskmanagers() -> None:
            for _ in range(self.layout.taskmanagers):
                await self.start_taskmanager()

        await asyncio.gather(self._script("jobmanager.sh", "start"), taskmanagers())
        await self.wait_ready(timeout_s)

    async def start_taskmanager(self) -> None:
        await self._script("taskmanager.sh", "start")

    async def wait_ready(self, timeout_s: float) -> None:
        client = FlinkClient(self.layout.rest_url, timeout_s=2)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        last = "no answer yet"
        try:
            while loop.time() < deadline:
                try:
                    ov = await client.overview()
                    # A TaskManager registers first and reports its slots a moment later: wait for both.
                    slots = self.layout.taskmanagers * self.layout.slots
                    if ov.taskmanagers >= self.layout.taskmanagers and ov.slots_total >= slots:
                        return
                    last = (
                        f"{ov.taskmanagers} of {self.layout.taskmanagers} TaskManagers registered, "
                        f"{ov.slots_total} of {slots} slots"
                    )
                except FlinkError as exc:
                    last = str(exc)
                await asyncio.sleep(0.3)
        finally:
            await client.close()
        raise LocalClusterError(
            f"local cluster at {self.layout.rest_url} not ready after {timeout_s:.0f} s ({last}); "
            f"see logs in {self.layout.root / 'log'}"
        )

    async def stop(self) -> None:
        for role in ("taskmanager", "jobmanager"):
            for pid in self.pids(role):
                _signal(pid, signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while loop.time() < deadline and (self.pids("taskmanager") or self.pids("jobmanager")):
            await asyncio.sleep(0.2)
        for role in ("taskmanager", "jobmanager"):
            for pid in self.pids(role):
                _signal(pid, signal.SIGKILL)

    def kill(self, role: str, sig: signal.Signals = signal.SIGKILL) -> list[int]:
        """Kill the JobManager or all TaskManagers at once (used to inject faults)."""
        pids = self.pids(role)
        for pid in pids:
            _signal(pid, sig)
        return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "State:\tZ" not in status


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
