"""The one function that writes an application's state, and appends the event that explains it."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from streampilot.domain.rules import check_transition
from streampilot.domain.states import AppState, Cause
from streampilot.services.errors import Conflict
from streampilot.store.orm import App, AppEvent, utcnow

log = logging.getLogger("streampilot.state")


class StateChanged(Conflict):
    """Another writer changed the application's state first; the caller's decision is void."""


async def lock_app(session: AsyncSession, app_id: int) -> App | None:
    result = await session.execute(sa.select(App).where(App.id == app_id).with_for_update())
    return result.scalar_one_or_none()


async def record_event(
    session: AsyncSession,
    app: App,
    to: AppState | str,
    cause: Cause,
    detail: str,
    *,
    at: datetime | None = None,
    from_state: str | None = None,
) -> None:
    session.add(
        AppEvent(
            app_id=app.id,
            at=at or utcnow(),
            from_state=from_state if from_state is not None else app.state,
            to_state=str(to),
            cause=cause.value,
            detail=detail,
            job_id=app.job_id,
        )
    )


async def set_app_state(
    session: AsyncSession,
    app: App,
    to: AppState,
    cause: Cause,
    detail: str,
    *,
    at: datetime | None = None,
    **fields: Any,
) -> bool:
    """Move ``app`` (a row locked by the caller's transaction) to ``to`` and record why.

    Raises TransitionRefused if the caller's kind may not make this change. Other columns that
    change together with the state (job id, observation time, ...) are passed as ``fields`` so that
    state and context are stored in one write. Returns whether the state changed.
    """
    current = AppState(app.state)
    if to != current:
        check_transition(cause, current, to)
        # Compare-and-set: where the database cannot lock the row (SQLite reads outside the write
        # transaction), a concurrent writer that decided on the same old state must not win twice.
        result = await session.execute(
            sa.update(App)
            .where(App.id == app.id, App.state == current.value)
            .values(state=to.value)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise StateChanged(f"application {app.name!r} changed state meanwhile; try again")
    for name, value in fields.items():
        setattr(app, name, value)
    if to == current:
        return False
    await record_event(session, app, to, cause, detail, at=at, from_state=current.value)
    app.state = to.value
    log.info(
        "%s: %s -> %s (%s): %s",
        app.name,
        current.value,
        to.value,
        cause.value,
        detail,
        extra={"app": app.id, "job": app.job_id},
    )
    return True
