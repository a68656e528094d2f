"""Nested settings, read once from the environment (``STREAMPILOT_*``) and the command line.

Every number that a test wants shorter (tick, lost_after, timeouts) lives here so tests can pass
their own values instead of patching modules.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path


@dataclass(frozen=True)
class TrackingSettings:
    tick_s: float = 2.0
    lost_after_s: float = 60.0
    # A freshly submitted job may not be listed yet; "not listed" within this grace is no evidence.
    submit_grace_s: float = 30.0
    # Checkpoint statistics and config readback are fetched per job at their own, slower cadence.
    detail_every_s: float = 10.0


@dataclass(frozen=True)
class FlinkSettings:
    request_timeout_s: float = 10.0
    # jar run runs the user's main() inside the JobManager: allow it more time than a plain call.
    submit_timeout_s: float = 120.0
    savepoint_timeout_s: float = 300.0
    # A start operation follows its job this long; a job still waiting for slots is left to the tracker.
    start_wait_s: float = 120.0
    local_slots: int = 4
    local_ready_timeout_s: float = 60.0


@dataclass(frozen=True)
class AlertSettings:
    dispatch_tick_s: float = 1.0
    # The same app and reason reach a channel at most once per this period; the rest are counted.
    throttle_s: float = 300.0
    max_attempts: int = 5
    backoff_s: float = 2.0  # first retry after this, doubling each time
    console_url: str | None = None  # base URL for links in messages; default: the server's own address


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8765


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=lambda: Path(".streampilot").resolve())
    database_url: str | None = None
    server: ServerSettings = field(default_factory=ServerSettings)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    flink: FlinkSettings = field(default_factory=FlinkSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.home / 'streampilot.db'}"

    @property
    def token_file(self) -> Path:
        return self.home / "admin.token"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        base = cls()
        home = Path(env["STREAMPILOT_HOME"]).resolve() if env.get("STREAMPILOT_HOME") else base.home
        server = ServerSettings(
            host=env.get("STREAMPILOT_HOST", base.server.host),
            port=_int(env, "STREAMPILOT_PORT", base.server.port),
        )
        tracking = TrackingSettings(
            tick_s=_float(env, "STREAMPILOT_TRACKING_TICK_S", base.tracking.tick_s),
            lost_after_s=_float(env, "STREAMPILOT_TRACKING_LOST_AFTER_S", base.tracking.lost_after_s),
        )
        alerts = AlertSettings(
            throttle_s=_float(env, "STREAMPILOT_ALERTS_THROTTLE_S", base.alerts.throttle_s),
            console_url=env.get("STREAMPILOT_CONSOLE_URL") or None,
        )
        return replace(
            base,
            alerts=alerts,
            home=home,
            database_url=env.get("STREAMPILOT_DATABASE_URL") or None,
            server=server,
            tracking=tracking,
        )


class SettingsError(ValueError):
    """A setting from the environment has a value that cannot be used."""


def _int(env: dict[str, str], key: str, default: int) -> int:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{key}={raw!r} is not a whole number") from None


def _float(env: dict[str, str], key: str, default: float) -> float:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{key}={raw!r} is not a number") from None
