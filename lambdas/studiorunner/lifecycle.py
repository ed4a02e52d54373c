"""The run, step by step: what each state of the state machine does.

Each function takes the state machine's state (a dict of small, non-secret references)
and returns the part it owns. They log in afresh every time: no cookie, token or URL
crosses a step boundary. The Lambda handlers in ``lambdas/steps`` are thin wrappers.

State layout::

    run     – Prepare:     run_id, target, spec (the validated payload), output_uri, …
    target  – StartTarget: status, created, attempt, wait_seconds, started_at
    kernel  – StartKernel: status, id, session_id, client_session_id, app_name, …
    cursor  – RunCells:    next cell, pending requests, done, counts
    error   – any Catch:   {"Error": name, "Cause": …}
    outcome – Cleanup:     status, error, cause, result
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from . import notebook as nbtools
from .config import RunnerConfig
from .errors import (
    JupyterHTTPError,
    KernelDied,
    KernelNotReady,
    NotebookNotFound,
    PayloadInvalid,
    RunTimeout,
    StudioRunnerError,
)
from .jupyter import JupyterClient, new_client_session_id
from .parameters import inject_parameters
from .payload import RunSpec, validate_payload
from .store import NotebookStore, S3NotebookStore, ThrottledSaver
from .targets import Target, TargetProgress, next_wait, target_for

log = logging.getLogger(__name__)

#: How long before the Lambda's own timeout RunCells stops sending cells and saves.
SAFETY_MARGIN_SECONDS = 20.0
#: A kernel POST on Studio Classic blocks while a KernelGateway app starts: never longer than this.
KERNEL_POST_TIMEOUT_SECONDS = 25.0
#: How long StartKernel waits for a kernel_info_reply before letting the state machine wait.
KERNEL_PROBE_SECONDS = 10.0
UPLOAD_DIR = "studio-runner/uploads"  # hidden folders are refused by jupyter_server (allow_hidden)


def _now() -> float:
    return time.time()


@dataclass
class Services:
    """The outside world a step talks to; tests and the local stack swap parts of it."""

    config: RunnerConfig
    store: NotebookStore | None = None
    target_factory: Callable[[Any], Target] = target_for
    clock: Callable[[], float] = _now

    def notebooks(self) -> NotebookStore:
        if self.store is None:
            self.store = S3NotebookStore()
        return self.store

    def target(self, run: dict[str, Any]) -> Target:
        return self.target_factory(self.config.target(run["target"]))


# -- Prepare ---------------------------------------------------------------------------

_RUN_ID = re.compile(r"[^A-Za-z0-9_.-]+")


def prepare(event: dict[str, Any], services: Services) -> dict[str, Any]:
    """Validate the payload and the target; decide the run id and output location."""
    spec = validate_payload(event.get("payload"), max_run_seconds=services.config.max_run_seconds)
    target = services.config.target(spec.target)
    if spec.instance_type and target.type != "studio-classic":
        raise PayloadInvalid(
            f"'kernel.instance_type' only applies to studio-classic targets; target {target.name!r} is {target.type}"
        )
    if not services.config.bucket:
        raise PayloadInvalid("The deployment has no output bucket (STUDIO_RUNNER_BUCKET is empty)")
    run_id = _RUN_ID.sub("-", str(event.get("execution") or "")).strip("-") or f"run-{int(services.clock())}"
    source = spec.notebook or spec.notebook_s3 or ""
    output_uri = None
    if source:
        output_uri = f"s3://{services.config.bucket}/{nbtools.output_key(run_id, source)}"
        if spec.notebook_s3:
            services.notebooks().read(spec.notebook_s3)  # NotebookNotFound now, before anything starts
    started = services.clock()
    return {
        "run_id": run_id,
        "target": target.name,
        "target_type": target.type,
        "spec": spec.to_dict(),
        "has_notebook": bool(source),
        "has_commands": bool(spec.commands),
        "output_uri": output_uri,
        "commands_log_uri": f"s3://{services.config.bucket}/runs/{run_id}/commands.log" if spec.commands else None,
        "started_at": started,
        "deadline": started + spec.timeouts.run_seconds if spec.timeouts.run_seconds else None,
    }


def _check_deadline(run: dict[str, Any], now: float) -> None:
    if run.get("deadline") and now > run["deadline"]:
        spec = RunSpec.from_dict(run["spec"])
        raise RunTimeout(
            f"The run went past timeouts.run_seconds={spec.timeouts.run_seconds:g}",
            run_id=run["run_id"],
        )


# -- StartTarget -----------------------------------------------------------------------

def start_target(state: dict[str, Any], services: Services) -> dict[str, Any]:
    run = state["run"]
    now = services.clock()
    _check_deadline(run, now)
    spec = RunSpec.from_dict(run["spec"])
    progress = TargetProgress.from_dict(state.get("target"))
    progress = services.target(run).ensure_started(progress, now=now, start_seconds=spec.timeouts.start_seconds)
    return progress.to_dict()


# -- RunCommands -----------------------------------------------------------------------

def run_commands(state: dict[str, Any], services: Services, *, remaining_seconds: float) -> dict[str, Any]:
    """Run the payload's shell commands in a Jupyter terminal; save their log beside the notebook.

    The terminal lives only inside this invocation (deleted in ``finally``), so a failing
    command never leaves one behind; commands must each finish within one invocation.
    """
    import io

    from .terminal import TerminalSession, run_commands as run_in_terminal, summary, websocket_opener

    run = state["run"]
    spec = RunSpec.from_dict(run["spec"])
    _check_deadline(run, services.clock())
    http = services.target(run).login()
    budget = max(remaining_seconds - SAFETY_MARGIN_SECONDS, 1.0)
    if run.get("deadline"):
        budget = min(budget, max(run["deadline"] - services.clock(), 1.0))
    timeout = min(spec.timeouts.command_seconds or budget, budget)
    log_uri = run["commands_log_uri"]
    summary_uri = log_uri.rsplit("/", 1)[0] + "/commands.json"
    log_text, results = io.StringIO(), []
    session = TerminalSession(rest=http, open_socket=websocket_opener(http))
    try:
        session.create()
        run_in_terminal(session, spec.commands, timeout=timeout, allow_failure=spec.allow_command_errors,
                        log=log_text, results=results)
    except StudioRunnerError as exc:
        raise type(exc)(f"{exc.message}; command log: {log_uri}", **exc.facts) from None
    finally:
        try:
            session.close(delete=True)
        finally:
            store = services.notebooks()
            store.write_bytes(log_uri, log_text.getvalue().encode(), content_type="text/plain; charset=utf-8")
            store.write_bytes(summary_uri, json.dumps(summary(results), indent=1).encode(), content_type="application/json")
    return {"results": summary(results), "log_uri": log_uri}


# -- StartKernel -----------------------------------------------------------------------

def _load_source(run: dict[str, Any], spec: RunSpec, jupyter: JupyterClient, services: Services):
    """The notebook to run and its path in the target's file tree (uploaded if from S3)."""
    if spec.notebook:
        return jupyter.read_notebook(spec.notebook), spec.notebook
    nb = services.notebooks().read(spec.notebook_s3)
    path = f"{UPLOAD_DIR}/{run['run_id']}/{spec.notebook_s3.rsplit('/', 1)[-1]}"
    jupyter.write_notebook(path, nb)
    return nb, path


