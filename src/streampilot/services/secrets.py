"""Encryption of stored secrets (Fernet: AES-128-CBC with an HMAC), with one key per platform home.

The key is created on first use in ``STREAMPILOT_HOME/secret.key``, readable by its owner only; it is
never in the database, so a copy of the database alone reveals no secret. Back it up with the
database: without it, stored secrets cannot be read back and must be set again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from streampilot.services.errors import Conflict

PREFIX = "fernet:"


@dataclass
class SecretBox:
    """Seals with the key file's first key and opens with any of its keys (one per line): a rotation
    writes the new key first, reseals every stored secret, then drops the old keys."""

    key_file: Path
    _fernet: MultiFernet | None = None

    def _keys(self) -> list[bytes]:
        return [k for k in self.key_file.read_bytes().split() if k]

    def _write(self, keys: list[bytes]) -> None:
        self.key_file.parent.mkdir(parents=True, exist_ok=True)
        partial = self.key_file.with_suffix(".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(b"\n".join(keys) + b"\n")
        partial.replace(self.key_file)  # never a moment without a readable key file
        self._fernet = None

    def _box(self) -> MultiFernet:
        if self._fernet is None:
            if not self.key_file.exists():
                self.key_file.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(Fernet.generate_key())
            self._fernet = MultiFernet([Fernet(k) for k in self._keys()])
        return self._fernet

    def seal(self, plain: str) -> str:
        return PREFIX + self._box().encrypt(plain.encode()).decode()

    def open(self, sealed: str) -> str:
        if not sealed.startswith(PREFIX):
            return sealed
        try:
            return self._box().decrypt(sealed[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise Conflict(
                f"a stored secret cannot be decrypted with {self.key_file}: the key changed; set the secret again"
            ) from None

    def add_key(self) -> None:
        """A new key first: from now on everything is sealed with it; the old ones still open."""
        self._box()
        self._write([Fernet.generate_key(), *self._keys()])

    def reseal(self, sealed: str) -> str:
        """The same secret sealed with the current (first) key."""
        if not sealed.startswith(PREFIX):
            return self.seal(sealed)
        try:
            return PREFIX + self._box().rotate(sealed[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise Conflict(f"a stored secret cannot be decrypted with {self.key_file}; set it again") from None

    def drop_old_keys(self) -> None:
        self._write(self._keys()[:1])
