"""A job's health in numbers: which of Flink's metrics are asked for each vertex, what one sample of a
job holds, how samples become series, and how they are averaged into coarser steps (no I/O).

Per vertex (what Flink's own UI shows for it): ``records_in_per_s`` and ``records_out_per_s`` (records the
vertex receives and sends, summed over its subtasks), ``busy_ratio`` and ``backpressured_ratio`` (the
busiest subtask's share of each second, 0..1) and ``watermark_lag_ms`` (how far the slowest subtask's
input watermark is behind the sampling time). Per job: records entering it (its sources' operators'
output) and leaving it (its sinks' operators' input), the busiest and most backpressured vertex, the
largest watermark lag, and ``restarts`` (Flink's ``numRestarts``). Flink's rates are its meters' averages
over the last minute, and its REST API reads the TaskManagers at most every
``metrics.fetcher.update-interval`` (10 s): a sample is up to that old.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# Task-level metrics of every vertex (Flink's "IO" and "task" metric groups).
TASK_METRICS = (
    "numRecordsInPerSecond",
    "numRecordsOutPerSecond",
    "busyTimeMsPerSecond",
    "backPressuredTimeMsPerSecond",
    "currentInputWatermark",
)
JOB_METRICS = ("numRestarts",)
# Operator metrics are named "<operator>.<metric>" (Flink replaces spaces and dots in the name).
_SOURCE_OUT = re.compile(r"^Source.*\.numRecordsOutPerSecond$")
_SINK_IN = re.compile(r"(?i)^.*(sink|writer).*\.numRecordsInPerSecond$")
_SINK_WATERMARK = re.compile(r"(?i)^.*(sink|writer).*\.currentInputWatermark$")
# Flink's "no watermark yet" is Long.MIN_VALUE; anything before 2000-01-01 is not a real event time.
_NO_WATERMARK_BELOW_MS = 946_684_800_000

JOB_SERIES = (
    "records_in_per_s",
    "records_out_per_s",
    "busy_ratio",
    "backpressured_ratio",
    "watermark_lag_ms",
    "restarts",
)
VERTEX_SERIES = ("records_in_per_s", "records_out_per_s", "busy_ratio", "backpressured_ratio", "watermark_lag_ms")
# Units of every series, for the API's readers and the console's axes.
UNITS = {
    "records_in_per_s": "records/s",
    "records_out_per_s": "records/s",
    "busy_ratio": "ratio",
    "backpressured_ratio": "ratio",
    "watermark_lag_ms": "ms",
    "restarts": "count",
    "checkpoint_duration_ms": "ms",
    "checkpoint_size_bytes": "bytes",
}


@dataclass(frozen=True)
class VertexPlan:
    """What is asked of one vertex each round: the task metrics and the operator metrics found for it."""

    id: str
    name: str
    source: bool  # no vertex feeds it
    sink: bool  # it feeds no vertex
    task: tuple[str, ...] = TASK_METRICS
    source_out: tuple[str, ...] = ()
    sink_in: tuple[str, ...] = ()
    sink_watermark: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return [*self.task, *self.source_out, *self.sink_in, *self.sink_watermark]


def plan_vertex(vertex_id: str, name: str, *, source: bool, sink: bool, available: Iterable[str]) -> VertexPlan:
    """The metrics to ask of a vertex, from the ids Flink lists for it (operator metrics vary by job).
    Only listed ones: Flink answers nothing at all when one asked for is missing (a source has no
    ``currentInputWatermark``)."""
    ids = list(available)
    return VertexPlan(
        vertex_id,
        name,
        source,
        sink,
        tuple(m for m in TASK_METRICS if m in ids),
        tuple(i for i in ids if source and _SOURCE_OUT.match(i)),
        tuple(i for i in ids if sink and _SINK_IN.match(i)),
        tuple(i for i in ids if sink and _SINK_WATERMARK.match(i)),
    )


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _agg(raw: dict[str, dict[str, float]], name: str, how: str) -> float | None:
    return _finite(raw.get(name, {}).get(how))


def _lag(watermark_ms: float | None, now_ms: float) -> float | None:
    if watermark_ms is None or watermark_ms < _NO_WATERMARK_BELOW_MS:
        return None
    return max(0.0, now_ms - watermark_ms)


def vertex_values(plan: VertexPlan, raw: dict[str, dict[str, float]], now_ms: float) -> dict[str, float]:
    """One vertex's sample from its aggregated subtask metrics; a metric Flink did not give is left out."""
    busy = _agg(raw, "busyTimeMsPerSecond", "max")
    pressured = _agg(raw, "backPressuredTimeMsPerSecond", "max")
    watermark = _agg(raw, "currentInputWatermark", "min") if not plan.source else None
    if watermark is None and plan.sink_watermark:
        marks = [m for m in (_agg(raw, n, "min") for n in plan.sink_watermark) if m is not None]
        watermark = min(marks) if marks else None
    values = {
        "records_in_per_s": _agg(raw, "numRecordsInPerSecond", "sum"),
        "records_out_per_s": _agg(raw, "numRecordsOutPerSecond", "sum"),
        "busy_ratio": None if busy is None else min(1.0, busy / 1000),
        "backpressured_ratio": None if pressured is None else min(1.0, pressured / 1000),
        "watermark_lag_ms": _lag(watermark, now_ms),
    }
    return {k: round(v, 4) for k, v in values.items() if v is not None}