def start_kernel(state: dict[str, Any], services: Services) -> dict[str, Any]:
    """First call: load the notebook, save the pending output, start a kernel. Later calls: wait for it."""
    run = state["run"]
    now = services.clock()
    _check_deadline(run, now)
    spec = RunSpec.from_dict(run["spec"])
    kernel = dict(state.get("kernel") or {})
    target = services.target(run)
    jupyter = JupyterClient(target.login())

    if not kernel.get("id"):
        kernel.setdefault("started_at", now)
        kernel.setdefault("attempt", 0)
        if not kernel.get("name"):
            nb, path = _load_source(run, spec, jupyter, services)
            choice = jupyter.choose_kernel(spec.kernel_name, nb.metadata.get("kernelspec"))
            warnings = [choice.warning] if choice.warning else []
            language = (nb.metadata.get("kernelspec") or {}).get("language") or \
                (nb.metadata.get("language_info") or {}).get("name") or "python"
            if spec.parameters:
                warnings += inject_parameters(nb, spec.parameters, language=language)
            nbtools.prepare_for_run(
                nb, run_id=run["run_id"], input_path=spec.notebook or spec.notebook_s3,
                output_uri=run["output_uri"], parameters=spec.parameters, kernel_name=choice.name,
            )
            if warnings:
                nb.metadata.setdefault("studio_runner", {}).setdefault("warnings", []).extend(
                    w for w in warnings if w not in nb.metadata["studio_runner"].get("warnings", [])
                )
                for warning in warnings:
                    log.warning(warning)
            services.notebooks().write(run["output_uri"], nb)
            kernel.update(name=choice.name, path=path, warnings=warnings,
                          cells_total=len(nbtools.code_cells_to_run(nb)))
        if target.uses_kernel_gateway_apps:
            kernel.update(_start_classic_kernel(jupyter, kernel, spec))
            if not kernel.get("id"):
                return _kernel_pending(kernel, "waiting for the KernelGateway app", now, spec)
            session = jupyter.create_session(kernel["path"], kernel_id=kernel["id"])
        else:
            session = jupyter.create_session(kernel["path"], kernel_name=kernel["name"])
            kernel["id"] = session["kernel"]["id"]
        kernel["session_id"] = session["id"]
        kernel["client_session_id"] = new_client_session_id()

    state_now = jupyter.kernel_state(kernel["id"])
    if state_now in ("dead", "missing"):
        raise KernelDied(f"Kernel {kernel['name']!r} died while starting (state: {state_now})", kernel=kernel["name"])
    if not _kernel_answers(jupyter, kernel["id"]):
        return _kernel_pending(kernel, "kernel not answering kernel_info yet", now, spec)
    kernel.update(status="ready", wait_seconds=0)
    return kernel


