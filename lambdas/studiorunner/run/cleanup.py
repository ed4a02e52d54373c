"""Cleanup: remove what this run started, on every path, and decide the run's outcome."""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from nbformat import NotebookNode

from studiorunner import notebook as nbtools
from studiorunner.errors import JupyterUnavailable, NotebookNotFound, StudioRunnerError, TargetNotReady
from studiorunner.execution import journal
from studiorunner.jupyter.http import JupyterHTTP
from studiorunner.jupyter.rest import JupyterClient
from studiorunner.recovery import HELD_ON, next_attempt
from studiorunner.report import html_uri
from studiorunner.report.render import PageRequest
from studiorunner.run import hold as hold_module
from studiorunner.run.services import UPLOAD_DIR, Services
from studiorunner.run.slots import others_using, release_slot
from studiorunner.run.start_kernel import SESSION_MARKER
from studiorunner.run.state import CleanupActions, KernelProgress, Outcome, RunResult, RunState
from studiorunner.targets import ReleaseReport, Target

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How long Cleanup keeps trying to log in while the target answers a loading page or a
#: 502/503/504 (its Lambda has 5 minutes; the rest of its work takes seconds).
LOGIN_SECONDS = 90.0
LOGIN_BACKOFF_FIRST, LOGIN_BACKOFF_CAP = 1.0, 15.0  # 1, 2, 4, 8, 15, 15, … seconds
_sleep = time.sleep  # tests replace it

#: Errors raised before the run could have written its output notebook.
_BEFORE_OUTPUT = ("PayloadInvalid", "TargetNotAllowed")


@dataclass
class CleanupReport(ReleaseReport):
    """What Cleanup did (``actions``), left on purpose (``kept``) and could not do (``problems``)."""

    problems: list[str] = field(default_factory=list)
    write_back_problem: str | None = None
    tree_notebook: NotebookNode | None = None  # the run's notebook as written into the tree (S3 refused it)

    def attempt(self, what: str, fn: Callable[[], T]) -> T | None:
        """Run one cleanup action; a failure is recorded (``could not <what>: …``), never raised,
        so one failed action never skips the next."""
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 — Cleanup must never raise
            self.problems.append(f"could not {what}: {describe(exc)}")
            return None


def describe(exc: BaseException) -> str:
    """A short, secret-free account of ``exc`` for a cause or a report.

    Our errors and botocore's are written to be shown (no token, cookie or presigned URL);
    anything else (requests, urllib3, sockets) may print a URL with its query string, so only
    its kind is kept.
    """
    if isinstance(exc, (StudioRunnerError, BotoCoreError, ClientError)):
        return f"{type(exc).__name__}: {exc}"[:500]
    return type(exc).__name__


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


def login_patiently(target: Target, budget_seconds: float) -> JupyterHTTP:
    """``target.login()``, tried again with backoff for up to ``budget_seconds`` while the
    server is not answering Jupyter yet: Studio's proxy answers a loading or sign-in page
    (HTML, 200) or a 502/503/504 for a while when an app settles (REAL-STUDIO A11). Other
    steps ride such a moment out through the state machine's Wait loop or Retry; Cleanup,
    which must never fail a run whose cells all succeeded for it, waits here, within its
    Lambda's time. The last error is raised once the budget is spent."""
    started, attempt = time.monotonic(), 0
    while True:
        try:
            return target.login()
        except (TargetNotReady, JupyterUnavailable):
            delay = min(LOGIN_BACKOFF_CAP, LOGIN_BACKOFF_FIRST * 2**attempt)
            if time.monotonic() - started + delay > budget_seconds:
                raise
            log.info("cleanup: the target's Jupyter server is not answering yet; trying again in %.1f s", delay)
            _sleep(delay)
            attempt += 1


