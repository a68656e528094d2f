"""User jars: stored once under STREAMPILOT_HOME/jars, checked to really be Java archives."""

from __future__ import annotations

import asyncio
import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from streampilot.domain.errors import SpecError
from streampilot.domain.manifest import main_class
from streampilot.services import access
from streampilot.services.context import Context
from streampilot.services.errors import NotFound
from streampilot.store.orm import Jar

MAX_JAR_BYTES = 512 * 1024 * 1024


def _inspect(path: Path) -> tuple[str | None, set[str]]:
    """(Main-Class from the manifest, class names); raises SpecError if not a jar."""
    if not zipfile.is_zipfile(path):
        raise SpecError.one("file", "the upload is not a jar (not a zip archive); upload the job's .jar file")
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            classes = {n[:-6].replace("/", ".") for n in names if n.endswith(".class")}
            main = None
            if "META-INF/MANIFEST.MF" in names:
                main = main_class(zf.read("META-INF/MANIFEST.MF").decode("utf-8", "replace"))
    except (zipfile.BadZipFile, OSError) as exc:
        raise SpecError.one("file", f"the jar cannot be read: {exc}") from None
    if not classes:
        raise SpecError.one("file", "the jar contains no Java classes")
    return main, classes


def jar_classes(path: Path) -> tuple[str | None, set[str]]:
    return _inspect(path)


@dataclass
class JarService:
    ctx: Context

    async def store(self, filename: str, content: bytes, team_id: int | None = None) -> Jar:
        if not content:
            raise SpecError.one("file", "the upload is empty")
        if len(content) > MAX_JAR_BYTES:
            raise SpecError.one("file", f"the jar is larger than {MAX_JAR_BYTES // 2**20} MiB")
        digest = hashlib.sha256(content).hexdigest()
        folder = self.ctx.home / "jars"
        path = folder / f"{digest[:16]}.jar"

        def write() -> tuple[str | None, set[str]]:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".part")
            tmp.write_bytes(content)
            try:
                found = _inspect(tmp)
            except SpecError:
                tmp.unlink(missing_ok=True)
                raise
            tmp.replace(path)
            return found

        main, _ = await asyncio.to_thread(write)
        safe_name = Path(filename or "job.jar").name[:200] or "job.jar"
        async with self.ctx.sessions() as s, s.begin():
            team = await access.team_for_new(s, team_id, "jars")
            jar = Jar(
                team_id=team, filename=safe_name, sha256=digest, size=len(content), path=str(path), main_class=main
            )
            s.add(jar)
            await s.flush()
            access.audit(s, "upload", "jar", jar.id, name=safe_name, team_id=team, diff={"sha256": digest})
            return jar

    async def get(self, jar_id: int, team_id: int | None = None) -> Jar:
        """The jar, if the caller sees it and (given ``team_id``) it is that team's."""
        async with self.ctx.sessions() as s:
            jar = await s.get(Jar, jar_id)
        if jar is None or not access.current().sees(jar.team_id) or team_id not in (None, jar.team_id):
            raise NotFound(f"no jar with id {jar_id}")
        return jar


async def dependency_jars(ctx: Context, jar_ids: list[int], team_id: int | None = None) -> list[Jar]:
    """The uploaded jars an app lists as dependencies, in its order; a missing one (or, given
    ``team_id``, another team's) is a field error."""
    if not jar_ids:
        return []
    async with ctx.sessions() as s:
        q = sa.select(Jar).where(Jar.id.in_(jar_ids))
        if team_id is not None:
            q = q.where(Jar.team_id == team_id)
        rows = {j.id: j for j in (await s.execute(q)).scalars() if access.current().sees(j.team_id)}
    missing = [i for i in jar_ids if i not in rows]
    if missing:
        raise SpecError.one("dependency_jar_ids", f"no uploaded jar with id {missing[0]}; upload it first")
    return [rows[i] for i in jar_ids]
