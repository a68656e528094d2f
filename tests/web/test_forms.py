"""The app form's flat fields and the spec: an optional section counts only when its box is checked,
and a spec shown in the form comes back the same."""

from __future__ import annotations

from streampilot.domain.apps import AppKind, AppSpec, MetricAlerts
from streampilot.web.forms import form_to_body, spec_to_form


def test_metric_alerts_round_trip_through_the_form() -> None:
    spec = AppSpec(kind=AppKind.SQL, sql="INSERT INTO b SELECT 1", metric_alerts=MetricAlerts(backpressured_above=0.4))
    form = spec_to_form(spec, "orders", 3)
    assert form["metric_alerts.enabled"] == "on" and form["metric_alerts.backpressured_above"] == "0.4"
    body = form_to_body(form)
    assert AppSpec.model_validate({k: v for k, v in body.items() if k not in ("name", "cluster_id")}) == spec

    unchecked = {**form, "metric_alerts.enabled": ""}
    assert "metric_alerts" not in form_to_body(unchecked)  # the box off: no metric alerts
