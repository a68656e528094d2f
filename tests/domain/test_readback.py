"""Submitted configuration beside Flink's readback, aligned on Flink's key names."""

from __future__ import annotations

from streampilot.domain.readback import aligned

READBACK = {
    "restart_strategy": "Failure rate restart with maximum of 3 failures within interval PT5M and fixed delay PT2S.",
    "parallelism": 2,
    "checkpointing": {
        "mode": "exactly_once",
        "interval": 500,
        "timeout": 600000,
        "min_pause": 0,
        "max_concurrent": 1,
        "tolerable_failed_checkpoints": 0,
        "unaligned_checkpoints": False,
        "externalization": {"enabled": True, "delete_on_cancellation": False},
    },
}


def test_rows_line_up_on_flinks_keys_and_only_real_differences_are_marked() -> None:
    submitted = {
        "pipeline.name": "orders",
        "parallelism.default": "1",
        "execution.checkpointing.interval": "500 ms",
        "execution.checkpointing.timeout": "600000 ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "restart-strategy.type": "failure-rate",
        "restart-strategy.failure-rate.max-failures-per-interval": "3",
        "restart-strategy.failure-rate.failure-rate-interval": "300000 ms",
        "restart-strategy.failure-rate.delay": "2000 ms",
    }
    rows = {r.key: r for r in aligned(submitted, READBACK)}
    assert [k for k, r in rows.items() if r.differs] == ["parallelism.default"]  # asked 1, runs 2
    assert rows["parallelism.default"].flink == "2"
    assert rows["execution.checkpointing.interval"].flink == "500 ms"
    assert rows["execution.checkpointing.mode"].flink == "EXACTLY_ONCE"
    assert rows["restart-strategy.failure-rate.failure-rate-interval"].flink == "300000 ms"
    assert rows["pipeline.name"].flink is None and not rows["pipeline.name"].differs  # not read back
    only_flink = rows["execution.checkpointing.max-concurrent-checkpoints"]
    assert only_flink.submitted is None and only_flink.flink == "1" and not only_flink.differs
    assert list(rows)[: len(submitted)] == list(submitted)  # the submitted order first


def test_nothing_read_yet_lists_what_was_submitted() -> None:
    rows = aligned({"parallelism.default": "1"}, None)
    assert [(r.key, r.submitted, r.flink, r.differs) for r in rows] == [("parallelism.default", "1", None, False)]
