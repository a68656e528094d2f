"""Artifacts the Flink Kubernetes Operator fetches itself: a FlinkSessionJob's jar (the uploaded jar,
the SQL runner, with the app's dependency jars nested in it) is downloaded by the operator from its
``jarURI`` (ArtifactManager; only schemes in kubernetes.operator.user.artifacts.allowed-schemes,
default https). streampilot serves them at ``<artifact_url>/artifacts/<sha256>/<signature>/<name>``:

- content-addressed: a published file never changes (the operator re-fetches a jar on every deploy
  of the job, and gets the same bytes);
- each URL is a capability: an HMAC of the digest with a key of the platform's home, so a URL is
  good for that one file and cannot be guessed or forged for another; no login is needed (the
  operator's fetcher sends no credentials);
- files live in ``STREAMPILOT_HOME/artifacts``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.jar$")


@dataclass(frozen=True)
class Artifact:
    digest: str
    name: str


@dataclass
class ArtifactStore:
    root: Path  # STREAMPILOT_HOME/artifacts
    key_file: Path  # STREAMPILOT_HOME/artifact.key, created on first use (0600)

    def _key(self) -> bytes:
        if not self.key_file.exists():
            self.key_file.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return self.key_file.read_bytes()
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(32))
        return self.key_file.read_bytes()

    def signature(self, digest: str) -> str:
        return hmac.new(self._key(), digest.encode(), hashlib.sha256).hexdigest()[:32]

    async def publish(self, path: Path) -> Artifact:
        """The file as an artifact (copied once; the same content is the same artifact)."""

        def store() -> Artifact:
            sha = hashlib.sha256()
            with path.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    sha.update(chunk)
            digest = sha.hexdigest()
            target = self.root / f"{digest}.jar"
            if not target.exists():
                self.root.mkdir(parents=True, exist_ok=True)
                partial = target.with_suffix(f".{os.getpid()}.partial")
                shutil.copyfile(path, partial)
                partial.replace(target)
            name = path.name if _NAME.match(path.name) else "job.jar"
            self._key()  # the key exists before any URL is handed out
            return Artifact(digest, name)

        return await asyncio.to_thread(store)

    def url(self, base: str, artifact: Artifact) -> str:
        return f"{base.rstrip('/')}/artifacts/{artifact.digest}/{self.signature(artifact.digest)}/{artifact.name}"

    def find(self, digest: str, signature: str) -> Path | None:
        """The artifact's file if the signature is the one this platform gave out, else None."""
        if not _DIGEST.match(digest) or not self.key_file.exists():
            return None
        if not hmac.compare_digest(self.signature(digest), signature):
            return None
        target = self.root / f"{digest}.jar"
        return target if target.is_file() else None
