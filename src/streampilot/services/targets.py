"""Which Target runs a cluster's jobs: the one place that maps a cluster's kind to its adapter.

Tests add kinds of their own (the fake target) through ``Context.target_factories``.
"""

from __future__ import annotations

from collections.abc import Callable

from streampilot.domain.k8s import KIND_APPLICATION, KIND_SESSION
from streampilot.services.context import Context
from streampilot.services.errors import Conflict
from streampilot.store.orm import Cluster
from streampilot.targets.kinds import LOCAL, STANDALONE
from streampilot.targets.kubernetes.kinds import KubernetesApplicationTarget, KubernetesSessionTarget
from streampilot.targets.port import Target
from streampilot.targets.standalone.target import StandaloneTarget

TargetFactory = Callable[[Context, Cluster], Target]

TARGETS: dict[str, TargetFactory] = {
    LOCAL: StandaloneTarget,
    STANDALONE: StandaloneTarget,
    KIND_APPLICATION: KubernetesApplicationTarget,
    KIND_SESSION: KubernetesSessionTarget,
}


def target_for(ctx: Context, cluster: Cluster) -> Target:
    factory = ctx.target_factories.get(cluster.kind) or TARGETS.get(cluster.kind)
    if factory is None:
        raise Conflict(f"cluster {cluster.name!r} is of kind {cluster.kind!r}, which this platform cannot run")
    return factory(ctx, cluster)