def _kernel_answers(jupyter: JupyterClient, kernel_id: str, timeout: float = KERNEL_PROBE_SECONDS) -> bool:
    """True when the kernel answers a kernel_info_request (nbclient's ``wait_for_ready``).

    jupyter_server reports ``execution_state: starting`` until a client talks to the
    kernel, so the REST model alone cannot say whether it is ready. The probe uses its
    own WebSocket session id so it never touches the run's replay buffer.
    """
    from .protocol import kernel_info_request
    from .transport import ChannelClosed, KernelChannel

    ws = jupyter.channels(kernel_id, new_client_session_id())
    deadline = time.monotonic() + timeout
    try:
        with KernelChannel.open(ws.url, headers=ws.headers, timeout=timeout) as channel:
            request = kernel_info_request(session=new_client_session_id())
            channel.send(request)
            while (left := deadline - time.monotonic()) > 0:
                msg = channel.recv(left)
                if msg and msg.get("msg_type") == "kernel_info_reply" and \
                        msg.get("parent_header", {}).get("msg_id") == request["header"]["msg_id"]:
                    return True
    except ChannelClosed:
        return False
    return False


def _kernel_pending(kernel: dict[str, Any], detail: str, now: float, spec: RunSpec) -> dict[str, Any]:
    if now - kernel["started_at"] > spec.timeouts.start_seconds:
        raise KernelNotReady(
            f"Kernel {kernel.get('name')!r} was not ready after {spec.timeouts.start_seconds:g} s ({detail})",
            kernel=kernel.get("name"),
        )
    kernel.update(status="pending", detail=detail, wait_seconds=next_wait(kernel["attempt"], first=2.0, cap=30.0))
    kernel["attempt"] += 1
    return kernel


