"""From an application version to a ready ``Submission`` (the launch configuration included)."""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from streampilot.domain.apps import AppKind, AppSpec
from streampilot.domain.errors import FieldProblem, SpecError
from streampilot.domain.flinkconf import build_launch_config
from streampilot.domain.flinkoptions import option_problem
from streampilot.domain.sqlscript import StatementKind, locate_flink_error, parse_script
from streampilot.flink.client import FlinkClient, FlinkRejected, JarRun
from streampilot.flink.homes import HomeInfo
from streampilot.flink.launch import (
    PYTHON_DRIVER,
    PYTHON_LAUNCHER,
    RUNNER_CLASS,
    Submission,
    encode_statements,
    python_interpreter,
)
from streampilot.services.context import Context
from streampilot.services.errors import Conflict
from streampilot.services.jars import dependency_jars, jar_classes
from streampilot.store.orm import Jar


def check_python(source: str) -> None:
    try:
        compile(source, "app.py", "exec")
    except SyntaxError as exc:
        raise SpecError.one("python", f"Python syntax error: {exc.msg}", exc.lineno, exc.offset) from None


def launch_config(spec: AppSpec, app_name: str) -> dict[str, str]:
    """Validate everything that needs no I/O and return the configuration to submit."""
    problems = spec.kind_problems()
    if problems:
        raise SpecError(problems)
    sets: dict[str, str] = {}
    if spec.kind == AppKind.SQL:
        assert spec.sql is not None
        statements = parse_script(spec.sql)
        sets = {s.key: s.value for s in statements if s.kind == StatementKind.SET and s.key and s.value is not None}
        wrong = [
            FieldProblem("sql", problem, s.line, s.column)
            for s in statements
            if s.kind == StatementKind.SET and s.key and (problem := option_problem(s.key, s.value or ""))
        ]
        if wrong:
            raise SpecError(wrong)
    elif spec.kind == AppKind.PYTHON:
        assert spec.python is not None
        check_python(spec.python)
    config = build_launch_config(spec, app_name=app_name, sql_sets=sets)
    if spec.kind == AppKind.PYTHON:
        config.setdefault("python.executable", python_interpreter())
        config.setdefault("python.client.executable", python_interpreter())
    return config


async def check_jar_entry(jar: Jar, entry_class: str | None) -> None:
    main, classes = await asyncio.to_thread(jar_classes, Path(jar.path))
    if entry_class is None:
        if main is None:
            raise SpecError.one("entry_class", f"jar {jar.filename!r} names no Main-Class; give entry_class")
    elif entry_class not in classes:
        raise SpecError.one("entry_class", f"class {entry_class!r} is not in jar {jar.filename!r}")


