"""Flink distributions ("homes") on this machine: the bundled one and any registered by path."""

from __future__ import annotations

import importlib.util
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml


class NotAFlinkHome(ValueError):
    pass


@dataclass(frozen=True)
class HomeInfo:
    path: Path
    version: str

    @property
    def dist_jar(self) -> Path:
        return next(self.path.glob("lib/flink-dist*.jar"))

    @property
    def python_jar(self) -> Path | None:
        return next(iter(sorted(self.path.glob("opt/flink-python*.jar"))), None)

    @property
    def lib_classpath(self) -> str:
        return str(self.path / "lib" / "*")


def java_options(home: HomeInfo) -> list[str]:
    """The JVM options the home's config.yaml gives every Flink process (the --add-opens Java 17 needs)."""
    try:
        conf = yaml.safe_load((home.path / "conf" / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return []
    opts = conf.get("env", {}).get("java", {}).get("opts", {}).get("all", "") if isinstance(conf, dict) else ""
    return str(opts).split()


def bundled_home_path() -> Path | None:
    """The distribution inside the installed ``apache-flink`` package, if it is installed."""
    spec = importlib.util.find_spec("pyflink")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)))
    return path if (path / "bin" / "flink").exists() else None


def inspect_home(path: Path) -> HomeInfo:
    """Check that ``path`` is a Flink distribution and read its version from flink-dist's manifest."""
    if not path.is_dir():
        raise NotAFlinkHome(f"{path} is not a directory")
    if not (path / "bin" / "flink").is_file():
        raise NotAFlinkHome(f"{path} is not a Flink distribution: bin/flink is missing")
    dists = sorted(path.glob("lib/flink-dist*.jar"))
    if not dists:
        raise NotAFlinkHome(f"{path} is not a Flink distribution: lib/flink-dist-*.jar is missing")
    try:
        with zipfile.ZipFile(dists[0]) as zf:
            manifest = zf.read("META-INF/MANIFEST.MF").decode("utf-8", "replace")
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise NotAFlinkHome(f"{dists[0]} is unreadable: {exc}") from None
    for line in manifest.splitlines():
        if line.startswith("Implementation-Version:"):
            return HomeInfo(path.resolve(), line.split(":", 1)[1].strip())
    raise NotAFlinkHome(f"{dists[0]} does not state its version (no Implementation-Version)")
