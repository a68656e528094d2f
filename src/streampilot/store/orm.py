"""Tables. Times are stored as UTC and always come back timezone-aware."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Naive UTC in the database (portable, microseconds on MySQL too), aware UTC in Python."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC time")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


LongText = sa.Text().with_variant(mysql.LONGTEXT(), "mysql")


class Base(DeclarativeBase):
    pass


class Account(Base):
    """A user. ``role`` is ``admin`` (a platform admin: every team, users and teams) or ``user``; what a
    user may do in a team is their Membership's role. ``source`` says who checks the password: ``local``
    (argon2 ``password_hash``), ``ldap`` or ``oidc`` (no password stored here)."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    role: Mapped[str] = mapped_column(sa.String(20))
    password_hash: Mapped[str | None] = mapped_column(sa.String(200))
    source: Mapped[str] = mapped_column(sa.String(20), default="local")
    email: Mapped[str | None] = mapped_column(sa.String(320))
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Team(Base):
    """Owns apps, clusters, alert channels, variables and jars; a user sees only their teams' objects."""

    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    description: Mapped[str] = mapped_column(sa.String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Membership(Base):
    """A user's role in a team: owner, developer, operator or viewer (domain/access.py)."""

    __tablename__ = "memberships"
    __table_args__ = (sa.UniqueConstraint("team_id", "account_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(sa.ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(sa.String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiToken(Base):
    """A personal API token: named, stored hashed, shown once; it may expire and is revoked by deletion."""

    __tablename__ = "api_tokens"
    __table_args__ = (sa.UniqueConstraint("account_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditEvent(Base):
    """Who changed or operated what, when, from where, and the difference it made."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(sa.String(100), index=True)
    client: Mapped[str] = mapped_column(sa.String(100), default="")
    action: Mapped[str] = mapped_column(sa.String(40))
    object_kind: Mapped[str] = mapped_column(sa.String(40))
    object_id: Mapped[int | None] = mapped_column()
    object_name: Mapped[str] = mapped_column(sa.String(200), default="")
    team_id: Mapped[int | None] = mapped_column(index=True)
    diff: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)


class WebSession(Base):
    """A console login: the cookie holds a random id (stored hashed), never the API token; it expires,
    and a logout deletes it. ``csrf`` is the token every console form sends back."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    csrf: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FlinkHome(Base):
    __tablename__ = "flink_homes"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    path: Mapped[str] = mapped_column(sa.String(1000))
    version: Mapped[str] = mapped_column(sa.String(40))
    bundled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Cluster(Base):
    __tablename__ = "clusters"
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(sa.ForeignKey("teams.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    flink_home_id: Mapped[int | None] = mapped_column(sa.ForeignKey("flink_homes.id"))
    rest_url: Mapped[str | None] = mapped_column(sa.String(1000))
    flink_version: Mapped[str | None] = mapped_column(sa.String(40))
    options: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    desired_running: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Lineage(Base):
    """What a job reads and writes, as its JobManager told at the job's creation (Flink 2.x)."""

    __tablename__ = "lineage"
    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(sa.ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str] = mapped_column(sa.String(32))
    mode: Mapped[str | None] = mapped_column(sa.String(20))
    sources: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)
    sinks: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)
    relations: Mapped[list[list[int]]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class JobMetricSample(Base):
    """One sample of a job's metrics (domain/job_metrics.py): ``step_s`` 0 as taken, 60 a minute's average."""

    __tablename__ = "job_metric_samples"
    __table_args__ = (sa.Index("ix_job_metric_samples_app_step_at", "app_id", "step_s", "at"),)
    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)
    app_id: Mapped[int] = mapped_column(sa.ForeignKey("apps.id", ondelete="CASCADE"))
    job_id: Mapped[str] = mapped_column(sa.String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    step_s: Mapped[int] = mapped_column(sa.Integer, default=0)
    values: Mapped[dict[str, Any]] = mapped_column(sa.JSON)


class MetricBreach(Base):
    """A metric alert's condition holding for an app since ``since``; ``alerted_at`` once it was told."""

    __tablename__ = "metric_breaches"
    app_id: Mapped[int] = mapped_column(sa.ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    reason: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CheckpointRecord(Base):
    """One checkpoint of a job as Flink's checkpoint history told it: completed, failed or in progress."""

    __tablename__ = "checkpoint_records"
    __table_args__ = (sa.UniqueConstraint("app_id", "job_id", "checkpoint_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(sa.ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str] = mapped_column(sa.String(32))
    checkpoint_id: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(20))
    triggered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_ms: Mapped[int | None] = mapped_column(sa.BigInteger)
    size_bytes: Mapped[int | None] = mapped_column(sa.BigInteger)
    is_savepoint: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    failure: Mapped[str | None] = mapped_column(sa.String(1000))


class PushedStatus(Base):
    """A job status pushed to an instance that does not watch the job's cluster, for the one that does
    (services/push.py): the holder of the cluster's lease takes it within a fraction of a second."""

    __tablename__ = "pushed_statuses"
    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[int] = mapped_column(sa.ForeignKey("clusters.id", ondelete="CASCADE"), index=True)
    app_id: Mapped[int] = mapped_column(sa.ForeignKey("apps.id", ondelete="CASCADE"))
    new_status: Mapped[str] = mapped_column(sa.String(20))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Instance(Base):
    """A running streampilot process sharing this database; alive while its heartbeat is fresh."""

    __tablename__ = "instances"
    id: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ClusterLease(Base):
    """Which instance watches a cluster (tracking, policies, alerts of its apps) until ``expires_at``.
    ``token`` grows at each takeover: a write fenced by an old token is refused."""

    __tablename__ = "cluster_leases"
    cluster_id: Mapped[int] = mapped_column(sa.ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True)
    instance_id: Mapped[str] = mapped_column(sa.String(100), index=True)
    token: Mapped[int] = mapped_column(sa.BigInteger)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ClusterEvent(Base):
    """The timeline of a cluster the platform runs: processes that died and were started again, budgets."""

    __tablename__ = "cluster_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[int] = mapped_column(sa.ForeignKey("clusters.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(sa.String(40))
    detail: Mapped[str] = mapped_column(sa.Text)


class Jar(Base):
    __tablename__ = "jars"
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(sa.ForeignKey("teams.id"), index=True)
    filename: Mapped[str] = mapped_column(sa.String(255))
    sha256: Mapped[str] = mapped_column(sa.String(64))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    path: Mapped[str] = mapped_column(sa.String(1000))
    main_class: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Variable(Base):
    """A value for ``${name}`` in apps' scripts; a secret's value is stored encrypted (see services/secrets)."""

    __tablename__ = "variables"
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(sa.ForeignKey("teams.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    value: Mapped[str] = mapped_column(sa.Text)
    secret: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    description: Mapped[str] = mapped_column(sa.String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


def _column(attribute: Any) -> sa.ColumnElement[Any]:
    """A column of the class being declared, for an expression in its body (a ``mapped_column`` there)."""
    column: sa.ColumnElement[Any] = attribute.column
    return column


class ClusterStamp(Base):
    """When a cluster's job listing last answered and when that pass began: every app with a job on
    it that is not unconfirmed and was submitted before the pass was observed then (``App.observed_at``).
    One row per cluster written each tick, instead of one per app (10,000 rows a tick)."""

    __tablename__ = "cluster_stamps"
    cluster_id: Mapped[int] = mapped_column(sa.ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    pass_started_at: Mapped[datetime] = mapped_column(UTCDateTime())


class App(Base):
    __tablename__ = "apps"
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(sa.ForeignKey("teams.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    cluster_id: Mapped[int] = mapped_column(sa.ForeignKey("clusters.id"))
    current_version: Mapped[int] = mapped_column(default=1)
    running_version: Mapped[int | None] = mapped_column()
    desired_state: Mapped[str] = mapped_column(sa.String(20), default="STOPPED")
    state: Mapped[str] = mapped_column(sa.String(20), default="CREATED")
    job_state: Mapped[str | None] = mapped_column(sa.String(20))
    job_id: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    tasks_running: Mapped[int | None] = mapped_column()
    tasks_total: Mapped[int | None] = mapped_column()
    # When the app's own observation was stored: at a change, and when it became unconfirmed (then it
    # keeps when it was last seen). Read ``observed_at``, which adds its cluster's stamp.
    own_observed_at: Mapped[datetime | None] = mapped_column("observed_at", UTCDateTime())
    unconfirmed_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When its job was last known: its cluster's stamp while the app is covered by it (a job, not
    # unconfirmed, submitted before the pass that answered), else its own.
    observed_at: Mapped[datetime | None] = column_property(
        sa.func.coalesce(
            sa.select(
                sa.case(
                    (
                        sa.and_(
                            _column(job_id).is_not(None),
                            _column(unconfirmed_since).is_(None),
                            sa.or_(
                                _column(submitted_at).is_(None),
                                _column(submitted_at) < ClusterStamp.pass_started_at,
                            ),
                            sa.or_(
                                _column(own_observed_at).is_(None),
                                _column(own_observed_at) < ClusterStamp.observed_at,
                            ),
                        ),
                        ClusterStamp.observed_at,
                    )
                )
            )
            .where(ClusterStamp.cluster_id == _column(cluster_id))
            .scalar_subquery(),
            _column(own_observed_at),
        ),
        expire_on_flush=False,  # a new app has none (set at init); a loaded app keeps what it read
    )
    launch_config: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    config_verified: Mapped[bool | None] = mapped_column()
    config_mismatches: Mapped[list[str] | None] = mapped_column(sa.JSON)
    config_readback: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)  # what Flink reported it runs with
    last_checkpoint: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    # Kubernetes application mode: the JobManager pods seen last, by name, with their restart counts.
    jobmanager_pods: Mapped[dict[str, int] | None] = mapped_column(sa.JSON)
    policy_state: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    operation: Mapped[str | None] = mapped_column(sa.String(20))
    operation_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    operation_id: Mapped[int | None] = mapped_column()  # the Operation holding the slot
    runtime_mode: Mapped[str | None] = mapped_column(sa.String(10))  # STREAMING or BATCH, of the current job
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow, index=True)


@sa.event.listens_for(App, "init")
def _no_observation_yet(target: App, args: Any, kwargs: Any) -> None:
    """A new app has not been observed: without this, reading ``observed_at`` after its insert would
    need a session (a column property is not written, so it is not known after a flush)."""
    target.observed_at = None


class AppVersion(Base):
    __tablename__ = "app_versions"
    __table_args__ = (sa.UniqueConstraint("app_id", "version", name="uq_app_versions_app_version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(sa.ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column()
    spec: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AppEvent(Base):
    __tablename__ = "app_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(sa.ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    from_state: Mapped[str | None] = mapped_column(sa.String(20))
    to_state: Mapped[str] = mapped_column(sa.String(20))
    cause: Mapped[str] = mapped_column(sa.String(20))
    detail: Mapped[str] = mapped_column(LongText)
    job_id: Mapped[str | None] = mapped_column(sa.String(32))


class Operation(Base):
    """A lifecycle verb that outlives its request: stored with its steps, resumed or failed after a restart."""

    __tablename__ = "operations"
    __table_args__ = (sa.UniqueConstraint("app_id", "idempotency_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(sa.ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    verb: Mapped[str] = mapped_column(sa.String(20))
    state: Mapped[str] = mapped_column(sa.String(20), index=True)  # pending running succeeded failed
    cause: Mapped[str] = mapped_column(sa.String(20))
    actor: Mapped[str | None] = mapped_column(sa.String(100))
    # The client's Idempotency-Key (or one of our own): a retried request finds its operation by it.
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(64))
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    error: Mapped[str | None] = mapped_column(LongText)
    problems: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)  # field errors, when the error is one
    result: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Snapshot(Base):
    """A savepoint or retained checkpoint of an application's job."""

    __tablename__ = "snapshots"
    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(sa.ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str] = mapped_column(sa.String(32))
    kind: Mapped[str] = mapped_column(sa.String(20))
    trigger: Mapped[str] = mapped_column(sa.String(20))
    path: Mapped[str] = mapped_column(sa.String(1000))
    checkpoint_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Alert(Base):
    """Something people must be told about an application (delivery to channels is recorded apart)."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int | None] = mapped_column(sa.ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reason: Mapped[str] = mapped_column(sa.String(40))
    title: Mapped[str] = mapped_column(sa.String(500))
    message: Mapped[str] = mapped_column(LongText)
    facts: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    fanned_out: Mapped[bool] = mapped_column(default=False, index=True)


class AlertChannel(Base):
    __tablename__ = "alert_channels"
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(sa.ForeignKey("teams.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    config: Mapped[dict[str, Any]] = mapped_column(sa.JSON)  # secrets included: never returned, never logged
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AlertDelivery(Base):
    """One alert to one channel: pending, sent, failed, or suppressed by throttling."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (sa.Index("ix_alert_deliveries_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(sa.ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[int] = mapped_column(sa.ForeignKey("alert_channels.id", ondelete="CASCADE"), index=True)
    app_id: Mapped[int | None] = mapped_column()
    reason: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(20))
    suppressed_before: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(LongText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"
    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(sa.ForeignKey("alert_deliveries.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ok: Mapped[bool] = mapped_column()
    temporary: Mapped[bool] = mapped_column()
    status_code: Mapped[int | None] = mapped_column()
    detail: Mapped[str] = mapped_column(LongText)
    duration_ms: Mapped[int] = mapped_column()
