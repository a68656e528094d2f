"""``make soak``: random faults against a running platform, with its invariants checked all along.

A real server (a subprocess, so it can be SIGKILLed) runs its supervised local Flink cluster and
several SQL apps with checkpointing and auto-restart. Every 20-40 s (``--gap``) one fault is injected,
chosen by a seeded random generator (the seed is printed; ``--seed`` replays a run):

- ``taskmanager``: SIGKILL of the local cluster's TaskManager (the supervisor starts another);
- ``jobmanager``: SIGKILL of its JobManager (the cluster comes back without the jobs: auto-restart
  from the newest checkpoint on storage);
- ``flink_cancel``: a job canceled through Flink's own REST API (the app must show CANCELED; the soak
  then starts it again with ``restore: latest``, as a user would);
- ``platform``: SIGKILL of the streampilot server, started again at once (it adopts what runs);
- ``savepoint_cycle``: stop with savepoint, start with ``restore: latest`` (must restore that savepoint);
- ``db_connections`` (PostgreSQL only, else not chosen): every connection of the platform to its database terminated;
- ``rest_faults``: half the apps run on a second cluster, registered as a standalone cluster whose
  REST URL is a fault proxy in front of the same JobManager; for 3-8 s every request through it is
  answered 500, never answered, reset, cut in half or slowed down (shorter than the grace period after
  which an unknown job becomes LOST: an error is unknown, never absent).

Checked every half second, each a violation when broken:
- at most one live job per app on the JobManager;
- never FAILED or LOST while Flink runs the app's job with all its tasks (for longer than 2 s);
- every app meant to run is RUNNING again within 60 s of each fault;
- no invisible job: every live job on the cluster is an app's current job (for longer than 2 s);
- the API answers within 5 s whenever the server is up;
- no policy restart without state for an app that had completed a checkpoint.

Prints the faults (by kind, with convergence median and max), API availability and every violation;
exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.faultproxy import FaultProxy

from streampilot.flink.local import free_port

APP_SQL = """CREATE TABLE src (id BIGINT, v STRING) WITH ('connector' = 'datagen', 'rows-per-second' = '50');
CREATE TABLE snk (id BIGINT, v STRING) WITH ('connector' = 'blackhole');
INSERT INTO snk SELECT id, v FROM src;
"""
CONVERGE_S = 60.0
API_SLOW_S = 5.0
PERSIST_S = 2.0  # a discrepancy shorter than this is observation lag, not a lie
SETTLE_S = 8.0  # Flink notices a lost TaskManager after its heartbeat timeout (5 s on local clusters)
FAULT_KINDS = (
    "taskmanager",
    "jobmanager",
    "flink_cancel",
    "platform",
    "savepoint_cycle",
    "rest_faults",
    "db_connections",
)
REST_FAULTS = ("error500", "hang", "reset", "truncate", "slow")
LIVE = ("CREATED", "INITIALIZING", "RUNNING", "RESTARTING", "FAILING", "CANCELLING", "SUSPENDED", "RECONCILING")


@dataclass
class Fault:
    kind: str
    at: float
    detail: str
    converged_s: float | None = None


@dataclass
class Soak:
    root: Path
    seed: int
    duration_s: float
    gap: tuple[float, float]
    apps: int
    db_url: str | None
    kinds: list[str] = field(default_factory=lambda: list(FAULT_KINDS))
    rng: random.Random = field(init=False)
    port: int = field(default_factory=free_port)
    server: subprocess.Popen[bytes] | None = None
    token: str = ""
    rest_url: str = ""
    app_ids: dict[str, int] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    violations: list[tuple[float, str, str]] = field(default_factory=list)
    api_calls: int = 0
    api_failures: int = 0
    api_latencies: list[float] = field(default_factory=list)
    suspicions: dict[tuple[str, str], float] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    # Set-up is not measured: creating the apps plans each script on a JobManager whose JVM is cold.
    measuring: bool = False
    proxy: FaultProxy | None = None
    proxy_loop: asyncio.AbstractEventLoop | None = None

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    # ---- the server ------------------------------------------------------------------------------
    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "STREAMPILOT_HOME": str(self.root / "home"),
            "STREAMPILOT_PORT": str(self.port),
            "STREAMPILOT_TRACKING_TICK_S": "0.5",
            "STREAMPILOT_TRACKING_LOST_AFTER_S": "10",
            "STREAMPILOT_TRACKING_DETAIL_EVERY_S": "1",
            "STREAMPILOT_FLINK_LOCAL_SLOTS": str(2 * self.apps),
            "STREAMPILOT_FLINK_LOCAL_RESTARTS_PER_HOUR": "1000",
            "STREAMPILOT_FLINK_START_WAIT_S": "60",
        }
        if self.db_url:
            env["STREAMPILOT_DATABASE_URL"] = self.db_url
        return env

    def start_server(self) -> None:
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 (kept open for the child's lifetime)
        self.server = subprocess.Popen(
            [sys.executable, "-m", "streampilot", "server", "--no-example"], env=self.env(), stdout=log, stderr=log
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise SystemExit("the streampilot server did not answer within 60 s; see server.log")
        self.token = (self.root / "home" / "admin.token").read_text().strip()

    def kill_server(self) -> None:
        assert self.server is not None
        self.server.send_signal(signal.SIGKILL)
        self.server.wait(timeout=30)
        self.server = None

    def api(self, method: str, path: str, **kw: Any) -> Any:
        """One API call, timed; a slow or failed answer while the server is up is a violation."""
        t0 = time.monotonic()
        self.api_calls += 1
        try:
            resp = httpx.request(
                method, f"{self.base}/api/v1{path}", headers={"Authorization": f"Bearer {self.token}"}, timeout=30, **kw
            )
        except httpx.HTTPError as exc:
            self.api_failures += 1
            self.violate("api", f"{method} {path} failed while the server was up: {exc}")
            return None
        took = time.monotonic() - t0
        if self.measuring:
            self.api_latencies.append(took)
        if took > API_SLOW_S and self.measuring:
            self.violate("api", f"{method} {path} took {took:.1f} s")
        if resp.status_code >= 500:
            self.api_failures += 1
            self.violate("api", f"{method} {path}: HTTP {resp.status_code} {resp.text[:200]}")
            return None
        return resp.json() if resp.content else None

    # ---- set-up ----------------------------------------------------------------------------------
    def set_up(self) -> None:
        self.start_server()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            clusters = self.api("GET", "/clusters") or []
            if clusters and clusters[0]["state"] == "RUNNING":
                self.rest_url = clusters[0]["rest_url"]
                break
            time.sleep(0.5)
        else:
            raise SystemExit("the local Flink cluster did not start within 180 s")
        local_id = clusters[0]["id"]
        proxied_id = self.start_proxy()
        for i in range(self.apps):
            name = f"soak-{i}"
            body = {
                "name": name,
                "kind": "sql",
                "cluster_id": proxied_id if i % 2 else local_id,
                "sql": APP_SQL,
                "checkpointing": {"interval_s": 2},
                "restart_strategy": {"type": "fixed-delay", "attempts": 1000, "delay_s": 1},
                "auto_restart": {"max_restarts": 50, "window_s": 3600, "initial_backoff_s": 1, "max_backoff_s": 10},
            }
            app = self.api("POST", "/apps", json=body)
            self.app_ids[name] = app["id"]
            self.api("POST", f"/apps/{app['id']}/start", json={})
        self.wait_converged(Fault("set-up", time.monotonic(), "apps started"), timeout=120)

    def start_proxy(self) -> int:
        """A fault proxy in front of the local JobManager's REST API (its own event loop, in a thread),
        registered as a standalone cluster; returns that cluster's id."""
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="fault-proxy", daemon=True).start()
        self.proxy, self.proxy_loop = FaultProxy(self.rest_url), loop
        asyncio.run_coroutine_threadsafe(self.proxy.start(), loop).result(timeout=10)
        cluster = self.api(
            "POST", "/clusters", json={"name": "proxied", "kind": "standalone", "rest_url": self.proxy.url}
        )
        return int(cluster["id"])

    # ---- observation -----------------------------------------------------------------------------
    def violate(self, invariant: str, detail: str) -> None:
        at = time.monotonic() - self.started
        self.violations.append((at, invariant, detail))
        print(f"  VIOLATION at {at:.0f} s [{invariant}] {detail}", flush=True)

    def suspect(self, key: tuple[str, str], bad: bool, detail: str) -> None:
        """A discrepancy is a violation once it lasted PERSIST_S (shorter is observation lag)."""
        now = time.monotonic()
        if not bad:
            self.suspicions.pop(key, None)
            return
        since = self.suspicions.setdefault(key, now)
        if now - since >= PERSIST_S and since > 0:
            self.violate(key[0], detail)
            self.suspicions[key] = -1.0  # said once per episode

    def flink_jobs(self) -> list[dict[str, Any]] | None:
        try:
            return list(httpx.get(f"{self.rest_url}/jobs/overview", timeout=2).json()["jobs"])
        except (httpx.HTTPError, ValueError, KeyError):
            return None  # the JobManager is down or restarting: nothing to compare with

    def check(self) -> list[dict[str, Any]]:
        """Check every invariant once; returns the apps as the API shows them."""
        apps = self.api("GET", "/apps") if self.server is not None else None
        jobs = self.flink_jobs()
        if apps is None or jobs is None:
            return apps or []
        live = [j for j in jobs if j["state"] in LIVE]
        current = {a["status"]["job_id"] for a in apps if a["status"]["job_id"]}
        for app in apps:
            name = app["name"]
            mine = [j for j in live if j["name"] == name]
            self.suspect(("one_job", name), len(mine) > 1, f"{name} has {len(mine)} live jobs: {mine}")
            job = next((j for j in jobs if j["jid"] == app["status"]["job_id"]), None)
            full = job is not None and job["state"] == "RUNNING" and _all_tasks_running(job)
            self.suspect(
                ("truthful", name),
                full and app["status"]["state"] in ("FAILED", "LOST"),
                f"{name} shown {app['status']['state']} while Flink runs its job with all tasks",
            )
        for j in live:
            self.suspect(("visible", j["jid"]), j["jid"] not in current, f"job {j['jid']} ({j['name']}) is no app's")
        return list(apps)

    def converged(self, apps: list[dict[str, Any]]) -> bool:
        """Every app meant to run is RUNNING with all tasks, as the API says and Flink confirms."""
        jobs = {j["jid"]: j for j in self.flink_jobs() or []}
        meant = [a for a in apps if a["desired_state"] == "RUNNING"]
        return len(meant) == self.apps and all(
            a["status"]["state"] == "RUNNING"
            and a["status"]["tasks_running"] == a["status"]["tasks_total"]
            and a["status"]["job_id"] in jobs
            and jobs[a["status"]["job_id"]]["state"] == "RUNNING"
            and _all_tasks_running(jobs[a["status"]["job_id"]])
            for a in meant
        )

    def wait_converged(self, fault: Fault, timeout: float = CONVERGE_S) -> None:
        """Until everything runs again: the time of the last bad observation after the fault (a fault
        may take Flink a heartbeat timeout to notice, so a good state counts only after SETTLE_S)."""
        deadline = fault.at + timeout
        last_bad: float | None = None
        while time.monotonic() < deadline:
            now = time.monotonic()
            if not self.converged(self.check()):
                last_bad = now
            elif now - fault.at >= SETTLE_S and (last_bad is None or now - last_bad >= 1.0):
                fault.converged_s = (last_bad - fault.at) if last_bad is not None else 0.0
                return
            time.sleep(0.5)
        apps = self.check()
        states = {a["name"]: a["status"]["state"] for a in apps}
        self.violate("converge", f"not every app RUNNING {timeout:.0f} s after {fault.kind} ({fault.detail}): {states}")

    # ---- faults ----------------------------------------------------------------------------------
    def pids(self, role: str) -> list[int]:
        name = "standalonesession" if role == "jobmanager" else "taskexecutor"
        found = []
        for f in (self.root / "home" / "clusters" / "local" / "pid").glob(f"*-{name}.pid"):
            found += [int(p) for p in f.read_text().split() if p.isdigit() and Path(f"/proc/{p}").exists()]
        return found

    def inject(self, kind: str) -> Fault:
        now = time.monotonic()
        if kind in ("taskmanager", "jobmanager"):
            pids = self.pids(kind)
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            return Fault(kind, now, f"SIGKILL of pid {', '.join(map(str, pids)) or '(none running)'}")
        if kind == "rest_faults":
            assert self.proxy is not None
            mode, hold = self.rng.choice(REST_FAULTS), self.rng.uniform(3, 8)
            self.proxy.slow_s = self.rng.uniform(0.5, 3)
            self.proxy.mode = mode
            until = time.monotonic() + hold
            while time.monotonic() < until:
                self.check()
                time.sleep(0.5)
            self.proxy.mode = "ok"
            slow = f" ({self.proxy.slow_s:.1f} s each)" if mode == "slow" else ""
            return Fault(kind, now, f"every REST call to cluster 'proxied' {mode}{slow} for {hold:.1f} s")
        if kind == "platform":
            self.kill_server()
            self.start_server()
            return Fault(kind, now, "server SIGKILLed and started again")
        name = self.rng.choice(sorted(self.app_ids))
        app_id = self.app_ids[name]
        if kind == "flink_cancel":
            job_id = (self.api("GET", f"/apps/{app_id}") or {}).get("status", {}).get("job_id")
            if job_id:
                httpx.patch(f"{self.rest_url}/jobs/{job_id}?mode=cancel", timeout=5)
            fault = Fault(kind, now, f"{name}'s job {job_id} canceled through Flink's REST API")
            self.until(lambda: (self.api("GET", f"/apps/{app_id}") or {}).get("status", {}).get("state") == "CANCELED")
            self.operate(app_id, "start", {"restore": "latest"})
            return fault
        if kind == "savepoint_cycle":
            stop = self.operate(app_id, "stop", {})
            savepoint = (stop or {}).get("result", {}).get("savepoint")
            start = self.operate(app_id, "start", {"restore": "latest"})
            restored = (start or {}).get("params", {}).get("restore")
            steps = " ".join(s["text"] for s in (start or {}).get("steps", []))
            if savepoint and savepoint not in steps:
                self.violate("restore", f"{name} stopped with {savepoint} but restore latest did not use it: {steps}")
            return Fault(kind, now, f"{name} stopped with savepoint {savepoint}, started from {restored}")
        if kind == "db_connections":
            _terminate_connections(self.db_url or "")
            return Fault(kind, now, "every connection to the platform's database terminated")
        raise ValueError(kind)

    def operate(self, app_id: int, verb: str, body: dict[str, Any]) -> dict[str, Any] | None:
        accepted = self.api("POST", f"/apps/{app_id}/{verb}", json=body)
        if not accepted:
            return None
        op_id = accepted["operation"]["id"]

        def ended() -> bool:
            op = self.api("GET", f"/operations/{op_id}")
            return bool(op) and op["state"] in ("succeeded", "failed")

        self.until(ended, timeout=180)
        return self.api("GET", f"/operations/{op_id}")

    def until(self, condition: Any, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.3)
        return False

    def run(self) -> int:
        kinds = [k for k in self.kinds if k != "db_connections" or (self.db_url or "").startswith("postgresql")]
        print(f"soak: seed {self.seed}, {self.duration_s / 60:g} min, {self.apps} apps, faults {', '.join(kinds)}")
        self.set_up()
        self.measuring = True
        self.api_calls = self.api_failures = 0
        end = time.monotonic() + self.duration_s
        while time.monotonic() < end:
            pause_until = time.monotonic() + self.rng.uniform(*self.gap)
            while time.monotonic() < min(pause_until, end):
                self.check()
                time.sleep(0.5)
            if time.monotonic() >= end:
                break
            kind = self.rng.choice(kinds)
            fault = self.inject(kind)
            self.faults.append(fault)
            self.wait_converged(fault)
            took = f"{fault.converged_s:.1f} s" if fault.converged_s is not None else "NOT converged"
            print(f"  {time.monotonic() - self.started:6.0f} s  {kind:16} {took:>14}  {fault.detail}", flush=True)
        self.check_restarts_kept_state()
        return self.report()

    def check_restarts_kept_state(self) -> None:
        for name, app_id in self.app_ids.items():
            # Every soak app checkpoints every 2 s and the first fault comes 20 s after its start: a
            # policy restart always has state to restore.
            for e in self.api("GET", f"/apps/{app_id}/events") or []:
                if e["to_state"] == "STARTING" and e["cause"] == "policy" and "without restoring state" in e["detail"]:
                    self.violate("state", f"{name} restarted by policy without state: {e['detail']}")

    def report(self) -> int:
        print("\nfaults by kind             count   converged median / max")
        by_kind: dict[str, list[Fault]] = defaultdict(list)
        for f in self.faults:
            by_kind[f.kind].append(f)
        for kind, faults in sorted(by_kind.items()):
            times = [f.converged_s for f in faults if f.converged_s is not None]
            figures = f"{statistics.median(times):6.1f} s / {max(times):5.1f} s" if times else "      -"
            print(f"  {kind:24} {len(faults):5}   {figures}")
        ok = self.api_calls - self.api_failures
        p99 = sorted(self.api_latencies)[int(0.99 * (len(self.api_latencies) - 1))] if self.api_latencies else 0
        print(f"API while the server was up: {ok} of {self.api_calls} calls answered, p99 {p99 * 1000:.0f} ms")
        print(f"violations: {len(self.violations)}")
        for at, invariant, detail in self.violations:
            print(f"  {at:6.0f} s [{invariant}] {detail}")
        return 1 if self.violations else 0

    def tear_down(self) -> None:
        if self.proxy is not None and self.proxy_loop is not None:
            asyncio.run_coroutine_threadsafe(self.proxy.stop(), self.proxy_loop).result(timeout=10)
            self.proxy_loop.call_soon_threadsafe(self.proxy_loop.stop)
        if self.server is not None:
            self.server.send_signal(signal.SIGINT)
            try:
                self.server.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.server.kill()


