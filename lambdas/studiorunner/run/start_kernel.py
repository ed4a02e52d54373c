"""StartKernel: load the notebook, save the pending output, start a kernel and wait until it answers.

The run's kernel is always its own (REAL-STUDIO K1): ``POST api/sessions`` on a path that
already has a session answers *that* session, so a session on the notebook's own path
would hand the run the kernel of a person who has the notebook open, and Cleanup would
then shut it down. The run's session path is therefore a name only this run uses, beside
the notebook (:func:`run_session_path`): jupyter_server starts a session's kernel in the
folder of its path, so relative paths in the notebook behave as in Jupyter. The file
need not exist (sessions never read it), and the name carries the run id so Cleanup can
recognise what this run created.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from studiorunner import catalog
from studiorunner import notebook as nbtools
from studiorunner.errors import JupyterHTTPError, KernelDied, KernelNotReady, RunNotHeld
from studiorunner.execution import journal
from studiorunner.jupyter.connection import ChannelClosed, KernelChannel
from studiorunner.jupyter.kernel_protocol import kernel_info_request, new_session_id
from studiorunner.jupyter.rest import DEAD_STATES, JupyterClient
from studiorunner.parameters import inject_parameters
from studiorunner.run.context import StepContext
from studiorunner.run.services import KERNEL_PROBE_SECONDS, UPLOAD_DIR
from studiorunner.run.state import KernelProgress, present
from studiorunner.translators import notebook_language

log = logging.getLogger(__name__)

#: The run's session file names start with this (hidden, so file browsers do not list them).
SESSION_MARKER = ".studio-runner-"


def run_session_path(notebook_path: str, run_id: str, cwd: str | None = None) -> str:
    """The run's own session path: ``<notebook folder>/.studio-runner-<run id>-<name>.ipynb``
    (``<cwd>/…`` when the payload names the kernel's working folder: papermill's ``--cwd``)."""
    folder = cwd if cwd is not None else notebook_path.rpartition("/")[0]
    name = f"{SESSION_MARKER}{run_id}-{nbtools.notebook_name(notebook_path)}.ipynb"
    return f"{folder}/{name}" if folder else name


def _load_source(ctx: StepContext, jupyter: JupyterClient):
    """The notebook to run and its path in the target's file tree (uploaded if from S3)."""
    spec = ctx.spec
    if spec.notebook:
        return jupyter.read_notebook(spec.notebook), spec.notebook
    source = present(spec.notebook_s3, "run.spec.notebook_s3")  # Prepare: one of notebook, notebook_s3
    nb = ctx.services.notebooks().read(source)
    path = f"{UPLOAD_DIR}/{ctx.run.run_id}/{source.rsplit('/', 1)[-1]}"
    jupyter.write_notebook(path, nb)
    return nb, path


def _prepare_notebook(ctx: StepContext, jupyter: JupyterClient, kernel: KernelProgress) -> None:
    """Load the notebook, choose its kernel, inject parameters and save the pending output."""
    run, spec = ctx.run, ctx.spec
    output_uri = present(run.output_uri, "run.output_uri")
    nb, path = _load_source(ctx, jupyter)
    choice = jupyter.choose_kernel(spec.kernel_name, nb.metadata.get("kernelspec"))
    warnings = [choice.warning] if choice.warning else []
    if spec.parameters:
        # papermill's choice of translator (kernel name, then the notebook's language); the
        # kernelspec's language when the notebook names none. PayloadInvalid before any kernel starts.
        warnings += inject_parameters(nb, spec.parameters, kernel_name=spec.kernel_name,
                                      language=spec.kernel_language or notebook_language(nb.metadata) or choice.language)
    nbtools.prepare_for_run(
        nb, run_id=run.run_id, input_path=spec.notebook or spec.notebook_s3 or "",
        output_uri=output_uri, parameters=spec.parameters, kernel_name=choice.name,
    )
    if warnings:
        noted = nb.metadata.setdefault("studio_runner", {}).setdefault("warnings", [])
        noted.extend(w for w in warnings if w not in noted)
        for warning in warnings:
            log.warning(warning)
    ctx.services.notebooks().write(output_uri, nb)
    kernel.name, kernel.path, kernel.warnings = choice.name, path, _bounded(warnings)
    kernel.cells_total = len(nbtools.code_cells_to_run(nb))
    kernel.session_path = run_session_path(path, run.run_id, spec.cwd)