def _start_classic_kernel(jupyter: JupyterClient, kernel: dict[str, Any], spec: RunSpec) -> dict[str, Any]:
    """POST a kernel on Studio Classic without letting a slow KernelGateway start hold the Lambda.

    The POST blocks while the app starts. If it times out the server keeps starting the
    app and the kernel; the next call adopts the kernel that appeared since, rather than
    POSTing again and starting a second one.
    """
    update: dict[str, Any] = {}
    if "kernels_before" not in kernel:
        update["kernels_before"] = [k["id"] for k in jupyter.list_kernels()]
        update["apps_before"] = sorted(a.get("app_name") or a.get("AppName", "") for a in jupyter.list_studio_apps())
    before = set(kernel.get("kernels_before") or update.get("kernels_before", []))
    apps_before = set(kernel.get("apps_before") or update.get("apps_before", []))
    if kernel.get("posted"):
        for model in jupyter.list_kernels():
            if model["id"] not in before and model.get("name") == kernel["name"]:
                update["id"] = model["id"]
                break
    else:
        update["posted"] = True
        try:
            model = jupyter.create_kernel(kernel["name"], instance_type=spec.instance_type, timeout=KERNEL_POST_TIMEOUT_SECONDS)
        except JupyterHTTPError as exc:
            if not exc.facts.get("timeout"):
                raise
            return update
        update["id"] = model["id"]
        if model.get("app_name"):
            update["app_name"] = model["app_name"]
    if update.get("id") and not update.get("app_name"):
        for app in jupyter.list_studio_apps():
            if any(k == update["id"] for k in app.get("kernels", [])):
                update["app_name"] = app.get("app_name")
    if update.get("app_name"):
        update["app_created"] = update["app_name"] not in apps_before
    return update


# -- RunCells --------------------------------------------------------------------------

def run_cells(state: dict[str, Any], services: Services, *, remaining_seconds: float) -> dict[str, Any]:
    """Execute cells from the cursor until done or the time budget is spent."""
    from .executor import CellExecutor, Cursor
    from .transport import KernelChannel

    run, kernel = state["run"], state["kernel"]
    spec = RunSpec.from_dict(run["spec"])
    now = services.clock()
    _check_deadline(run, now)
    cursor = Cursor.from_dict(state.get("cursor") or {})
    jupyter = JupyterClient(services.target(run).login())
    store = services.notebooks()
    nb = store.read(run["output_uri"])
    saver = ThrottledSaver(store, run["output_uri"])

    budget = remaining_seconds - SAFETY_MARGIN_SECONDS
    if run.get("deadline"):
        budget = min(budget, run["deadline"] - now)
    deadline = time.monotonic() + max(budget, 1.0)

    def on_start(index: int, cell) -> None:
        nbtools.mark_cell_started(cell, datetime.now(timezone.utc))

    def on_end(index: int, cell, status: str) -> None:
        nbtools.mark_cell_finished(cell, status, datetime.now(timezone.utc))
        saver.save_if_due(nb)

    ws = jupyter.channels(kernel["id"], kernel["client_session_id"])
    try:
        channel = KernelChannel.open(ws.url, headers=ws.headers)
    except Exception as exc:
        if jupyter.kernel_state(kernel["id"]) in ("dead", "missing"):
            raise KernelDied(f"Kernel {kernel['name']!r} is gone; executed notebook: {run['output_uri']}") from None
        raise
    executor = CellExecutor(
        channel, nb, session=kernel["client_session_id"],
        cell_timeout=spec.timeouts.cell_seconds, allow_errors=spec.allow_errors,
        interrupt=lambda: jupyter.interrupt_kernel(kernel["id"]),
        kernel_state=lambda: jupyter.kernel_state(kernel["id"]),
        on_cell_start=on_start, on_cell_end=on_end,
        # A dropped socket is reopened with the same session_id, so jupyter_server replays what it buffered.
        reconnect=lambda: KernelChannel.open(ws.url, headers=ws.headers),
    )
    try:
        cursor = executor.run(cursor, deadline=deadline)
    except StudioRunnerError as exc:
        _record_failure(nb, exc, run)
        saver.flush(nb)
        raise type(exc)(f"{exc.message}; executed notebook: {run['output_uri']}", **exc.facts) from None
    finally:
        channel.close()
    if cursor.done:
        nbtools.finish_run(nb, "succeeded", datetime.now(timezone.utc), None)
    saver.flush(nb)
    # The cursor goes back into the next invocation as is: nothing but the cursor in it.
    return cursor.to_dict()


def _record_failure(nb, exc: StudioRunnerError, run: dict[str, Any]) -> None:
    facts = exc.facts
    index = facts.get("cell_index")
    if index is not None:
        nbtools.add_error_banner(nb, index, facts.get("ename", type(exc).__name__), facts.get("evalue", exc.message))
    nbtools.finish_run(nb, "failed", datetime.now(timezone.utc),
                       {"error": type(exc).__name__, "message": exc.message, **{k: v for k, v in facts.items() if isinstance(v, (str, int, float, type(None)))}})


