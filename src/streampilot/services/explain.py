"""EXPLAIN of a SQL app's script: Flink's planner, run by our SQL runner in a JVM of its own.

Flink's REST API cannot explain SQL, so the runner (the same jar the app's job runs) plans the
script with ``--explain`` against the Flink home of the app's cluster and prints what Flink's
``StatementSet.explain()`` says: the abstract syntax tree, the optimized physical plan and the
execution plan. No cluster is needed and nothing runs; the app's dependency jars are on the class
path, so its functions and connectors plan as they would run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from streampilot.domain.apps import AppKind, AppSpec
from streampilot.domain.errors import SpecError
from streampilot.domain.sqlscript import locate_flink_error, parse_script, root_first
from streampilot.flink.client import root_cause
from streampilot.flink.homes import HomeInfo, java_options
from streampilot.flink.launch import RUNNER_CLASS, encode_statements
from streampilot.services.context import Context
from streampilot.services.errors import Conflict, Unavailable
from streampilot.services.homes import home_info
from streampilot.services.jars import dependency_jars
from streampilot.services.variables import VariableService
from streampilot.store.orm import Cluster

EXPLAIN_TIMEOUT_S = 120.0
EXPLAIN_ERROR = "streampilot-explain-error: "  # the runner's one line about a failed EXPLAIN


@dataclass
class Explainer:
    ctx: Context

    async def explain(self, spec: AppSpec, cluster: Cluster) -> str:
        if spec.kind != AppKind.SQL:
            raise SpecError.one("kind", f"EXPLAIN shows the plan of a SQL script; this is a {spec.kind.value} app")
        resolved = await VariableService(self.ctx).resolve(spec, cluster.team_id)
        try:
            return resolved.hide(await self._explain(resolved.spec, cluster))
        except SpecError as exc:
            raise resolved.hide_in(exc) from None

    async def _explain(self, spec: AppSpec, cluster: Cluster) -> str:
        assert spec.sql is not None
        statements = parse_script(spec.sql)
        home = await home_info(self.ctx, cluster.flink_home_id)
        runner = await self.ctx.runners.sql_runner(home)
        deps = [Path(j.path) for j in await dependency_jars(self.ctx, spec.dependency_jar_ids, cluster.team_id)]
        java = shutil.which("java", path=os.environ.get("JAVA_HOME", "") + "/bin") or shutil.which("java")
        if java is None:
            raise Conflict("no java found to run Flink's planner: install a JDK 17 or set JAVA_HOME")
        args = ["--explain", spec.runtime_mode, *encode_statements(statements)]
        out, err, code = await _java(java, home, [runner, *deps], args)
        if code != 0:
            said = err.split(EXPLAIN_ERROR, 1)[1].strip() if EXPLAIN_ERROR in err else root_cause(err)
            text, line, column = locate_flink_error(statements, said)
            if line is None:
                text = root_first(said)
            raise SpecError.one("sql", f"Flink cannot plan the script: {text[:2000]}", line, column)
        return out.strip()


async def _java(java: str, home: HomeInfo, jars: list[Path], args: list[str]) -> tuple[str, str, int]:
    classpath = os.pathsep.join([*(str(j) for j in jars), home.lib_classpath])
    proc = await asyncio.create_subprocess_exec(
        java,
        *await asyncio.to_thread(java_options, home),
        "-Xmx512m",
        "-cp",
        classpath,
        RUNNER_CLASS,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=EXPLAIN_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise Unavailable(f"Flink's planner did not explain the script within {EXPLAIN_TIMEOUT_S:.0f} s") from None
    return out.decode(errors="replace"), err.decode(errors="replace"), proc.returncode or 0