#: Warnings kept in the state (and the result); the notebook's metadata has them all. One
#: per undefined parameter could otherwise push a state past Step Functions' 256 KiB.
MAX_WARNINGS_IN_STATE = 20


def _bounded(warnings: list[str]) -> list[str]:
    if len(warnings) <= MAX_WARNINGS_IN_STATE:
        return warnings
    kept = [w[:300] for w in warnings[:MAX_WARNINGS_IN_STATE]]
    more = len(warnings) - len(kept)
    return kept + [f"… and {more} more warning(s): all are in the output notebook's metadata.studio_runner.warnings"]


#: A kind's kernel hook (``catalog.TargetKind.kernel_start``): create the run's kernel and its
#: session and return the session's model (``POST api/sessions``' answer), or say what it is
#: still waiting for (a str: the state machine waits and StartKernel calls it again).
KernelStart = Callable[[JupyterClient, KernelProgress, StepContext], "dict[str, Any] | str"]


def start_in_session(jupyter: JupyterClient, kernel: KernelProgress, ctx: StepContext) -> dict[str, Any] | str:
    """The ordinary way: one ``POST api/sessions`` on the run's own session path starts its kernel."""
    return jupyter.create_session(present(kernel.session_path, "kernel.session_path"), kernel_name=kernel.name)


def kernel_start(target_type: str) -> KernelStart:
    """The kernel hook of a kind of target (the catalog names it), else :func:`start_in_session`."""
    dotted = catalog.kind(target_type).kernel_start
    return catalog.resolve(dotted) if dotted else start_in_session


def start_kernel(ctx: StepContext) -> KernelProgress:
    """First call: load the notebook, save the pending output, start a kernel. Later calls: wait for it."""
    kernel = ctx.state.kernel
    target = ctx.target()
    jupyter = JupyterClient(target.login())

    if ctx.run.resume and not kernel.id:
        return _adopt(jupyter, ctx)
    if not kernel.id:
        kernel.begin(ctx.now)
        if not kernel.name:
            _prepare_notebook(ctx, jupyter, kernel)
        session = kernel_start(ctx.run.target_type)(jupyter, kernel, ctx)
        if isinstance(session, str):
            return _pending(kernel, session, ctx)
        kernel.id = session["kernel"]["id"]
        kernel.session_id = session["id"]
        kernel.client_session_id = new_session_id()
        # Return the ids into the state before anything else can fail: a Lambda that raises
        # returns no state, and Cleanup could not remove what it does not know. The next
        # invocation probes readiness.
        return _pending(kernel, "kernel starting", ctx, first_wait=1.0)

    state_now = jupyter.kernel_state(kernel.id)
    if state_now in DEAD_STATES:
        # Remove its session now: a kernel that died at start leaves the session behind.
        try:
            if kernel.session_id:
                jupyter.delete_session(kernel.session_id)
        except JupyterHTTPError as exc:
            log.warning("could not delete the session of the dead kernel (Cleanup tries again): %s", exc)
        raise KernelDied(f"Kernel {kernel.name!r} died while starting (state: {state_now})", kernel=kernel.name)
    reply = _kernel_answers(jupyter, kernel.id)
    if reply is None:
        return _pending(kernel, "kernel not answering kernel_info yet", ctx)
    kernel.process = _process(reply)
    if kernel.journal is None and kernel.session_path and kernel.client_session_id and _runs_python(reply):
        kernel.journal = journal.start(jupyter, kernel.id, run_id=ctx.run.run_id,
                                       session_path=kernel.session_path, run_session=kernel.client_session_id)
    kernel.ready()
    return kernel