# -- Cleanup ---------------------------------------------------------------------------

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


def release_resources(state: dict[str, Any], services: Services) -> CleanupReport:
    """Remove what this run started: its terminal, session and kernel, KernelGateway app, app/instance."""
    report = CleanupReport()
    run = state.get("run")
    if not run:
        return report
    spec = RunSpec.from_dict(run["spec"])
    kernel = state.get("kernel") or {}
    terminal = (state.get("commands") or {}).get("terminal")
    progress = TargetProgress.from_dict(state.get("target"))
    target = services.target(run)
    if not (progress.created or kernel.get("id") or kernel.get("posted") or terminal):
        return report
    other_kernels = 0
    try:
        jupyter = JupyterClient(target.login())
    except StudioRunnerError as exc:
        jupyter = None
        if kernel.get("id") or terminal:
            report.problems.append(f"could not log in to remove the kernel/terminal: {exc}")
    if jupyter is not None:
        if spec.write_back and kernel.get("path") and run.get("output_uri"):
            try:
                path = write_back_path(kernel["path"])
                jupyter.write_notebook(path, services.notebooks().read(run["output_uri"]))
                report.actions.append(f"wrote the executed notebook to {path} on the target")
            except StudioRunnerError as exc:
                report.problems.append(f"could not write the executed notebook back to the target: {exc}")
        try:
            if terminal and jupyter.delete_terminal(terminal):
                report.actions.append(f"deleted terminal {terminal}")
            if kernel.get("session_id") and jupyter.delete_session(kernel["session_id"]):
                report.actions.append("deleted session and its kernel")
            if kernel.get("id") and jupyter.delete_kernel(kernel["id"]):
                report.actions.append("shut down kernel")
            if kernel.get("app_name") and (kernel.get("app_created") or spec.cleanup_app == "always") and spec.cleanup_app != "never":
                if jupyter.delete_studio_app(kernel["app_name"]):
                    report.actions.append(f"deleted KernelGateway app {kernel['app_name']}")
            elif kernel.get("app_name"):
                report.kept.append(f"KernelGateway app {kernel['app_name']} (not started by this run)")
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


def cleanup(state: dict[str, Any], services: Services) -> dict[str, Any]:
    """Clean up on every path and decide the run's outcome (the execution's error and cause)."""
    run = state.get("run") or {}
    error_name, message = error_message(state.get("error"))
    cursor = state.get("cursor") or {}
    output_uri = run.get("output_uri")
    if error_name and output_uri and error_name not in ("PayloadInvalid", "TargetNotAllowed"):
        _mark_notebook_failed(services, output_uri, error_name, message)
    report = release_resources(state, services)
    for action in report.actions:
        log.info("cleanup: %s", action)
    now = services.clock()

    result = {
        "run_id": run.get("run_id"),
        "status": "FAILED" if error_name else "SUCCEEDED",
        "target": run.get("target"),
        "output_notebook": output_uri,
        "cells_total": (state.get("kernel") or {}).get("cells_total", 0),
        "cells_executed": cursor.get("cells_executed", 0),
        "cells_failed": cursor.get("cells_failed", 0),
        "duration_seconds": round(now - run["started_at"], 3) if run.get("started_at") else None,
        "cleanup": {"actions": report.actions, "kept": report.kept},
    }
    if cursor.get("exit"):
        result["exit"] = cursor["exit"]
    if (state.get("commands") or {}).get("results"):
        result["commands"] = state["commands"]["results"]
    warnings = (state.get("kernel") or {}).get("warnings")
    if warnings:
        result["warnings"] = warnings

    if report.problems:
        problems = "; ".join(report.problems)
        if not error_name:
            error_name, message = "CleanupFailed", f"The run succeeded but cleanup failed: {problems}"
        else:
            message = f"{message} (cleanup also failed: {problems})"
    if error_name:
        if output_uri and output_uri not in message:
            message = f"{message}; output notebook: {output_uri}"
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

