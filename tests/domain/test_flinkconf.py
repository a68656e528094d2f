"""Translating settings into Flink keys, refusing contradictions, and reading Flink back."""

import pytest
from pydantic import ValidationError

from streampilot.domain.apps import AppKind, AppSpec
from streampilot.domain.errors import SpecError
from streampilot.domain.flinkconf import build_launch_config
from streampilot.domain.flinkoptions import option_problem
from streampilot.domain.restart import read_sentence
from streampilot.domain.verify import compare


def spec(**kw: object) -> AppSpec:
    return AppSpec.model_validate({"kind": "sql", "sql": "INSERT INTO b SELECT 1", **kw})


def test_structured_settings_become_flink_keys() -> None:
    config = build_launch_config(
        spec(
            parallelism=3,
            checkpointing={"interval_s": 2, "timeout_s": 30, "tolerable_failed_checkpoints": 5},
            restart_strategy={"type": "failure-rate", "max_failures": 3, "interval_s": 300, "delay_s": 2},
            properties={"state.backend.type": "hashmap", "pipeline.object-reuse": True},
        ),
        app_name="orders",
    )
    assert config["parallelism.default"] == "3"
    assert config["execution.checkpointing.interval"] == "2000 ms"
    assert config["execution.checkpointing.tolerable-failed-checkpoints"] == "5"
    assert config["restart-strategy.type"] == "failure-rate"
    assert config["restart-strategy.failure-rate.max-failures-per-interval"] == "3"
    assert config["restart-strategy.failure-rate.failure-rate-interval"] == "300000 ms"
    assert config["pipeline.object-reuse"] == "true"
    assert config["pipeline.name"] == "orders"


def test_contradicting_property_is_a_field_error() -> None:
    with pytest.raises(SpecError) as err:
        build_launch_config(
            spec(checkpointing={"interval_s": 2}, properties={"execution.checkpointing.interval": "5 s"}),
            app_name="x",
        )
    problem = err.value.problems[0]
    assert problem.field == "properties.execution.checkpointing.interval"
    assert "contradicts checkpointing" in problem.message


def test_agreeing_property_in_other_units_is_fine() -> None:
    config = build_launch_config(
        spec(checkpointing={"interval_s": 2}, properties={"execution.checkpointing.interval": "2 s"}), app_name="x"
    )
    assert config["execution.checkpointing.interval"] == "2000 ms"


def test_sql_set_contradicting_restart_strategy_names_sql() -> None:
    with pytest.raises(SpecError) as err:
        build_launch_config(
            spec(restart_strategy={"type": "none"}), app_name="x", sql_sets={"restart-strategy.type": "fixed-delay"}
        )
    assert err.value.problems[0].field == "sql"


def test_managed_keys_are_refused() -> None:
    with pytest.raises(SpecError, match="restore"):
        build_launch_config(spec(properties={"execution.savepoint.path": "/tmp/sp"}), app_name="x")


def test_checkpoint_failure_restart_policy_forces_retention() -> None:
    config = build_launch_config(
        spec(
            checkpointing={"interval_s": 1, "retain_on_cancel": False},
            checkpoint_failure_policy={"failures": 2, "window_s": 300, "action": "restart"},
        ),
        app_name="x",
    )
    assert config["execution.checkpointing.externalized-checkpoint-retention"] == "RETAIN_ON_CANCELLATION"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("parallelism", -1),
        ("parallelism", 0),
        ("checkpointing", {"interval_s": 1, "timeout_s": 0}),
        ("restart_strategy", {"type": "sometimes"}),
        ("restart_strategy", {"type": "fixed-delay", "delay_s": -1}),
        ("checkpoint_failure_policy", {"failures": 0, "window_s": 10}),
        ("checkpoint_failure_policy", {"failures": 1, "window_s": 0}),
        ("properties", {"a": [1, 2]}),
    ],
)
def test_invalid_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as err:
        spec(**{field: value})
    assert err.value.errors()[0]["loc"][0] == field


def test_restart_sentences_are_read() -> None:
    facts = read_sentence("Failure rate restart with maximum of 3 failures within interval PT5M and fixed delay PT2S.")
    assert facts == {"type": "failure-rate", "max_failures": 3, "interval_s": 300.0, "delay_s": 2.0}


def test_compare_reports_verified_and_mismatches() -> None:
    s = spec(
        parallelism=1,
        checkpointing={"interval_s": 2},
        restart_strategy={"type": "failure-rate", "max_failures": 3, "interval_s": 300, "delay_s": 2},
    )
    job = {
        "execution-config": {
            "job-parallelism": 1,
            "restart-strategy": "Failure rate restart with maximum of 3 failures within interval PT5M and fixed delay PT2S.",
        }
    }
    cp = {
        "mode": "exactly_once",
        "interval": 2000,
        "timeout": 600000,
        "min_pause": 0,
        "tolerable_failed_checkpoints": 0,
        "externalization": {"enabled": True, "delete_on_cancellation": False},
    }
    assert compare(s, job, cp) == []
    job["execution-config"]["restart-strategy"] = "Restart with fixed delay (PT1S). #2147483647 restart attempts."
    mismatches = compare(s, job, {**cp, "interval": 5000})
    assert any("restart_strategy.type" in m for m in mismatches)
    assert any("checkpointing.interval_s" in m for m in mismatches)


class TestOptionTypes:
    """A value Flink would refuse is a field error before submission, with the SET's line."""

    def test_a_bad_duration_in_a_set_names_its_line(self) -> None:
        from streampilot.services.submissions import launch_config

        script = (
            "CREATE TABLE a (x INT) WITH ('connector' = 'datagen');\n"
            "SET 'execution.checkpointing.interval' = 'banana';\n"
            "INSERT INTO b SELECT x FROM a;"
        )
        with pytest.raises(SpecError) as refused:
            launch_config(AppSpec(kind=AppKind.SQL, sql=script), "app")
        problem = refused.value.problems[0]
        assert (problem.field, problem.line, problem.column) == ("sql", 2, 1)
        assert "execution.checkpointing.interval is a duration" in problem.message and "'banana'" in problem.message

    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("pipeline.object-reuse", "maybe"),
            ("parallelism.default", "four"),
            ("execution.runtime-mode", "sometimes"),
            ("table.exec.mini-batch.allow-latency", "soon"),
        ],
    )
    def test_a_bad_property_is_refused(self, key: str, value: str) -> None:
        with pytest.raises(SpecError) as refused:
            build_launch_config(AppSpec(kind=AppKind.SQL, sql="x", properties={key: value}), app_name="a")
        assert refused.value.problems[0].field == f"properties.{key}"

    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("pipeline.object-reuse", "true"),
            ("execution.checkpointing.interval", "10 s"),
            ("table.exec.state.ttl", "PT1H"),
            ("execution.runtime-mode", "batch"),
            ("some.option.nobody.knows", "anything"),
        ],
    )
    def test_good_and_unknown_values_pass(self, key: str, value: str) -> None:
        assert option_problem(key, value) is None