def _process(reply: dict[str, Any] | None) -> str | None:
    """The kernel process's session id, from its kernel_info_reply's header (a restart changes it)."""
    return str((reply.get("header") or {}).get("session") or "unknown") if reply is not None else None


def _runs_python(reply: dict[str, Any]) -> bool:
    """Whether the kernel runs Python (the journal is Python code for ipykernel: an R or bash
    kernel must not be sent it; bash would run its lines as commands)."""
    kernel_info = reply.get("content") or {}
    language = (kernel_info.get("language_info") or {}).get("name") or kernel_info.get("language") or ""
    return str(language).lower().startswith("python")


def _adopt(jupyter: JupyterClient, ctx: StepContext) -> KernelProgress:
    """A resume: the held run's kernel, if it is still alive and still that run's own."""
    resume = ctx.run.resume or {}
    held = KernelProgress.from_dict(resume.get("kernel"))
    source = resume.get("source_run")
    state_now = jupyter.kernel_state(held.id) if held.id else "missing"
    if held.id is None or state_now in DEAD_STATES:
        raise RunNotHeld(f"the kernel held for run {source} is gone ({state_now}): rerun it instead "
                         f"(studio-runner rerun {source})", run=source, kernel_state=state_now)
    sessions = [s for s in jupyter.list_sessions() if s.get("id") == held.session_id]
    if not sessions or (sessions[0].get("kernel") or {}).get("id") != held.id \
            or sessions[0].get("path") != held.session_path:
        raise RunNotHeld(f"the kernel held for run {source} is no longer in that run's session", run=source)
    process = _process(_kernel_answers(jupyter, present(held.id, "the held kernel's id")))
    if held.process and process != held.process:
        raise RunNotHeld(f"the kernel held for run {source} was restarted"
                         f"{' (it did not answer)' if process is None else ''}: the state of its cells is gone; "
                         f"rerun it instead (studio-runner rerun {source})", run=source)
    held.cells_total = int(resume.get("cells_to_run") or 0)
    held.warnings = []
    held.ready()
    return held


def _kernel_answers(jupyter: JupyterClient, kernel_id: str, timeout: float = KERNEL_PROBE_SECONDS) -> dict[str, Any] | None:
    """The kernel_info_reply (the whole message) when the kernel answers one (nbclient's
    ``wait_for_ready``), else None.

    jupyter_server reports ``execution_state: starting`` until a client talks to the
    kernel, so the REST model alone cannot say whether it is ready. The probe uses its
    own WebSocket session id so it never touches the run's replay buffer.
    """

    ws = jupyter.channels(kernel_id, new_session_id())
    deadline = time.monotonic() + timeout
    try:
        with KernelChannel.open(ws.url, headers=ws.headers, timeout=timeout) as channel:
            request = kernel_info_request(session=new_session_id())
            channel.send(request)
            while (left := deadline - time.monotonic()) > 0:
                msg = channel.recv(left)
                if msg and msg.get("msg_type") == "kernel_info_reply" and \
                        msg.get("parent_header", {}).get("msg_id") == request["header"]["msg_id"]:
                    return msg
    except ChannelClosed:
        return None
    return None


def _pending(kernel: KernelProgress, detail: str, ctx: StepContext, *, first_wait: float = 2.0) -> KernelProgress:
    start_seconds = ctx.spec.timeouts.start_seconds
    if kernel.overdue(ctx.now, start_seconds):
        raise KernelNotReady(
            f"Kernel {kernel.name!r} was not ready after {start_seconds:g} s ({detail})",
            kernel=kernel.name,
        )
    kernel.wait(detail, first=first_wait, cap=30.0)
    return kernel