def job_values(
    plans: list[VertexPlan],
    raws: dict[str, dict[str, dict[str, float]]],
    vertices: dict[str, dict[str, float]],
    job: dict[str, float],
) -> dict[str, float]:
    """The job's figures from its vertices' samples (and their raw operator metrics) and its job metrics."""

    def operator_sum(plan: VertexPlan, names: tuple[str, ...], fallback: str) -> float | None:
        found = [v for v in (_agg(raws.get(plan.id, {}), n, "sum") for n in names) if v is not None]
        if found:
            return max(found)  # the chain's source (or sink) operator; several matches: the busiest
        return vertices.get(plan.id, {}).get(fallback)

    ins = [operator_sum(p, p.source_out, "records_out_per_s") for p in plans if p.source]
    outs = [operator_sum(p, p.sink_in, "records_in_per_s") for p in plans if p.sink]
    values: dict[str, float | None] = {
        "records_in_per_s": sum(v for v in ins if v is not None) if any(v is not None for v in ins) else None,
        "records_out_per_s": sum(v for v in outs if v is not None) if any(v is not None for v in outs) else None,
    }
    for name in ("busy_ratio", "backpressured_ratio", "watermark_lag_ms"):
        found = [v[name] for v in vertices.values() if name in v]
        values[name] = max(found) if found else None
    values["restarts"] = _finite(job.get("numRestarts"))
    return {k: round(v, 4) for k, v in values.items() if v is not None}


def average(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Several samples of one job as one: each figure averaged over the samples that have it (restarts:
    the largest, a count that only grows); vertex names kept."""
    job: dict[str, list[float]] = {}
    vertices: dict[str, dict[str, list[float]]] = {}
    names: dict[str, str] = {}
    for sample in samples:
        for k, v in (sample.get("job") or {}).items():
            job.setdefault(k, []).append(float(v))
        for vid, vals in (sample.get("vertices") or {}).items():
            names[vid] = str(vals.get("name", names.get(vid, "")))
            for k, v in vals.items():
                if k != "name":
                    vertices.setdefault(vid, {}).setdefault(k, []).append(float(v))

    def merge(figures: dict[str, list[float]]) -> dict[str, float]:
        return {k: round(max(v) if k == "restarts" else sum(v) / len(v), 4) for k, v in figures.items()}

    return {
        "job": merge(job),
        "vertices": {vid: {"name": names.get(vid, ""), **merge(vertices.get(vid, {}))} for vid in names},
    }


def downsample(samples: list[tuple[int, dict[str, Any]]], step_ms: int) -> list[tuple[int, dict[str, Any]]]:
    """Samples (time in ms, values) averaged into buckets of ``step_ms`` (time: the bucket's start)."""
    if step_ms <= 0:
        return samples
    buckets: dict[int, list[dict[str, Any]]] = {}
    for at_ms, values in samples:
        buckets.setdefault(at_ms - at_ms % step_ms, []).append(values)
    return [(at, average(group)) for at, group in sorted(buckets.items())]


def series(samples: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """Samples as the API's series: the job's ``{name: [[ts_ms, value], ...]}`` and each vertex's."""
    job: dict[str, list[list[float]]] = {name: [] for name in JOB_SERIES}
    vertices: dict[str, dict[str, Any]] = {}
    for at_ms, values in samples:
        for name, value in (values.get("job") or {}).items():
            if name in job:
                job[name].append([at_ms, value])
        for vid, vals in (values.get("vertices") or {}).items():
            entry = vertices.setdefault(
                vid, {"id": vid, "name": vals.get("name", ""), "series": {n: [] for n in VERTEX_SERIES}}
            )
            entry["name"] = vals.get("name", entry["name"])
            for name in VERTEX_SERIES:
                if name in vals:
                    entry["series"][name].append([at_ms, vals[name]])
    return {"series": job, "vertices": list(vertices.values())}
