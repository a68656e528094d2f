"""Turning an application version into a jar run on a session cluster, and submitting it.

All three kinds go through the JobManager's jar-run endpoint, which starts a job in well under a
second (``flink run`` costs seconds of client start-up):
- sql: our small SQL runner (compiled once per Flink version from the Java source shipped with
  streampilot) gets the classified statements as arguments;
- jar: the user's jar with its entry class and arguments;
- python: Flink's own ``PythonDriver`` from the distribution's flink-python jar runs the script. On a
  cluster that has flink-python on its own class path (in lib/, as the local clusters have it), the
  jar sent is an empty carrier: flink-python's ~20,000 classes are then loaded once per JobManager
  and TaskManager instead of once per job, which filled the TaskManager's metaspace after a few
  dozen PyFlink jobs ("OutOfMemoryError: Metaspace", the TaskManager shut down).
The job id is chosen by us before submission, so a crash between submit and store cannot lead to
a second job: the id is already recorded and the tracker finds it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from streampilot.domain.sqlscript import Statement, StatementKind
from streampilot.flink.client import FlinkClient, JarRun, JobNotFound
from streampilot.flink.homes import HomeInfo

RUNNER_SOURCE = Path(__file__).parent / "runner" / "StreampilotSqlRunner.java"
PYTHON_LAUNCHER = Path(__file__).parent / "runner" / "pyflink_launcher.py"
RUNNER_CLASS = "io.streampilot.StreampilotSqlRunner"
STATUS_PUSH_SOURCE = Path(__file__).parent / "runner" / "StreampilotStatusPush.java"
STATUS_PUSH_CLASS = "io.streampilot.StreampilotStatusPush"
PYTHON_DRIVER = "org.apache.flink.client.python.PythonDriver"


class LaunchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Submission:
    jar: Path
    run: JarRun
    statements: list[Statement] | None = None
    error_file: Path | None = None  # where the PyFlink launcher writes why the script failed


def encode_statements(statements: list[Statement]) -> list[str]:
    out = []
    for s in statements:
        payload = f"set:{s.key}\n{s.value}" if s.kind == StatementKind.SET else f"{s.kind.value}:{s.text}"
        out.append(base64.b64encode(payload.encode()).decode())
    return out


def python_interpreter() -> str:
    """The interpreter PyFlink jobs run with: ours, which has ``apache-flink`` installed."""
    return sys.executable


def has_flink_python(classpath: list[str]) -> bool:
    """Whether a JobManager's class path (``/jobmanager/environment``) holds flink-python."""
    return any(Path(entry).name.startswith("flink-python") and entry.endswith(".jar") for entry in classpath)