def release_resources(state: RunState, services: Services, *, output_exists: bool = True,
                      login_seconds: float = LOGIN_SECONDS) -> CleanupReport:
    """Remove what this run started: its session and kernel, KernelGateway app, app/instance.

    Only what the state names as the run's own: ids it recorded, or its own session path
    (which carries the run id) when a session was created but its id never reached the
    state. Never anything found by the notebook's path, which a person may have open.
    Never raises: what could not be done is in ``report.problems``.
    """
    report = CleanupReport()
    run, kernel, progress = state.run, state.kernel, state.target
    if run is None:
        return report
    spec = run.spec
    target = report.attempt("reach the target's configuration", lambda: services.target(run.target))
    if target is None:
        return report
    # Once the target was ready, StartKernel may have created a session it never recorded.
    maybe_session = run.has_notebook and progress.status == "ready"
    if not (progress.created or kernel.started_anything or maybe_session):
        return report
    other_kernels = 0
    jupyter = None
    try:
        jupyter = JupyterClient(login_patiently(target, login_seconds))
    except Exception as exc:  # noqa: BLE001
        facts = getattr(exc, "facts", {})
        if facts.get("gone"):  # the app stopped (idle shutdown): its kernels went with it
            report.kept.append(f"nothing to remove in the target's Jupyter server (its app is {facts.get('status')})")
        elif kernel.started_anything:
            report.problems.append(f"could not log in to remove the kernel: {describe(exc)}")
    if jupyter is not None:
        client: JupyterClient = jupyter  # for the lambdas below
        if not output_exists and kernel.path:
            # RunCells writes the notebook into the tree when S3 refuses it (OutputUnwritable):
            # that copy, if it is this run's, has the counts the failed step could not return.
            report.tree_notebook = _own_tree_copy(jupyter, write_back_path(kernel.path), run.run_id)
        if spec.write_back and kernel.path and run.output_uri and output_exists:
            path = write_back_path(kernel.path)
            try:
                jupyter.write_notebook(path, services.notebooks().read(run.output_uri))
                report.actions.append(f"wrote the executed notebook to {path} on the target")
            except Exception as exc:  # noqa: BLE001 — a failed write-back is not a cleanup failure
                report.write_back_problem = f"could not write the executed notebook back to {path}: {describe(exc)}"
        for session_id in report.attempt("list the run's sessions", lambda: _own_sessions(client, state)) or []:
            if report.attempt("delete the run's session", functools.partial(client.delete_session, session_id)):
                report.actions.append("deleted session and its kernel")
        kernel_id = kernel.id
        if kernel_id and report.attempt("shut down the run's kernel", lambda: client.delete_kernel(kernel_id)):
            report.actions.append("shut down kernel")
        if kernel.journal:  # the run's own file (execution/journal.py), once its kernel is gone

            left = journal.remove(jupyter, kernel.journal)
            if left:
                report.kept.append(left)
            else:
                report.actions.append("removed the run's journal")
        upload = uploaded_notebook_path(state)
        if upload:
            left = remove_own_file(jupyter, upload)
            if left:
                report.kept.append(left)
            elif left is None:
                report.actions.append(f"removed the uploaded notebook {upload}")
        app_name = kernel.app_name
        if app_name and (kernel.app_created or spec.cleanup_app == "always") and spec.cleanup_app != "never":
            if report.attempt(f"delete KernelGateway app {app_name}", lambda: jupyter.delete_studio_app(app_name)):
                report.actions.append(f"deleted KernelGateway app {app_name}")
        elif app_name:
            report.kept.append(f"KernelGateway app {app_name} (not started by this run)")
        if spec.cleanup_app != "never":  # also when another run started the app: see targets.studio
            kernels = report.attempt("list the kernels left on the app", jupyter.list_kernels)
            if kernels is None:
                report.kept.append("the target's app (could not tell whether other kernels run on it)")
                return report
            # this run's own kernel, if its removal failed, is no reason to keep the app
            other_kernels = len([k for k in kernels if k.get("id") != kernel.id])
    if jupyter is None and not progress.created and spec.cleanup_app == "if_created":
        # Kernels could not be counted: never stop an app another run started (its kernel may be on it).
        report.kept.append("the target's app (not started by this run)")
        return report
    # Runs holding or waiting for a slot on the target will use its app next: the last run
    # out is the last of them (issue 21.1), not only the last with a kernel on it.
    holding, waiting = others_using(run.target, state.slot.owner if state.slot else None, services) \
        if spec.cleanup_app == "if_created" else (0, 0)
    released = report.attempt("stop the target's app", lambda: target.release(
        progress, spec.cleanup_app, other_kernels=other_kernels, other_runs=holding + waiting))
    if released is not None:
        report.add(released)
    return report


def _own_tree_copy(jupyter: JupyterClient, path: str, run_id: str) -> NotebookNode | None:
    try:
        nb = jupyter.read_notebook(path)
    except Exception:  # noqa: BLE001 - none there (the usual case), or unreadable: the counts stay as they are
        return None
    return nb if nb.metadata.get("studio_runner", {}).get("run_id") == run_id else None


def _counts(nb: NotebookNode) -> tuple[int, int]:
    """(cells executed, cells failed) as the executed notebook records them."""
    executed = int(nb.metadata.get("studio_runner", {}).get("cells_executed") or 0)
    failed = sum(1 for cell in nb.cells if cell.get("cell_type") == "code"
                 and cell.get("metadata", {}).get("papermill", {}).get("status") == "failed")
    return executed, failed