def _all_tasks_running(job: dict[str, Any]) -> bool:
    tasks = job.get("tasks") or {}
    total = int(tasks.get("total", 0))
    return total > 0 and int(tasks.get("running", 0)) + int(tasks.get("finished", 0)) == total


def _pg_admin(url: str, sql: str, *args: str) -> None:
    """One statement on the server of ``url``, run from its ``postgres`` database."""
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url.rsplit("/", 1)[0].replace("postgresql://", "postgres://") + "/postgres")
        try:
            await conn.execute(sql, *args)
        finally:
            await conn.close()

    asyncio.run(run())


def _terminate_connections(db_url: str) -> None:
    _pg_admin(
        db_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        db_url.rsplit("/", 1)[1],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--gap", default="20,40", help="seconds between faults: min,max")
    parser.add_argument("--apps", type=int, default=4)
    parser.add_argument("--faults", default=",".join(FAULT_KINDS), help="the kinds of fault to choose from")
    parser.add_argument("--keep", action="store_true", help="keep the soak's directory (logs) afterwards")
    parser.add_argument("--database-url", default=None, help="e.g. postgresql://127.0.0.1:5432/soak (default SQLite)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    low, high = (float(x) for x in args.gap.split(","))
    kinds = [k.strip() for k in args.faults.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(FAULT_KINDS))
    if unknown or not kinds:
        parser.error(
            f"unknown fault kind(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(FAULT_KINDS)}"
        )
    db_url = args.database_url
    tmp = tempfile.mkdtemp(prefix="soak-")
    print(f"soak directory: {tmp}")
    fresh = bool(db_url and db_url.startswith("postgresql") and db_url.endswith("/soak"))
    if fresh and db_url:
        db_url = _fresh_pg_database(db_url)
    soak = Soak(Path(tmp), seed, args.minutes * 60, (low, high), args.apps, db_url, kinds)
    try:
        code = soak.run()
    finally:
        soak.tear_down()
        if fresh and db_url:
            _drop_pg_database(db_url)
        print(f"(seed {seed}; replay with --seed {seed})")
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(code)


def _fresh_pg_database(url: str) -> str:
    name = f"soak_{uuid.uuid4().hex[:8]}"
    _pg_admin(url, f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + f"/{name}"


def _drop_pg_database(url: str) -> None:
    _pg_admin(url, f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


if __name__ == "__main__":
    main()