class RunnerBuilder:
    """Compiles the SQL runner against a Flink home's lib/ once and caches the jar."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self._lock = asyncio.Lock()

    async def python_carrier(self) -> Path:
        """A jar with a manifest only: the "user jar" of a PyFlink job whose classes the cluster has."""
        target = self.cache_dir / "streampilot-python-carrier.jar"
        async with self._lock:
            if not target.exists():
                await asyncio.to_thread(_write_carrier, target)
            return target

    async def bundle(self, base: Path, dependencies: list[tuple[str, Path]]) -> Path:
        """``base`` with each dependency nested under lib/: Flink's PackagedProgram extracts nested
        lib/*.jar onto the program's class path and ships them with the job (the way a jar brings
        its libraries), so connectors, formats and UDFs reach the JobManager and the TaskManagers of
        any session cluster through the one jar upload.
        """
        st = await asyncio.to_thread(base.stat)
        key = hashlib.sha256(f"{base}|{st.st_size}|{st.st_mtime_ns}".encode())
        for digest, _ in dependencies:
            key.update(digest.encode())
        target = self.cache_dir / f"bundle-{key.hexdigest()[:20]}-{base.name}"
        async with self._lock:
            if not target.exists():
                await asyncio.to_thread(_write_bundle, target, base, [p for _, p in dependencies])
            return target

    async def sql_runner(self, home: HomeInfo) -> Path:
        return await self._built(home, RUNNER_SOURCE, "streampilot-sql-runner", RUNNER_CLASS, "the SQL runner")

    async def status_push(self, home: HomeInfo) -> Path:
        """The JobManager's job status listener (Flink 2.x): a jar for a cluster's lib/."""
        return await self._built(home, STATUS_PUSH_SOURCE, "streampilot-status-push", None, "the status listener")

    async def _built(self, home: HomeInfo, source: Path, name: str, main_class: str | None, what: str) -> Path:
        """``source`` compiled against the home's lib/ into a jar, once per Flink version and source."""
        source_hash = hashlib.sha256(await asyncio.to_thread(source.read_bytes)).hexdigest()[:12]
        target = self.cache_dir / f"{name}-{home.version}-{source_hash}.jar"
        async with self._lock:
            if target.exists():
                return target
            if shutil.which("javac") is None or shutil.which("jar") is None:
                raise LaunchError(f"javac and jar (a JDK) are needed to build {what}; install a JDK 17")
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory() as tmp:
                classes = Path(tmp) / "classes"
                classes.mkdir()
                await _run("javac", "-d", str(classes), "-cp", home.lib_classpath, str(source))
                partial = Path(tmp) / "built.jar"
                entry = ["--main-class", main_class] if main_class else []
                await _run("jar", "--create", "--file", str(partial), *entry, "-C", str(classes), ".")
                shutil.move(str(partial), target)
            return target


def _write_carrier(target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w") as jar:
        jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nCreated-By: streampilot\r\n\r\n")
    partial.replace(target)


def _write_bundle(target: Path, base: Path, dependencies: list[Path]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            with src.open(item) as data, out.open(item, "w") as copy:
                shutil.copyfileobj(data, copy, 1 << 20)
        for i, dep in enumerate(dependencies):
            out.write(dep, f"lib/streampilot-dep-{i}-{dep.name}", compress_type=zipfile.ZIP_STORED)
    partial.replace(target)


async def _run(*cmd: str) -> None:
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=180)
    if proc.returncode != 0:
        raise LaunchError(f"{cmd[0]} failed: {out.decode(errors='replace')[-2000:]}")


class JarUploads:
    """Uploads each distinct jar once per cluster and remembers its Flink jar id."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], str] = {}
        self._digests: dict[tuple[str, int, float], str] = {}
        self._lock = asyncio.Lock()

    async def _digest(self, path: Path) -> str:
        st = await asyncio.to_thread(path.stat)
        key = (str(path), st.st_size, st.st_mtime)
        if key not in self._digests:
            self._digests[key] = await asyncio.to_thread(lambda: hashlib.sha256(path.read_bytes()).hexdigest()[:16])
        return self._digests[key]

    async def jar_id(self, client: FlinkClient, path: Path, *, refresh: bool = False) -> str:
        digest = await self._digest(path)
        key = (client.base_url, digest)
        async with self._lock:
            if refresh:
                self._ids.pop(key, None)
            if key not in self._ids:
                name = f"sp-{digest}-{path.name}"
                existing = [f for f in await client.list_jars() if f.get("name") == name]
                self._ids[key] = str(existing[0]["id"]) if existing else await client.upload_jar(path, name)
            return self._ids[key]

    async def submit(self, client: FlinkClient, submission: Submission) -> str:
        jar_id = await self.jar_id(client, submission.jar)
        try:
            return await client.run_jar(jar_id, submission.run)
        except JobNotFound:
            # The cluster lost its uploaded jars (restarted); upload again once.
            jar_id = await self.jar_id(client, submission.jar, refresh=True)
            return await client.run_jar(jar_id, submission.run)

    async def plan(self, client: FlinkClient, submission: Submission) -> None:
        jar_id = await self.jar_id(client, submission.jar)
        try:
            await client.plan_jar(jar_id, submission.run)
        except JobNotFound:
            jar_id = await self.jar_id(client, submission.jar, refresh=True)
            await client.plan_jar(jar_id, submission.run)