def uploaded_notebook_path(state: RunState) -> str | None:
    """Where StartKernel put a ``notebook_s3`` notebook in the target's tree (the run's own
    folder, ``studio-runner/uploads/<run id>/``), whether or not its path reached the state."""
    run = state.run
    if run is None or not run.spec.notebook_s3:
        return None
    return f"{UPLOAD_DIR}/{run.run_id}/{run.spec.notebook_s3.rsplit('/', 1)[-1]}"


def remove_own_file(jupyter: JupyterClient, path: str) -> str | None:
    """Delete a file the run wrote in the person's tree (for good: see ``delete_file``), then
    its folders up to ``studio-runner/`` while they hold nothing else (another run's files, a
    write-back notebook stay). None when done, "" when there was nothing to remove, else a
    note of what is left."""
    try:
        if not jupyter.delete_file(path):
            return ""
    except Exception as exc:  # noqa: BLE001 - a file left behind bills nothing: report, never raise
        return f"{path} ({describe(exc)})"
    jupyter.delete_empty_folders(path.rpartition("/")[0])
    return None


def _own_sessions(jupyter: JupyterClient, state: RunState) -> list[str]:
    """The ids of this run's sessions: the one it recorded, else any on its own session path."""
    kernel = state.kernel
    if kernel.session_id:
        return [kernel.session_id]
    if kernel.session_path:
        return [s["id"] for s in jupyter.list_sessions() if s.get("path") == kernel.session_path]
    # StartKernel may have created a session whose id never reached the state (it crashed
    # mid-call, or the execution was aborted): its name carries the run id.
    marker = f"{SESSION_MARKER}{state.run.run_id}-" if state.run else None
    if not marker:
        return []
    return [s["id"] for s in jupyter.list_sessions() if str(s.get("path", "")).rpartition("/")[2].startswith(marker)]


def cleanup(raw_state: dict[str, Any], services: Services) -> Outcome:
    """Clean up on every path and decide the run's outcome (the execution's error and cause).

    Never raises: an execution whose Cleanup crashed would lose its first error and say
    nothing of what may still be running.
    """
    try:
        return _cleanup(raw_state, services)
    except Exception as exc:  # noqa: BLE001
        log.error("cleanup could not finish: %s", describe(exc))
        raw_run = raw_state.get("run")
        run: dict[str, Any] = raw_run if isinstance(raw_run, dict) else {}
        error_name, message = error_message(raw_state.get("error"))
        note = f"cleanup could not finish ({describe(exc)}): something this run started may still be running"
        message = f"{message} ({note})" if error_name else f"The run's cleanup failed: {note}"
        return Outcome(status="FAILED", error=error_name or "CleanupFailed", cause=message,
                       result=RunResult(run_id=run.get("run_id"), status="FAILED", target=run.get("target"),
                                        output_notebook=None, cleanup=CleanupActions(problems=[note])))


