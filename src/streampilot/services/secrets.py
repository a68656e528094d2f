"""Encryption of stored secrets (Fernet: AES-128-CBC with an HMAC), with one key per platform home.

The key is created on first use in ``STREAMPILOT_HOME/secret.key``, readable by its owner only; it is
never in the database, so a copy of the database alone reveals no secret. Back it up with the
database: without it, stored secrets cannot be read back and must be set again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from streampilot.services.errors import Conflict

PREFIX = "fernet:"


@dataclass
class SecretBox:
    key_file: Path
    _fernet: Fernet | None = None

    def _box(self) -> Fernet:
        if self._fernet is None:
            if not self.key_file.exists():
                self.key_file.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(Fernet.generate_key())
            self._fernet = Fernet(self.key_file.read_bytes().strip())
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
