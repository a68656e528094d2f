"""The one state writer: two writers deciding on the same old state cannot both win."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from streampilot.domain.rules import TransitionRefused
from streampilot.domain.states import AppState, Cause
from streampilot.services.platform import Platform
from streampilot.services.statewriter import StateChanged, lock_app, set_app_state
from streampilot.store.orm import App, AppEvent, Cluster


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_concurrent_writers_on_the_same_old_state(platform: Platform) -> None:
    async with platform.ctx.sessions() as s, s.begin():
        s.add(Cluster(team_id=1, id=1, name="c", kind="standalone", rest_url="http://127.0.0.1:9", options={}))
        await s.flush()
        s.add(App(team_id=1, id=1, name="a", cluster_id=1, state="STARTING"))
    first, second = platform.ctx.sessions(), platform.ctx.sessions()
    async with first, second:
        row1 = await lock_app(first, 1)  # SQLite reads outside the write transaction: no row lock
        row2 = await lock_app(second, 1)
        assert row1 is not None and row2 is not None
        await set_app_state(first, row1, AppState.FAILED, Cause.OBSERVER, "seen by the tracker")
        await first.commit()
        with pytest.raises(StateChanged):
            await set_app_state(second, row2, AppState.FAILED, Cause.OBSERVER, "seen by a follower")
        await second.rollback()
    async with platform.ctx.sessions() as s:
        changes = (await s.execute(sa.select(AppEvent.to_state).where(AppEvent.app_id == 1))).scalars().all()
        assert changes == ["FAILED"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_users_may_not_make_observer_transitions(platform: Platform) -> None:
    async with platform.ctx.sessions() as s, s.begin():
        s.add(Cluster(team_id=1, id=1, name="c", kind="standalone", rest_url="http://127.0.0.1:9", options={}))
        await s.flush()
        s.add(App(team_id=1, id=1, name="a", cluster_id=1, state="STARTING"))
    async with platform.ctx.sessions() as s, s.begin():
        row = await lock_app(s, 1)
        assert row is not None
        with pytest.raises(TransitionRefused):
            await set_app_state(s, row, AppState.RUNNING, Cause.USER, "a user cannot declare a job running")
