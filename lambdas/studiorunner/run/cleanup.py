"""Cleanup: remove what this run started, on every path, and decide the run's outcome."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from studiorunner import notebook as nbtools
from studiorunner.errors import NotebookNotFound, StudioRunnerError
from studiorunner.jupyter.rest import JupyterClient
from studiorunner.run.services import Services
from studiorunner.run.state import RunState

log = logging.getLogger(__name__)

@dataclass
class CleanupReport:
    actions: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def error_message(error: dict[str, Any] | None) -> tuple[str, str]:
    """(name, human message) from a Catch's ``{"Error", "Cause"}``."""
    if not error:
        return "", ""
    name = error.get("Error") or "States.TaskFailed"
    cause = error.get("Cause") or ""
    try:
        parsed = json.loads(cause)
    except (TypeError, ValueError):
        return name, cause
    if isinstance(parsed, dict):
        return name, str(parsed.get("errorMessage") or parsed.get("message") or cause)
    return name, cause


def write_back_path(source_path: str) -> str:
    """Where ``write_back`` puts the executed notebook: beside the source, ``<stem>.output.ipynb``."""
    stem = source_path[: -len(".ipynb")] if source_path.endswith(".ipynb") else source_path
    return f"{stem}.output.ipynb"


def release_resources(state: RunState, services: Services) -> CleanupReport:
    """Remove what this run started: its session and kernel, KernelGateway app, app/instance.

    Only what the state names as the run's own: ids it recorded, or its own session path
    (which carries the run id) when a session was created but its id never reached the
    state. Never anything found by the notebook's path, which a person may have open.
    """
    report = CleanupReport()
    run, kernel, progress = state.run, state.kernel, state.target
    if run is None:
        return report
    spec = run.spec
    target = services.target(run.target)
    if not (progress.created or kernel.started_anything):
        return report
    other_kernels = 0
    try:
        jupyter = JupyterClient(target.login())
    except StudioRunnerError as exc:
        jupyter = None
        if kernel.started_anything:
            report.problems.append(f"could not log in to remove the kernel: {exc}")
    if jupyter is not None:
        if spec.write_back and kernel.path and run.output_uri:
            try:
                path = write_back_path(kernel.path)
                jupyter.write_notebook(path, services.notebooks().read(run.output_uri))
                report.actions.append(f"wrote the executed notebook to {path} on the target")
            except StudioRunnerError as exc:
                report.problems.append(f"could not write the executed notebook back to the target: {exc}")
        try:
            for session_id in _own_sessions(jupyter, state):
                if jupyter.delete_session(session_id):
                    report.actions.append("deleted session and its kernel")
            if kernel.id and jupyter.delete_kernel(kernel.id):
                report.actions.append("shut down kernel")
            if kernel.app_name and (kernel.app_created or spec.cleanup_app == "always") and spec.cleanup_app != "never":
                if jupyter.delete_studio_app(kernel.app_name):
                    report.actions.append(f"deleted KernelGateway app {kernel.app_name}")
            elif kernel.app_name:
                report.kept.append(f"KernelGateway app {kernel.app_name} (not started by this run)")
            if progress.created or spec.cleanup_app == "always":
                other_kernels = len(jupyter.list_kernels())
        except StudioRunnerError as exc:
            report.problems.append(str(exc))
    try:
        released = target.release(progress, spec.cleanup_app, other_kernels=other_kernels)
        report.actions += released.actions
        report.kept += released.kept
    except Exception as exc:  # boto errors carry no secrets, but keep the message short
        report.problems.append(f"could not stop the target's app: {type(exc).__name__}: {exc}")
    return report


def _own_sessions(jupyter: JupyterClient, state: RunState) -> list[str]:
    """The ids of this run's sessions: the one it recorded, else any on its own session path."""
    kernel = state.kernel
    if kernel.session_id:
        return [kernel.session_id]
    if not kernel.session_path:
        return []
    return [s["id"] for s in jupyter.list_sessions() if s.get("path") == kernel.session_path]


def cleanup(raw_state: dict[str, Any], services: Services) -> dict[str, Any]:
    """Clean up on every path and decide the run's outcome (the execution's error and cause)."""
    state = RunState.from_dict(raw_state)
    run = state.run
    error_name, message = error_message(state.error)
    cursor = state.cursor_summary
    output_uri = run.output_uri if run else None
    if error_name and output_uri and error_name not in ("PayloadInvalid", "TargetNotAllowed"):
        _mark_notebook_failed(services, output_uri, error_name, message)
    report = release_resources(state, services)
    for action in report.actions:
        log.info("cleanup: %s", action)
    now = services.clock()

    result = {
        "run_id": run.run_id if run else None,
        "status": "FAILED" if error_name else "SUCCEEDED",
        "target": run.target if run else None,
        "output_notebook": output_uri,
        "cells_total": state.kernel.cells_total,
        "cells_executed": cursor.cells_executed,
        "cells_failed": cursor.cells_failed,
        "duration_seconds": round(now - run.started_at, 3) if run and run.started_at else None,
        "cleanup": {"actions": report.actions, "kept": report.kept},
    }
    if cursor.exit:
        result["exit"] = cursor.exit
    if state.commands and state.commands.results:
        result["commands"] = state.commands.results
    if state.kernel.warnings:
        result["warnings"] = state.kernel.warnings

    if report.problems:
        problems = "; ".join(report.problems)
        if not error_name:
            error_name, message = "CleanupFailed", f"The run succeeded but cleanup failed: {problems}"
        else:
            message = f"{message} (cleanup also failed: {problems})"
    if error_name:
        if output_uri and output_uri not in message:
            message = f"{message}; output notebook: {output_uri}"
        log_uri = run.commands_log_uri if run and state.commands is None else None
        if log_uri and error_name.startswith("Command") and log_uri not in message:
            message = f"{message}; command log: {log_uri}"
        result["status"] = "FAILED"
        return {"status": "FAILED", "error": error_name, "cause": message, "result": result}
    return {"status": "SUCCEEDED", "result": result}


def _mark_notebook_failed(services: Services, uri: str, error_name: str, message: str) -> None:
    """A step other than RunCells failed: say so in the output notebook, if it exists."""
    try:
        nb = services.notebooks().read(uri)
    except NotebookNotFound:
        return
    except Exception as exc:
        log.warning("could not read the output notebook to mark it failed: %s", type(exc).__name__)
        return
    meta = nb.metadata.get("studio_runner", {})
    if meta.get("status") == "failed":
        return
    nbtools.finish_run(nb, "failed", datetime.now(timezone.utc), {"error": error_name, "message": message})
    services.notebooks().write(uri, nb)