def _cleanup(raw_state: dict[str, Any], services: Services) -> Outcome:
    state = RunState.from_dict(raw_state)
    run = state.run
    error_name, message = error_message(state.error)
    cursor = state.cursor_summary
    output_uri = run.output_uri if run else None
    output_exists, nb = False, None
    if output_uri and error_name not in _BEFORE_OUTPUT:
        output_exists, nb = _finish_notebook(services, output_uri, error_name, message)
    if not output_exists:
        output_uri = None  # never point a person at a notebook that was never written
    if run and run.resume and not state.kernel.id:
        # A resume that failed before StartKernel adopted the held kernel: Prepare claimed it
        # (the held run will not release it), so it is this run's to remove.
        state.kernel = KernelProgress.from_dict(run.resume.get("kernel"))
    hold = _hold(state, services, error_name, output_exists)
    if hold is not None:  # kept for a resume: CheckHold releases it when the hold ends
        report = CleanupReport(kept=[f"the run's kernel, its session and app, held until {hold['until_text']} "
                                     f"for `{hold['resume']}`"])
    else:
        report = release_resources(state, services, output_exists=output_exists)
        slot = release_slot(raw_state, services)  # after the app is gone: the next run may start it
        if slot:
            report.actions.append(slot)
    html_uri = html_problem = None
    if output_uri and run and "html" in run.spec.output_formats:
        # After the notebook is final (a failed run's page shows the error too) and after the
        # run's resources are released (rendering a big notebook must not delay that).
        html_uri, html_problem = _write_html(services, output_uri, report=run.spec.html_report)
    for action in report.actions:
        log.info("cleanup: %s", action)
    for problem in report.problems:
        log.warning("cleanup: %s", problem)
    now = services.clock()
    executed, failed = cursor.cells_executed, cursor.cells_failed
    if report.tree_notebook is not None:
        executed, failed = max((executed, failed), _counts(report.tree_notebook))

    warnings = list(state.kernel.warnings)
    if report.write_back_problem:
        warnings.append(report.write_back_problem)
    if html_problem:
        warnings.append(html_problem)
    result = RunResult(
        run_id=run.run_id if run else None,
        status="FAILED" if error_name else "SUCCEEDED",
        target=run.target if run else None,
        output_notebook=output_uri,
        output_html=html_uri,
        cells_total=state.kernel.cells_total,
        cells_executed=executed,
        cells_failed=failed,
        duration_seconds=round(now - run.started_at, 3) if run and run.started_at else None,
        cleanup=CleanupActions(actions=report.actions, kept=report.kept, problems=report.problems),
        exit=cursor.exit,
        commands=state.commands.results if state.commands else None,
        warnings=warnings,
    )

    if report.problems:
        problems = "; ".join(report.problems)
        if not error_name:
            error_name, message = "CleanupFailed", f"The run succeeded but cleanup failed: {problems}"
        else:
            message = f"{message} (cleanup also failed: {problems})"
    if report.write_back_problem:
        if not error_name:
            error_name = "WriteBackFailed"
            message = (f"Every cell ran, but {report.write_back_problem} "
                       f"(nothing is left running; the executed notebook is in S3)")
        else:
            message = f"{message} (and {report.write_back_problem})"
    if error_name:
        if output_uri and output_uri not in message:
            message = f"{message}; output notebook: {output_uri}"
        log_uri = run.commands_log_uri if run and state.commands is None else None
        if log_uri and error_name.startswith("Command") and log_uri not in message:
            message = f"{message}; command log: {log_uri}"
        result.status = "FAILED"
        outcome = Outcome(status="FAILED", error=error_name, cause=message, result=result)
        retry = next_attempt(run.run_id, run.spec.recovery, error_name) if run and hold is None else None
        if hold is not None:  # the state machine keeps it (CheckHold, WaitWhileHeld)
            outcome.cause = (f"{message}; its kernel is held until {hold['until_text']}: fix the cell and "
                             f"`{hold['resume']} --notebook FIXED.ipynb`")
            outcome.hold = hold
            result.held_until = hold["until_text"]
        if retry:  # the state machine starts it (WaitToRetry, StartAttempt)
            outcome.cause = f"{message}; {retry.describe()}"
            outcome.retry = retry.to_dict()
            result.next_attempt = retry.name
        return outcome
    return Outcome(status="SUCCEEDED", result=result)


def _hold(state: RunState, services: Services, error_name: str, output_exists: bool) -> dict[str, Any] | None:
    """Keep the failed run's kernel for a resume (``on_failure.hold_kernel_seconds``): the
    outcome's ``hold``, or None to clean up as always (also when the hold cannot be recorded)."""
    run = state.run
    if (run is None or not run.spec.recovery.hold_kernel_seconds or error_name not in HELD_ON
            or not state.kernel.id or not output_exists):
        return None
    try:
        return hold_module.keep(state, services, services.clock())
    except Exception as exc:  # noqa: BLE001 - no record, no resume: clean up as any run
        log.warning("could not hold the run's kernel: %s", describe(exc))
        return None


def _finish_notebook(services: Services, uri: str, error_name: str,
                     message: str) -> tuple[bool, NotebookNode | None]:
    """(whether the output notebook exists, the notebook as finished if it could be read);
    a step other than RunCells failed: say so in it."""
    try:
        nb = services.notebooks().read(uri)
    except NotebookNotFound:
        return False, None
    except Exception as exc:  # noqa: BLE001
        log.warning("could not read the output notebook: %s", describe(exc))
        return True, None  # it may well exist: still name it
    if not error_name:
        return True, nb
    meta = nb.metadata.get("studio_runner", {})
    if meta.get("status") == "failed":
        return True, nb
    nbtools.finish_run(nb, "failed", datetime.now(UTC), {"error": error_name, "message": message})
    try:
        services.notebooks().write(uri, nb)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not mark the output notebook failed: %s", describe(exc))
    return True, nb


def _write_html(services: Services, notebook_uri: str, *, report: bool) -> tuple[str | None, str | None]:
    """Have the executed notebook's page rendered beside it (``output_formats: ["html"]``):
    (its URI, None), or (None, why not) — a warning in the result, never a cleanup failure:
    the notebook, the run's record, is already written. The rendering itself is nbconvert's,
    in the RenderPage Lambda (studiorunner/report/render.py)."""

    uri = html_uri(notebook_uri)
    try:
        services.pages()(PageRequest(notebook_uri=notebook_uri, html_uri=uri, report=report))
    except Exception as exc:  # noqa: BLE001
        log.warning("could not render the notebook as HTML: %s", describe(exc))
        return None, f"could not render the executed notebook as HTML to {uri}: {describe(exc)}"
    log.info("cleanup: wrote the HTML rendering to %s", uri)
    return uri, None
