"""Restart strategies as typed settings, their Flink keys, and Flink's readback sentence.

Flink reports the effective strategy of a running job only as a sentence in
``/jobs/<id>/config`` (``execution-config.restart-strategy``); ``describe`` predicts that sentence's
facts so the comparison is between values, not strings.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streampilot.domain.limits import MAX_INT, YEAR_S


class _Strategy(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoRestart(_Strategy):
    type: Literal["none"]


class FixedDelay(_Strategy):
    type: Literal["fixed-delay"]
    attempts: int = Field(default=3, ge=1, le=MAX_INT)
    delay_s: float = Field(default=1.0, ge=0, le=YEAR_S)


class FailureRate(_Strategy):
    type: Literal["failure-rate"]
    max_failures: int = Field(default=3, ge=1, le=MAX_INT)
    interval_s: float = Field(default=300.0, gt=0, le=YEAR_S)
    delay_s: float = Field(default=1.0, ge=0, le=YEAR_S)


class ExponentialDelay(_Strategy):
    type: Literal["exponential-delay"]
    initial_backoff_s: float = Field(default=1.0, gt=0, le=YEAR_S)
    max_backoff_s: float = Field(default=300.0, gt=0, le=YEAR_S)
    multiplier: float = Field(default=1.5, ge=1, le=100)
    reset_threshold_s: float = Field(default=3600.0, gt=0, le=YEAR_S)
    jitter: float = Field(default=0.1, ge=0, le=1)
    attempts: int | None = Field(default=None, ge=1, le=MAX_INT)

    @model_validator(mode="after")
    def _backoffs_ordered(self) -> ExponentialDelay:
        if self.max_backoff_s < self.initial_backoff_s:
            raise ValueError("max_backoff_s must not be smaller than initial_backoff_s")
        return self


RestartStrategy = NoRestart | FixedDelay | FailureRate | ExponentialDelay


def ms(seconds: float) -> str:
    return f"{round(seconds * 1000)} ms"


def flink_keys(strategy: RestartStrategy) -> dict[str, str]:
    if isinstance(strategy, NoRestart):
        return {"restart-strategy.type": "none"}
    if isinstance(strategy, FixedDelay):
        return {
            "restart-strategy.type": "fixed-delay",
            "restart-strategy.fixed-delay.attempts": str(strategy.attempts),
            "restart-strategy.fixed-delay.delay": ms(strategy.delay_s),
        }
    if isinstance(strategy, FailureRate):
        return {
            "restart-strategy.type": "failure-rate",
            "restart-strategy.failure-rate.max-failures-per-interval": str(strategy.max_failures),
            "restart-strategy.failure-rate.failure-rate-interval": ms(strategy.interval_s),
            "restart-strategy.failure-rate.delay": ms(strategy.delay_s),
        }
    keys = {
        "restart-strategy.type": "exponential-delay",
        "restart-strategy.exponential-delay.initial-backoff": ms(strategy.initial_backoff_s),
        "restart-strategy.exponential-delay.max-backoff": ms(strategy.max_backoff_s),
        "restart-strategy.exponential-delay.backoff-multiplier": str(strategy.multiplier),
        "restart-strategy.exponential-delay.reset-backoff-threshold": ms(strategy.reset_threshold_s),
        "restart-strategy.exponential-delay.jitter-factor": str(strategy.jitter),
    }
    if strategy.attempts is not None:
        keys["restart-strategy.exponential-delay.attempts-before-reset-backoff"] = str(strategy.attempts)
    return keys


_ISO = re.compile(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?")


def _iso_seconds(text: str) -> float | None:
    m = _ISO.fullmatch(text)
    if not m or not any(m.groups()):
        return None
    h, mi, s = m.groups()
    return int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


def read_sentence(sentence: str) -> dict[str, object]:
    """Facts from Flink's restart-strategy sentence; ``{"type": "unrecognised"}`` if unknown."""
    s = sentence.strip()
    m = re.search(
        r"Failure rate restart with maximum of (\d+) failures within interval (PT\S+?) "
        r"and fixed delay (PT\S+?)\.?$",
        s,
    )
    if m:
        return {
            "type": "failure-rate",
            "max_failures": int(m.group(1)),
            "interval_s": _iso_seconds(m.group(2)),
            "delay_s": _iso_seconds(m.group(3)),
        }
    m = re.search(r"fixed delay \((PT\S+?)\)\. #(\d+) restart attempts", s, re.IGNORECASE)
    if m:
        return {"type": "fixed-delay", "attempts": int(m.group(2)), "delay_s": _iso_seconds(m.group(1))}
    if re.search(r"no restart|restart deactivated|NoRestart", s, re.IGNORECASE):
        return {"type": "none"}
    if re.search(r"exponential", s, re.IGNORECASE):
        return {"type": "exponential-delay"}
    return {"type": "unrecognised", "sentence": s}


def expected_facts(strategy: RestartStrategy) -> dict[str, object]:
    """The facts ``read_sentence`` should find when Flink runs with ``strategy``."""
    if isinstance(strategy, FailureRate):
        return {
            "type": "failure-rate",
            "max_failures": strategy.max_failures,
            "interval_s": strategy.interval_s,
            "delay_s": strategy.delay_s,
        }
    if isinstance(strategy, FixedDelay):
        return {"type": "fixed-delay", "attempts": strategy.attempts, "delay_s": strategy.delay_s}
    return {"type": strategy.type}
