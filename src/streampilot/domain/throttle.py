"""Login throttling: a client that keeps presenting wrong tokens is refused for a while, longer each time.

``failures`` wrong tokens within ``window_s`` from one client block it for ``block_s``, doubling with
each further block within an hour (at most ``max_block_s``); a good token clears the failures. While
blocked, even a good token is refused: the answer must not tell a guesser that it guessed right.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

FORGET_BLOCKS_S = 3600.0


@dataclass
class _Record:
    failures: list[float] = field(default_factory=list)
    blocked_until: float = 0.0
    blocks: int = 0


@dataclass
class LoginThrottle:
    failures: int = 10
    window_s: float = 60.0
    block_s: float = 60.0
    max_block_s: float = 900.0
    clock: Callable[[], float] = time.monotonic
    _clients: dict[str, _Record] = field(default_factory=dict)

    def wait_s(self, client: str) -> float:
        """How long ``client`` must wait before it may try again (0: now)."""
        record = self._clients.get(client)
        return max(0.0, record.blocked_until - self.clock()) if record else 0.0

    def failed(self, client: str) -> None:
        now = self.clock()
        record = self._clients.setdefault(client, _Record())
        if record.blocks and now - record.blocked_until > FORGET_BLOCKS_S:
            record.blocks = 0  # quiet for an hour: a fresh start
        record.failures = [t for t in record.failures if t > now - self.window_s] + [now]
        if len(record.failures) >= self.failures:
            record.blocked_until = now + min(self.max_block_s, self.block_s * 2**record.blocks)
            record.blocks += 1
            record.failures = []
        if len(self._clients) > 10_000:  # forget the oldest quiet clients: memory stays bounded
            for key in [k for k, r in self._clients.items() if r.blocked_until < now][:1000]:
                del self._clients[key]

    def succeeded(self, client: str) -> None:
        record = self._clients.get(client)
        if record is not None:
            record.failures = []  # its blocks are remembered: a guesser who also knows one token gains nothing
