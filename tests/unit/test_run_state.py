"""The typed state (run/state.py): one (de)serialisation, and what the ASL reads of it."""

from __future__ import annotations

import json
from pathlib import Path

from studiorunner.payload import validate_payload
from studiorunner.recovery import NextAttempt
from studiorunner.run.batch import BATCH_KEYS, BatchPlan
from studiorunner.run.overlap import OverlapState
from studiorunner.run.slots import SlotState
from studiorunner.run.state import KernelProgress, Outcome, RunRecord, RunState

ASL = json.loads((Path(__file__).resolve().parents[2] / "lambdas" / "studiorunner" / "statemachine" / "runner.asl.json").read_text())


def test_the_asl_reads_only_what_the_state_types_write():
    paths = set()
    for state in ASL["States"].values():
        rules = list(state.get("Choices", []))
        while rules:
            rule = rules.pop()
            rules += rule.get("Or", []) + rule.get("And", [])
            if "Variable" in rule:
                paths.add(rule["Variable"])
        if "SecondsPath" in state:
            paths.add(state["SecondsPath"])
    run = RunRecord(run_id="r", target="t", target_type="jupyter", spec=validate_payload({"notebook": "a.ipynb"}))
    written = {"run": run.to_dict(), "target": {"status": "ready", "wait_seconds": 0},
               "kernel": KernelProgress().to_dict(), "cursor": {"done": True},
               "outcome": {"status": "FAILED", "retry": NextAttempt("r-attempt2", 2, 3, 60, {}).to_dict(),
                           "hold": {"status": "held", "until": 1.0, "wait_seconds": 0}},
               "hold": {"status": "held", "until": 1.0, "wait_seconds": 60},
               "slot": SlotState(status="waiting").to_dict(),
               # A batch: IsBatch? reads the payload's batch keys, BatchMode? PlanBatch's plan.
               "payload": {**dict.fromkeys(BATCH_KEYS), "schedule": {"name": "s", "overlap": "skip"}},
               # A schedule's run: IsScheduled? reads payload.schedule, Overlap?/WaitForPrevious CheckOverlap's.
               "overlap": OverlapState(decision="wait", wait_seconds=5).to_dict(),
               "batch": BatchPlan(batch_id="b", state_machine="arn", items=[], max_concurrency=1,
                                  tolerated_failure_percentage=0, distributed=False, result_uri="s3://b/k").to_dict()}
    for path in paths:
        part, *keys = path.removeprefix("$.").split(".")
        value = written[part]
        for key in keys:
            assert key in value, path
            value = value[key]


def test_a_state_round_trips_and_ignores_keys_it_does_not_know():
    spec = validate_payload({"notebook": "work/a.ipynb", "parameters": {"n": 3}, "timeouts": {"run_seconds": 60}})
    run = RunRecord(run_id="r-1", target="lab", target_type="studio-space", spec=spec,
                    output_uri="s3://b/runs/r-1/a.ipynb", started_at=10.0, deadline=70.0)
    raw = {"run": {**run.to_dict(), "from_an_older_deployment": 1},
           "target": {"status": "ready", "created": True, "attempt": 2, "wait_seconds": 0, "started_at": 1.0},
           "kernel": {"status": "ready", "id": "k", "session_id": "s", "session_path": "work/.studio-runner-r-1-a.ipynb",
                      "name": "python3", "cells_total": 4, "terminal": None},
           "commands": {"results": [{"command": "true", "exit_status": 0}], "log_uri": "s3://b/runs/r-1/commands.log"},
           "cursor": {"next_cell": 2, "done": False, "cells_executed": 1, "pending": []}}
    state = RunState.from_dict(raw)
    assert state.run == run and state.run.spec.parameters == {"n": 3}
    assert state.target.created and state.kernel.id == "k" and state.kernel.started_anything
    assert state.cursor_summary.cells_executed == 1 and state.cursor is not None
    assert state.cursor.to_dict() == {**raw["cursor"], "cells_failed": 0, "exit": None}
    assert RunState.from_dict({"run": state.run.to_dict(), "target": state.target.to_dict(),
                               "kernel": state.kernel.to_dict(), "commands": state.commands.to_dict(),
                               "cursor": state.cursor.to_dict()}) == state


def test_an_empty_state_is_a_run_that_started_nothing():
    state = RunState.from_dict({"payload": {}, "error": {"Error": "PayloadInvalid", "Cause": "x"}})
    assert state.run is None and not state.kernel.started_anything and not state.target.created


def test_the_outcome_keeps_its_wire_form():
    # What Step Functions, the CLI and the notifications read: the keys and their order, the
    # optional ones only when set (the ASL reads $.outcome.status and $.outcome.retry).
    failed = {"status": "FAILED", "error": "CellError", "cause": "boom; output notebook: s3://b/r/n.ipynb",
              "result": {"run_id": "r", "status": "FAILED", "target": "lab", "output_notebook": "s3://b/r/n.ipynb",
                         "output_html": "s3://b/r/n.html", "cells_total": 3, "cells_executed": 2, "cells_failed": 1,
                         "duration_seconds": 4.5,
                         "cleanup": {"actions": ["shut down kernel"], "kept": [], "problems": ["x"]},
                         "exit": "early", "commands": [{"command": "true"}], "warnings": ["w"],
                         "next_attempt": "r-attempt2"},
              "retry": NextAttempt("r-attempt2", 2, 3, 60, {}).to_dict()}
    succeeded = {"status": "SUCCEEDED",
                 "result": {"run_id": "r", "status": "SUCCEEDED", "target": "lab", "output_notebook": None,
                            "cells_total": 0, "cells_executed": 0, "cells_failed": 0, "duration_seconds": None,
                            "cleanup": {"actions": [], "kept": []}}}
    for wire in (failed, succeeded):
        outcome = Outcome.from_dict(wire)
        assert outcome is not None and json.dumps(outcome.to_dict()) == json.dumps(wire)
    assert Outcome.from_dict(succeeded).succeeded and not Outcome.from_dict(failed).succeeded
