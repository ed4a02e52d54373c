"""Cleaning up after an execution that ended without reaching its Cleanup state.

An execution that is ABORTED (``stop-execution``, a redeploy) or TIMED_OUT never runs the
Cleanup state, yet its kernel, terminal or app may still be running and billing. An
EventBridge rule on the execution's status calls this: the state is rebuilt from the
execution's history (the last state input, plus any step that finished after it) and
handed to the same cleanup the state machine uses.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from studiorunner.catalog import STEP_RESULT_PATHS


def history_events(sfn, execution_arn: str) -> list[dict[str, Any]]:
    """All history events of the execution, oldest first."""
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events += page["events"]
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def state_from_history(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The run's last known state: the latest state input that carries a run, plus later results."""
    state: dict[str, Any] = {}
    current_step = None
    for event in events:
        entered = event.get("stateEnteredEventDetails")
        if entered:
            current_step = entered.get("name")
            try:
                data = json.loads(entered.get("input") or "{}")
            except ValueError:
                continue
            if isinstance(data, dict) and "run" in data:
                state = data
            continue
        done = event.get("lambdaFunctionSucceededEventDetails") or event.get("taskSucceededEventDetails")
        if done and current_step in STEP_RESULT_PATHS and state:
            try:
                state[STEP_RESULT_PATHS[current_step]] = json.loads(done.get("output") or "null")
            except ValueError:
                pass
    return state


def needs_cleanup(state: dict[str, Any]) -> bool:
    """False when there is nothing to do: no run, or the run's own Cleanup already finished."""
    return bool(state.get("run")) and "outcome" not in state
