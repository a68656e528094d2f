"""The fleet at a glance (the console's landing page and ``GET /api/v1/fleet``): apps by state, the
apps that need someone's attention and why, clusters that do not answer, and the newest alerts, for
the teams the caller sees. A handful of grouped queries, whatever the number of apps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from streampilot.domain.states import AppState
from streampilot.services import access
from streampilot.services.channels import ChannelService
from streampilot.services.context import Context
from streampilot.store.orm import App, Cluster, MetricBreach

TROUBLED = (AppState.FAILED, AppState.LOST, AppState.RESTARTING, AppState.FAILING)
UNHEALTHY_SHOWN = 50


@dataclass
class Unhealthy:
    id: int
    name: str
    state: str
    reasons: list[str] = field(default_factory=list)


async def fleet_summary(ctx: Context) -> dict[str, Any]:
    teams = access.team_filter()

    def scoped(q: Any) -> Any:
        return q if teams is None else q.where(App.team_id.in_(teams))

    async with ctx.sessions() as s:
        counted = await s.execute(scoped(sa.select(App.state, sa.func.count()).group_by(App.state)))
        by_state: dict[str, int] = {state: int(n) for state, n in counted.all()}
        troubled_now = sa.or_(
            App.state.in_([t.value for t in TROUBLED]),
            App.config_verified.is_(False),
            App.unconfirmed_since.is_not(None),
        )
        columns = (App.id, App.name, App.state, App.config_verified, App.unconfirmed_since)
        troubled_total = (
            await s.execute(scoped(sa.select(sa.func.count()).select_from(App).where(troubled_now)))
        ).scalar_one()
        # The first page by name is made of the first troubled apps by name and of the (few) apps in a
        # metric alert's breach: never all 10,000 apps of a bad day.
        troubled = (
            await s.execute(scoped(sa.select(*columns).where(troubled_now)).order_by(App.name).limit(UNHEALTHY_SHOWN))
        ).all()
        breaches = (
            await s.execute(
                scoped(
                    sa.select(*columns, MetricBreach.reason)
                    .join(MetricBreach, MetricBreach.app_id == App.id)
                    .where(MetricBreach.alerted_at.is_not(None))
                )
            )
        ).all()
        unanswered = (
            await s.execute(
                scoped(
                    sa.select(Cluster.id, Cluster.name, sa.func.count(App.id), sa.func.min(App.unconfirmed_since))
                    .join(App, App.cluster_id == Cluster.id)
                    .where(App.unconfirmed_since.is_not(None))
                    .group_by(Cluster.id, Cluster.name)
                )
            )
        ).all()
    unhealthy: dict[int, Unhealthy] = {}
    for row in [*troubled, *breaches]:
        if row.id in unhealthy:
            continue
        entry = unhealthy[row.id] = Unhealthy(row.id, row.name, row.state)
        if row.state in {t.value for t in TROUBLED}:
            entry.reasons.append(row.state.lower())
        if row.config_verified is False:
            entry.reasons.append("settings differ from what was asked")
        if row.unconfirmed_since is not None:
            entry.reasons.append("unconfirmed: its cluster does not answer")
    for row in breaches:
        unhealthy[row.id].reasons.append(row.reason.replace("_", " "))
    # Apps troubled only by a breach are not in the troubled count yet.
    calm_in_breach = {
        r.id
        for r in breaches
        if r.state not in {t.value for t in TROUBLED} and r.config_verified is not False and r.unconfirmed_since is None
    }
    listed = sorted(unhealthy.values(), key=lambda u: u.name)
    alerts = await ChannelService(ctx).alerts(None, 10)
    return {
        "apps": sum(by_state.values()),
        "by_state": {state.value: int(by_state.get(state.value, 0)) for state in AppState},
        "unhealthy_count": int(troubled_total) + len(calm_in_breach),
        "unhealthy": [u.__dict__ for u in listed[:UNHEALTHY_SHOWN]],
        "clusters_unknown": [
            {"id": r[0], "name": r[1], "apps_unconfirmed": int(r[2]), "since": r[3]} for r in unanswered
        ],
        "recent_alerts": [
            {"id": a.id, "app_id": a.app_id, "at": a.at, "reason": a.reason, "title": a.title} for a, _ in alerts
        ],
    }
