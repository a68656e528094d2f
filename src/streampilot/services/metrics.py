"""The platform's own metrics, for Prometheus at ``/metrics``: how long each loop's pass takes and how
long ago it ran, how fresh each cluster's observation is and how many clusters are unknown, operations
by verb and outcome, alert deliveries by outcome. One registry per platform (tests run several)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_PASS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class _ClusterSeen:
    name: str
    answered_at: float | None = None  # time.time() of the last answer
    answered: bool = False  # whether the last poll was answered


class _Freshness(Collector):
    """Gauges computed when Prometheus asks: ages are never stale numbers."""

    def __init__(self, metrics: PlatformMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = time.time()
        age = GaugeMetricFamily(
            "streampilot_cluster_observation_age_seconds",
            "Seconds since the cluster last answered the tracker (absent: never answered)",
            labels=["cluster"],
        )
        unknown = 0
        for seen in list(self.metrics.clusters.values()):
            if seen.answered_at is not None:
                age.add_metric([seen.name], now - seen.answered_at)
            if not seen.answered:
                unknown += 1
        yield age
        yield GaugeMetricFamily(
            "streampilot_clusters_unknown", "Clusters whose last poll was not answered", value=unknown
        )
        last = GaugeMetricFamily(
            "streampilot_loop_last_pass_age_seconds", "Seconds since each loop last finished a pass", labels=["loop"]
        )
        for name, at in list(self.metrics.loop_finished.items()):
            last.add_metric([name], now - at)
        yield last


@dataclass
class PlatformMetrics:
    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))
    clusters: dict[int, _ClusterSeen] = field(default_factory=dict)
    loop_finished: dict[str, float] = field(default_factory=dict)
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        r = self.registry
        self.loop_pass = Histogram(
            "streampilot_loop_pass_seconds",
            "Duration of one pass of a loop",
            ["loop"],
            registry=r,
            buckets=_PASS_BUCKETS,
        )
        self.loop_errors = Counter("streampilot_loop_errors_total", "Passes that failed", ["loop"], registry=r)
        self.polls = Counter(
            "streampilot_cluster_polls_total", "Cluster polls by the tracker, answered or not", ["outcome"], registry=r
        )
        self.operations = Counter(
            "streampilot_operations_total",
            "Operations that ended, by verb and outcome",
            ["verb", "outcome"],
            registry=r,
        )
        self.deliveries = Counter(
            "streampilot_alert_deliveries_total",
            "Alert deliveries by outcome: sent, retry (a failed attempt to try again), failed, suppressed (throttled)",
            ["outcome"],
            registry=r,
        )
        self.lease_changes = Counter(
            "streampilot_lease_changes_total", "Cluster leases this instance gained or lost", ["change"], registry=r
        )
        self.push_events = Counter(
            "streampilot_push_events_total", "Events pushed by JobManagers, by kind", ["kind"], registry=r
        )
        self.push_delay = Histogram(
            "streampilot_push_delay_seconds",
            "From a JobManager's event to its arrival here",
            registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        r.register(_Freshness(self))

    def loop_pass_done(self, loop: str, seconds: float, ok: bool) -> None:
        self.loop_pass.labels(loop).observe(seconds)
        if not ok:
            self.loop_errors.labels(loop).inc()
        self.loop_finished[loop] = self.clock()

    def cluster_polled(self, cluster_id: int, name: str, answered: bool) -> None:
        seen = self.clusters.setdefault(cluster_id, _ClusterSeen(name))
        seen.name, seen.answered = name, answered
        if answered:
            seen.answered_at = self.clock()
        self.polls.labels("answered" if answered else "unknown").inc()

    def forget_cluster(self, cluster_id: int) -> None:
        self.clusters.pop(cluster_id, None)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
