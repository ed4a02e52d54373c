"""The kernel-side guard that makes pipelined cells keep nbclient's stop-on-error semantics.

Pipelining (several execute_requests outstanding) relies on ipykernel's ``stop_on_error``:
when a cell fails, the kernel aborts the requests already in its queue. A request still in
transit (behind Studio's proxy and TLS) reaches the queue after the abort ended and would
run after the failure — user code with side effects that nbclient, sending one cell at a
time, never runs (seen in e2e: 9 runs of 10 with a cell behind Studio-like latency).

So every request the run sends carries, in its metadata, how many failed cells the runner
had seen when it sent it (``studio_runner_errors``). At kernel start the run installs this
guard (one silent request, with the journal: :mod:`.journal`), which counts the run's
failed cells as ipykernel's own abort does (``_abort_queues``: a non-silent error with
``stop_on_error``) and answers ``aborted`` — exactly as ipykernel aborts a queued request —
to any of the run's requests sent before the runner knew of the latest failure. The
runner's own count rides in the cursor; an aborted reply carries the kernel's count, so a
failure whose reply was lost cannot abort the run's requests for ever.

The same request has IPython write the kernel's input history to disk every 100 cells rather
than after each (``HistoryManager.db_cache_size``; measured in bench/README.md).

Only the run's requests (its client session) are guarded; a person's requests on the same
kernel run as they always do. Python kernels (ipykernel 6 and 7) only: elsewhere the run
sends one cell at a time, as nbclient does.
"""

from __future__ import annotations

import time
from typing import Any

from studiorunner.jupyter.kernel_protocol import execute_request, parent_msg_id

#: The request metadata key (and the aborted reply's): failed cells seen by the runner / the kernel.
ERRORS_KEY = "studio_runner_errors"

# Runs inside the kernel; names start with "__studio_runner" and are deleted after use.
_GUARD = r'''
def __studio_runner_guard(run_session, key):
    import inspect
    kernel = get_ipython().kernel
    if getattr(kernel, "_studio_runner_guard", None) == run_session:
        return
    execute, abort_queues = kernel.shell_handlers["execute_request"], kernel._abort_queues
    state = {"errors": 0, "ours": False}

    def counting_abort_queues(*args, **kwargs):
        if state["ours"]:
            state["errors"] += 1
        return abort_queues(*args, **kwargs)

    async def guarded_execute(stream, ident, parent):
        ours = (parent.get("header") or {}).get("session") == run_session
        seen = (parent.get("metadata") or {}).get(key)
        if ours and isinstance(seen, int) and seen < state["errors"]:
            status = {"status": "aborted"}
            kernel.session.send(stream, "execute_reply", status, parent, ident=ident,
                                metadata={**status, key: state["errors"]})
            return
        state["ours"] = ours
        try:
            result = execute(stream, ident, parent)
            if inspect.isawaitable(result):
                await result
        finally:
            state["ours"] = False

    kernel._abort_queues = counting_abort_queues
    kernel.shell_handlers["execute_request"] = guarded_execute
    kernel._studio_runner_guard = run_session
    # IPython's own knob: write the input history to history.sqlite every 100 cells (and at
    # shutdown) instead of after each one (~1 ms of kernel CPU per cell; nbclient and papermill
    # start their kernels with no history file at all). The history itself is unchanged.
    history = getattr(get_ipython(), "history_manager", None)
    if history is not None and history.db_cache_size <= 1:
        history.db_cache_size = 100

__studio_runner_guard(__studio_runner_session, __studio_runner_key)
del __studio_runner_guard, __studio_runner_key
'''


def setup_code(run_session: str) -> str:
    """The code that installs the guard for the requests of ``run_session`` (Python)."""
    return f"__studio_runner_session = {run_session!r}\n__studio_runner_key = {ERRORS_KEY!r}\n" + _GUARD \
        + "del __studio_runner_session\n"


def install(channel: Any, *, run_session: str, timeout: float = 10.0) -> bool:
    """Install the guard over an open kernel channel (one silent request); True when it is in.

    StartKernel installs it with the journal; this is for callers without one (tests, bench).
    """
    request = execute_request(setup_code(run_session), session=run_session + "-guard", stop_on_error=False,
                              silent=True, store_history=False)
    channel.send(request)
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        msg = channel.recv(left)
        if msg and msg.get("msg_type") == "execute_reply" and parent_msg_id(msg) == request["msg_id"]:
            return (msg.get("content") or {}).get("status") == "ok"
    return False
