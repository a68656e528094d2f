"""Which state changes each kind of caller may make (the transition policy).

The observer reports what Flink says and may move an app anywhere; users and policies may only
start what is startable, stop what is active, and roll back their own operation when it failed.
"""

from __future__ import annotations

from streampilot.domain.states import ACTIVE_STATES, STARTABLE_STATES, AppState, Cause


class TransitionRefused(Exception):
    pass


def check_transition(cause: Cause, current: AppState, new: AppState) -> None:
    if cause in (Cause.OBSERVER, Cause.FORCED, Cause.SYSTEM):
        return
    if new == AppState.STARTING and current in STARTABLE_STATES:
        return
    if new == AppState.STOPPING and current in ACTIVE_STATES:
        return
    # Rolling back an operation that did not go through (submission rejected, stop refused).
    if current == AppState.STARTING and new in STARTABLE_STATES:
        return
    if current == AppState.STOPPING and new in ACTIVE_STATES | {AppState.CANCELED, AppState.FINISHED}:
        return
    raise TransitionRefused(f"{cause.value} may not move an application from {current.value} to {new.value}")
