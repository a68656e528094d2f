"""Every reason an alert can have is one people can read."""

from streampilot.domain.alerts import AlertReason
from streampilot.services.alerting import TITLES


def test_every_alert_reason_has_a_title() -> None:
    assert set(TITLES) == set(AlertReason)
