"""Nested settings, read once from the environment (``STREAMPILOT_*``) and the command line.

Every setting has an environment name: a top-level one is ``STREAMPILOT_<NAME>`` (``STREAMPILOT_PORT``),
one of a group ``STREAMPILOT_<GROUP>_<NAME>`` (``STREAMPILOT_TRACKING_TICK_S``). Every number that a
test wants shorter (tick, lost_after, timeouts) lives here so tests pass their own values instead of
patching modules. The README's settings table lists them all (a test keeps it so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streampilot.domain.groups import parse_group_roles

PREFIX = "STREAMPILOT_"


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TrackingSettings(_Group):
    tick_s: float = Field(2.0, gt=0, description="how often each cluster is asked for its jobs")
    lost_after_s: float = Field(60.0, gt=0, description="how long without an answer before an app is LOST")
    submit_grace_s: float = Field(
        30.0, ge=0, description="a job not listed within this time after its submission is no evidence of loss"
    )
    detail_every_s: float = Field(
        10.0, gt=0, description="how often checkpoint statistics and the configuration readback are read per job"
    )
    lease_ttl_s: float = Field(
        15.0, gt=0, description="instances sharing a database: a dead instance's clusters are taken over after this"
    )
    push_handoff_s: float = Field(
        0.1, gt=0, le=60, description="instances sharing a database: how often pushes another received are taken"
    )


class FlinkSettings(_Group):
    request_timeout_s: float = Field(10.0, gt=0, description="timeout of a call to Flink's REST API")
    submit_timeout_s: float = Field(
        120.0, gt=0, description="timeout of a submission (Flink runs the program's main() meanwhile)"
    )
    savepoint_timeout_s: float = Field(300.0, gt=0, description="how long a savepoint may take")
    start_wait_s: float = Field(
        120.0, gt=0, description="how long a start operation follows its job before leaving it to the tracker"
    )
    local_slots: int = Field(4, ge=1, description="task slots of a new local cluster")
    local_ready_timeout_s: float = Field(
        60.0, gt=0, description="how long a local or session cluster may take to start"
    )
    supervise_every_s: float = Field(
        1.0, gt=0, description="how often the processes of the local clusters are checked (and restarted if gone)"
    )
    local_restarts_per_hour: int = Field(
        10, ge=0, description="process restarts of one local cluster per hour before the platform gives up on it"
    )


class AlertSettings(_Group):
    dispatch_tick_s: float = Field(1.0, gt=0, description="how often new alerts are fanned out to channels")
    throttle_s: float = Field(
        300.0, ge=0, description="the same app and reason reach a channel at most once per this period"
    )
    max_attempts: int = Field(5, ge=1, description="delivery attempts before a delivery fails")
    backoff_s: float = Field(2.0, gt=0, description="first retry after this, doubling each time")


class MetricsSettings(_Group):
    every_s: float = Field(
        10.0, gt=0, le=3600, description="how often the metrics of every running job are sampled (a round per cluster)"
    )
    raw_hours: float = Field(
        6.0, gt=0, le=24 * 31, description="job metric samples are kept as taken this long, then as 1-minute averages"
    )
    keep_days: float = Field(7.0, gt=0, le=366, description="how long the 1-minute averages of job metrics are kept")


class LogSettings(_Group):
    level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="debug adds every HTTP call to Flink and Kubernetes"
    )
    format: Literal["text", "json"] = Field("text", description="json: one JSON object per line, for machines")


class LdapSettings(_Group):
    url: str | None = Field(None, description="e.g. `ldap://ldap.example.org:389`; unset: no LDAP logins")
    bind_dn: str | None = Field(None, description="the account that searches for users (unset: anonymous search)")
    bind_password: str | None = Field(None, description="its password (never logged)")
    start_tls: bool = Field(False, description="upgrade the connection with StartTLS before binding")
    user_base: str = Field("", description="where users are searched, e.g. `ou=people,dc=example,dc=org`")
    user_filter: str = Field("(uid={name})", description="finds the user logging in; `{name}` is escaped")
    group_base: str = Field("", description="where groups are searched (unset: the user's memberOf)")
    group_filter: str = Field("(member={dn})", description="finds the user's groups; `{dn}` is the user's DN")
    group_name_attribute: str = Field("cn", description="the group's name as STREAMPILOT_GROUP_ROLES names it")
    timeout_s: float = Field(5.0, gt=0, description="timeout of each call to the LDAP server")


class OidcSettings(_Group):
    issuer: str | None = Field(None, description="the OpenID provider's issuer URL; unset: no single sign-on")
    client_id: str | None = Field(None, description="streampilot's client id at the provider")
    client_secret: str | None = Field(None, description="its client secret (never logged)")
    scopes: str = Field("openid profile email", description="scopes asked for")
    username_claim: str = Field("preferred_username", description="the claim that names the user (else `sub`)")
    groups_claim: str = Field("groups", description="the claim listing the user's groups")
    label: str = Field("Single sign-on", description="the login button's text")
    timeout_s: float = Field(10.0, gt=0, description="timeout of each call to the provider")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,
        frozen=True,
        extra="ignore",
    )

    home: Path = Field(
        default_factory=lambda: Path(".streampilot").resolve(),
        description="database, token, jars, local clusters' folders",
    )
    database_url: str | None = Field(
        None, description="e.g. `postgresql://user@host/db`, `mysql://root@host/db` (default: SQLite in the home)"
    )
    host: str = Field("127.0.0.1", description="where the API and console listen")
    port: int = Field(8765, ge=1, le=65535, description="the API's and console's port")
    max_body_mb: int = Field(2, ge=1, le=1024, description="the largest request body (JSON, forms) the API accepts")
    max_upload_mb: int = Field(512, ge=1, le=16384, description="the largest jar upload the API accepts")
    session_hours: float = Field(12.0, gt=0, le=24 * 90, description="how long a console login lasts")
    push: bool = Field(
        True, description="local Flink 2.x clusters push each job status change to streampilot (polling confirms)"
    )
    login_failures_per_minute: int = Field(
        10, ge=1, description="wrong tokens or passwords from one address within a minute before it is blocked"
    )
    console_url: str | None = Field(
        None, description="base URL for links in alert messages (default: the server's own address)"
    )
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    flink: FlinkSettings = Field(default_factory=FlinkSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    ldap: LdapSettings = Field(default_factory=LdapSettings)
    oidc: OidcSettings = Field(default_factory=OidcSettings)
    group_roles: str = Field(
        "",
        description="LDAP/OIDC groups to roles: `group=team:role` or `group=admin`, separated by `;` "
        "(e.g. `flink-devs=payments:developer;ops=admin`)",
    )

    @field_validator("group_roles")
    @classmethod
    def _group_roles(cls, value: str) -> str:
        parse_group_roles(value)  # ValueError: says which rule is wrong and how to write it
        return value

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.home / 'streampilot.db'}"

    @property
    def token_file(self) -> Path:
        return self.home / "admin.token"

    @property
    def server_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def with_(self, **changes: Any) -> Settings:
        """A copy with some settings changed (tests pass shorter intervals this way)."""
        return self.model_copy(update=changes)

    @classmethod
    def from_env(cls) -> Settings:
        """Settings from the environment; a value that cannot be used is a SettingsError naming it."""
        try:
            settings = cls()
        except ValidationError as exc:
            problems = []
            for e in exc.errors():
                name = PREFIX + "_".join(str(p) for p in e["loc"] if not isinstance(p, int)).upper()
                problems.append(f"{name}={e.get('input')!r}: {e['msg']}")
            raise SettingsError("; ".join(problems)) from None
        return settings.with_(home=settings.home.expanduser().resolve())

    @classmethod
    def table(cls) -> list[tuple[str, str, str]]:
        """Every setting as (environment name, default, meaning), for the README."""
        rows: list[tuple[str, str, str]] = []
        for name, f in cls.model_fields.items():
            group = f.annotation if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel) else None
            if group is None:
                default = "" if f.default_factory is not None or f.default is None else str(f.default)
                rows.append((PREFIX + name.upper(), default, f.description or ""))
                continue
            for sub, sf in group.model_fields.items():
                rows.append((f"{PREFIX}{name.upper()}_{sub.upper()}", str(sf.default), sf.description or ""))
        return rows


class SettingsError(ValueError):
    """A setting from the environment has a value that cannot be used."""
