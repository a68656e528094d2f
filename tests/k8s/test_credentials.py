"""Credentials that stay valid: short-lived exec-plugin tokens fetched again before they expire, a
revoked token replaced after one 401, a rotated service-account token read again."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
from pathlib import Path

import httpx
import pytest

from streampilot.services.platform import Platform
from streampilot.targets.kubernetes.client import KubeApi
from tests.helpers import act
from tests.k8s.conftest import NS, add_cluster, jar_app
from tests.k8s.operator_sim import OperatorSimulator
from tests.k8s_emulator import KubeEmulator

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _at(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@SQLITE
@pytest.mark.slow
async def test_tokens_expiring_every_10_s_for_a_minute_leave_every_app_running(
    api: httpx.AsyncClient, platform: Platform, tmp_path: Path
) -> None:
    kube = await KubeEmulator(namespaces=("default", NS), token_lifetime_s=10).start()
    sim = OperatorSimulator(kube).start()
    try:
        cluster = await add_cluster(api, kube, tmp_path)  # its kubeconfig runs an exec plugin
        platform.start_loops()
        apps = [await jar_app(api, cluster, f"token-{i}") for i in range(2)]
        for app_id in apps:
            await act(api, app_id, "start", {})
        tick = platform.settings.tracking.tick_s
        seen: dict[int, list[float]] = {app_id: [] for app_id in apps}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for app_id in apps:
                status = (await api.get(f"/api/v1/apps/{app_id}")).json()["status"]
                assert status["state"] == "RUNNING" and status["unconfirmed_since"] is None, status
                if not seen[app_id] or seen[app_id][-1] != _at(status["observed_at"]):
                    seen[app_id].append(_at(status["observed_at"]))
            await asyncio.sleep(tick / 2)
        gaps = [b - a for times in seen.values() for a, b in itertools.pairwise(times)]
        print(f"observations: {sum(map(len, seen.values()))}, longest gap {max(gaps):.2f} s (tick {tick} s)")
        # No stall: one tick, plus the time a tick takes on a busy 2-core machine (a fetch of a token runs
        # the exec plugin, a process, before the request that finds it due; 0.8 s seen under full load).
        assert max(gaps) <= tick + 1.5, max(gaps)
        assert kube.unauthorized == 0  # every token was replaced before it expired
        assert len(kube.issued) >= 60 / 10  # ... by running the plugin again
    finally:
        await sim.stop()
        await kube.stop()


async def test_a_revoked_token_is_replaced_after_one_401(tmp_path: Path) -> None:
    kube = await KubeEmulator(namespaces=("default", NS), token_lifetime_s=600).start()
    try:
        api = await KubeApi.connect(str(kube.kubeconfig(tmp_path / "kubeconfig")))
        try:
            assert await api.namespace_exists(NS)
            kube.issued.clear()  # every token revoked (rotated credentials, a restarted authenticator)
            assert await api.namespace_exists(NS)  # the 401 fetched a new one and the call was retried
            assert kube.unauthorized == 1 and len(kube.issued) == 1 and api.reconnects == 1
        finally:
            await api.close()
    finally:
        await kube.stop()