@dataclass
class SubmissionBuilder:
    ctx: Context

    async def build(
        self,
        *,
        app_id: int,
        app_name: str,
        version: int,
        spec: AppSpec,
        home: HomeInfo,
        job_id: str | None,
        restore_path: str | None = None,
        allow_non_restored_state: bool = False,
        python_in_lib: bool = False,
    ) -> Submission:
        config = launch_config(spec, app_name)
        run = JarRun(
            entry_class=None,
            args=[],
            parallelism=spec.parallelism,
            configuration=config,
            job_id=job_id,
            savepoint_path=restore_path,
            allow_non_restored_state=allow_non_restored_state,
        )
        if spec.kind == AppKind.SQL:
            assert spec.sql is not None
            statements = parse_script(spec.sql)
            jar = await self.ctx.runners.sql_runner(home)
            run = _with(run, entry_class=RUNNER_CLASS, args=encode_statements(statements))
            return await self._with_dependencies(spec, Submission(jar=jar, run=run, statements=statements))
        if spec.kind == AppKind.JAR:
            assert spec.jar_id is not None
            async with self.ctx.sessions() as s:
                jar_row = await s.get(Jar, spec.jar_id)
            if jar_row is None:
                raise SpecError.one("jar_id", f"no uploaded jar with id {spec.jar_id}")
            run = _with(run, entry_class=spec.entry_class, args=spec.args)
            return await self._with_dependencies(spec, Submission(jar=Path(jar_row.path), run=run))
        assert spec.python is not None
        python_jar = await self.ctx.runners.python_carrier() if python_in_lib else home.python_jar
        if python_jar is None:
            raise Conflict(f"the Flink home at {home.path} has no opt/flink-python jar; PyFlink apps need it")
        # The script and its files in one directory: the launcher puts it first on the client's path
        # (as Python does for a script), Flink's python.files on its workers' path.
        base = self.ctx.home / "scripts" / f"app-{app_id}-v{version}"
        script = base / "main.py"
        error_file = base.with_name(f"{base.name}-{job_id or 'check'}.error.json")
        requirements = base.with_name(f"{base.name}.requirements.txt")

        def write() -> None:
            if base.exists():
                shutil.rmtree(base)
            base.mkdir(parents=True)
            script.write_text(spec.python or "")
            for rel, content in spec.python_files.items():
                (base / rel).parent.mkdir(parents=True, exist_ok=True)
                (base / rel).write_text(content)
            if spec.python_requirements:
                requirements.write_text("".join(f"{r.strip()}\n" for r in spec.python_requirements))
            error_file.unlink(missing_ok=True)

        await asyncio.to_thread(write)
        config = dict(run.configuration)
        if spec.python_files:
            config["python.files"] = str(base)
        if spec.python_requirements:
            wheels = f"#{spec.python_wheel_dir}" if spec.python_wheel_dir else ""
            config["python.requirements"] = f"{requirements}{wheels}"
        args = ["-py", str(PYTHON_LAUNCHER), str(script), str(error_file), *spec.args]
        run = _with(run, entry_class=PYTHON_DRIVER, args=args, configuration=config)
        return await self._with_dependencies(spec, Submission(jar=python_jar, run=run, error_file=error_file))

    async def _with_dependencies(self, spec: AppSpec, submission: Submission) -> Submission:
        """The submission's jar with the app's uploaded dependency jars nested in it (see bundle)."""
        if not spec.dependency_jar_ids:
            return submission
        deps = [(j.sha256, Path(j.path)) for j in await dependency_jars(self.ctx, spec.dependency_jar_ids)]
        return replace(submission, jar=await self.ctx.runners.bundle(submission.jar, deps))


def _with(run: JarRun, **changes: object) -> JarRun:
    return replace(run, **changes)  # type: ignore[arg-type]


async def script_failure(submission: Submission) -> tuple[str, int | None] | None:
    """Why a PyFlink script failed, as its launcher wrote it (the file is read once, then removed)."""
    path = submission.error_file
    if path is None:
        return None

    def read() -> dict[str, object] | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        path.unlink(missing_ok=True)
        return data if isinstance(data, dict) else None

    data = await asyncio.to_thread(read)
    if not data or not isinstance(data.get("message"), str):
        return None
    line = data.get("line")
    return str(data["message"]), line if isinstance(line, int) else None


async def explain_rejection(submission: Submission, exc: FlinkRejected, kind: AppKind) -> SpecError:
    """A Flink refusal of the user's program as a field error (with script line where known)."""
    message = str(exc)
    if kind == AppKind.PYTHON:
        failure = await script_failure(submission)
        if failure is not None:
            return SpecError.one("python", f"the PyFlink script failed: {failure[0]}", failure[1])
    if kind == AppKind.SQL and submission.statements is not None:
        text, line, column = locate_flink_error(submission.statements, message)
        return SpecError.one("sql", f"Flink rejected the script: {text}", line, column)
    if kind == AppKind.JAR:
        if "ClassNotFoundException" in message or "Could not find class" in message:
            return SpecError.one("entry_class", f"Flink could not load the entry class: {message}")
        return SpecError.one("jar_id", f"Flink rejected the job: {message}")
    return SpecError.one("python", f"Flink rejected the PyFlink script: {message}")


async def validate_on_cluster(ctx: Context, client: FlinkClient, submission: Submission, kind: AppKind) -> None:
    """Ask the cluster to plan the job without running it; FlinkUnavailable passes through."""
    try:
        await ctx.uploads.plan(client, submission)
    except FlinkRejected as exc:
        raise await explain_rejection(submission, exc, kind) from None
