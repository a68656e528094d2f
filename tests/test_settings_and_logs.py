"""Every setting has an environment name the README lists; bad values are clear errors; the log is
one line per event with its app/job/operation, as text or JSON, without HTTP chatter at info."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from streampilot.logs import configure
from streampilot.settings import Settings, SettingsError

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_nested_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STREAMPILOT_HOME", str(tmp_path))
    monkeypatch.setenv("STREAMPILOT_PORT", "9001")
    monkeypatch.setenv("STREAMPILOT_DATABASE_URL", "postgresql://sp@db/sp")
    monkeypatch.setenv("STREAMPILOT_TRACKING_TICK_S", "0.5")
    monkeypatch.setenv("STREAMPILOT_FLINK_START_WAIT_S", "30")
    monkeypatch.setenv("STREAMPILOT_ALERTS_THROTTLE_S", "60")
    monkeypatch.setenv("STREAMPILOT_LOG_FORMAT", "json")
    s = Settings.from_env()
    assert (s.home, s.port, s.database_url) == (tmp_path, 9001, "postgresql://sp@db/sp")
    assert (s.tracking.tick_s, s.tracking.lost_after_s) == (0.5, 60.0)
    assert (s.flink.start_wait_s, s.alerts.throttle_s, s.log.format) == (30.0, 60.0, "json")


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("STREAMPILOT_TRACKING_TICK_S", "banana", "STREAMPILOT_TRACKING_TICK_S='banana'"),
        ("STREAMPILOT_PORT", "70000", "STREAMPILOT_PORT='70000'"),
        ("STREAMPILOT_LOG_LEVEL", "loud", "STREAMPILOT_LOG_LEVEL='loud'"),
    ],
)
def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=says.replace("(", r"\(")):
        Settings.from_env()


def test_the_readme_lists_every_setting() -> None:
    missing = [name for name, _, _ in Settings.table() if f"`{name}`" not in README]
    assert missing == []


def test_json_log_lines_carry_app_job_and_operation(capsys: pytest.CaptureFixture[str]) -> None:
    configure("info", "json")
    try:
        logging.getLogger("streampilot.state").info("orders: STARTING -> RUNNING", extra={"app": 3, "job": "ab"})
        logging.getLogger("streampilot.operations").info("start succeeded", extra={"app": 3, "operation": 7})
        logging.getLogger("httpx").info('HTTP Request: POST https://hooks.slack.com/services/T0/B0/secret "200"')
    finally:
        configure("info", "text")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(x["message"], x.get("app"), x.get("job"), x.get("operation")) for x in lines] == [
        ("orders: STARTING -> RUNNING", 3, "ab", None),
        ("start succeeded", 3, None, 7),
    ]
    assert lines[0]["level"] == "info" and lines[0]["logger"] == "streampilot.state"


def test_debug_brings_the_http_calls_back(capsys: pytest.CaptureFixture[str]) -> None:
    configure("debug", "text")
    try:
        logging.getLogger("httpx").info("HTTP Request: GET http://jm:8081/jobs/overview")
    finally:
        configure("info", "text")
    assert "GET http://jm:8081/jobs/overview" in capsys.readouterr().err
