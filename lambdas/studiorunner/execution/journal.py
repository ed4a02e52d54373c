"""The run's journal: the kernel's own record of what it sent to the run's requests.

jupyter_server replays a kernel's buffered messages only to a WebSocket that comes back
with the same ``session_id`` query parameter. Whether Studio's proxy passes it on is not
known (REAL-STUDIO K3); without it a cell that outlives one RunCells invocation would lose
what it printed while no runner was connected. So at kernel start the run installs, with
one silent execute_request (``store_history=False``: nothing in the user's history or
namespace), a wrapper around the kernel's ``Session.send`` that appends each message sent
in reply to the run's own requests (their ``parent_header.session`` is the run's client
session) to a JSON-lines file in the run's folder of the target's tree. The wrapper writes
the line and sends the message under one lock, so the journal's order is the order in
which the kernel's IOPub thread puts messages on the wire (the order a client receives
them), and a message is in the journal before anyone can receive it.

The same request installs :mod:`.guard` (a run with a journal pipelines its cells).

After a reconnect that got no replay, the executor reads the journal back through the
contents API and applies what lies after the last message it received (de-duplicated
against what it did receive): nothing twice, in order (:func:`recoverable`). A journal
past :data:`JOURNAL_LIMIT_BYTES` stops with an ``overflow`` line; what lies beyond it
cannot be recovered and is marked in the cell. Cleanup removes the file.
"""

from __future__ import annotations

import json
import logging
import posixpath
import time
from typing import Any

from studiorunner.execution import guard
from studiorunner.jupyter.kernel_protocol import execute_request, new_session_id, parent_msg_id

logger = logging.getLogger(__name__)

#: Where a run keeps its own files in the target's tree (not hidden: jupyter_server's
#: contents API refuses hidden paths by default).
RUNS_DIR = "studio-runner/runs"
JOURNAL_NAME = "journal.jsonl"
#: Beyond this the kernel stops journaling (a cell printing gigabytes must not fill the disk).
JOURNAL_LIMIT_BYTES = 64 * 1024 * 1024

# Runs inside the kernel. Names start with "__studio_runner" and are deleted after use, so
# the user's namespace is left as it was; every failure inside the hook is swallowed: the
# journal must never break the user's output.
_SETUP = r'''
def __studio_runner_journal(path, run_session, limit):
    import json, os, threading
    session = get_ipython().kernel.session
    if getattr(session, "_studio_runner_journal", None) == path:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    out = open(path, "a", encoding="utf-8")
    lock, send, owner, state = threading.Lock(), session.send, os.getpid(), {"size": 0, "full": False}

    def iso(value):
        return value.isoformat() if hasattr(value, "isoformat") else str(value)

    def journal(msg):
        parent = msg.get("parent_header") or {}
        if parent.get("session") != run_session or state["full"] or msg["msg_type"].startswith("comm"):
            return
        header = dict(msg["header"])
        line = json.dumps({
            "channel": "shell" if msg["msg_type"].endswith("_reply") else "iopub",
            "msg_id": header["msg_id"], "msg_type": header["msg_type"], "header": header,
            "parent_header": {"msg_id": parent.get("msg_id"), "session": run_session},
            "metadata": msg.get("metadata") or {}, "content": msg.get("content") or {},
        }, default=iso) + "\n"
        if state["size"] + len(line) > limit:
            state["full"], line = True, '{"overflow": true}\n'
        out.write(line)
        out.flush()
        state["size"] += len(line)

    def journaled_send(stream, msg_or_type, content=None, parent=None, ident=None, buffers=None,
                       track=False, header=None, metadata=None):
        if os.getpid() != owner:  # a forked child: its messages are not ours to journal
            return send(stream, msg_or_type, content, parent, ident, buffers, track, header, metadata)
        with lock:
            if not isinstance(msg_or_type, dict):
                msg_or_type = session.msg(msg_or_type, content=content, parent=parent, header=header,
                                          metadata=metadata)
            try:
                journal(msg_or_type)
            except Exception:
                pass
            return send(stream, msg_or_type, content, parent, ident, buffers, track, header, metadata)

    session.send = journaled_send
    session._studio_runner_journal = path

__studio_runner_journal(__studio_runner_path, __studio_runner_session, __studio_runner_limit)
del __studio_runner_journal, __studio_runner_path, __studio_runner_session, __studio_runner_limit
'''


def journal_path(run_id: str) -> str:
    """The journal's path in the target's tree (the run's own folder)."""
    return f"{RUNS_DIR}/{run_id}/{JOURNAL_NAME}"


def setup_code(path: str, *, kernel_cwd: str, run_session: str, limit: int = JOURNAL_LIMIT_BYTES) -> str:
    """The code that starts the journal at ``path`` (a path in the tree); the kernel's working
    directory is ``kernel_cwd`` (the tree path of its session's folder, "" for the root)."""
    relative = posixpath.relpath(path, kernel_cwd or ".")
    return (f"import os as __studio_runner_os\n"
            f"__studio_runner_path = __studio_runner_os.path.normpath("
            f"__studio_runner_os.path.join(__studio_runner_os.getcwd(), {relative!r}))\n"
            f"del __studio_runner_os\n"
            f"__studio_runner_session = {run_session!r}\n__studio_runner_limit = {int(limit)}\n" + _SETUP
            + guard.setup_code(run_session))  # the same request installs the pipelining guard


def without_lone_surrogates(value: Any) -> Any:
    """``value`` with each lone surrogate in its strings replaced by U+FFFD (UTF-8 cannot encode them)."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {k: without_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_lone_surrogates(v) for v in value]
    return value


def parse(text: str) -> list[dict[str, Any]]:
    """The journal's messages in order (a line cut short by a write in progress is left out)."""
    messages = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if "\\ud" in line:  # the kernel's json.dumps escapes a lone surrogate: U+FFFD, as on the socket
            entry = without_lone_surrogates(entry)
        if isinstance(entry, dict):
            entry.setdefault("buffers", [])
            messages.append(entry)
    return messages


def recoverable(journal: list[dict[str, Any]], *, after: str | None, cells: set[str], until: str | None,
                received: set[str | None], replied: set[str]) -> list[dict[str, Any]] | None:
    """The journal's messages for ``cells`` that the runner never received, in order.

    ``after``: the last iopub message received before the gap (None: none received yet);
    ``until``: the first message received after it (where the socket took over again);
    ``received``: messages already in hand; ``replied``: cells whose execute_reply is in.
    A missing execute_reply is looked for in the whole journal: the shell channel is not
    ordered with iopub (a reply may precede the last iopub message received), and a reply
    carries no output, so applying it first changes nothing in the cell.
    None when the journal cannot tell (``after`` is not in it, or it overflowed first).
    """
    start = 0
    if after is not None:
        ids = [m.get("msg_id") for m in journal]
        if after not in ids:
            return None
        start = ids.index(after) + 1
    replies = [m for m in journal[:start] if m.get("channel") == "shell"
               and parent_msg_id(m) in cells and parent_msg_id(m) not in replied]
    found = []
    for msg in journal[start:]:
        if msg.get("overflow"):
            return None
        msg_id = msg.get("msg_id")
        if until is not None and msg_id == until:
            break
        parent = parent_msg_id(msg)
        if parent not in cells or msg_id in received:
            continue
        if msg.get("channel") == "shell" and parent in replied:
            continue
        found.append(msg)
    return replies + found


def start(jupyter: Any, kernel_id: str, *, run_id: str, session_path: str, run_session: str,
          timeout: float = 10.0) -> str | None:
    """Start the run's journal in the kernel (one silent execute_request on a socket of its
    own); its path in the tree, or None when it could not be started (the run goes on: a gap
    it cannot cover is then marked in the cell, as without a journal)."""

    # Here, not at the top: Cleanup imports this module (to remove the journal) and opens no
    # WebSocket; websocket-client would add 4-8 ms to its cold start (min-median of 7 fresh
    # processes, `import studiorunner.jupyter.connection` after `import studiorunner.run.cleanup`).
    from studiorunner.jupyter.connection import KernelChannel

    path = journal_path(run_id)
    code = setup_code(path, kernel_cwd=session_path.rpartition("/")[0], run_session=run_session)
    request = execute_request(code, session=new_session_id(), stop_on_error=False, silent=True, store_history=False)
    status = None
    try:
        ws = jupyter.channels(kernel_id, new_session_id())
        with KernelChannel.open(ws.url, headers=ws.headers, timeout=timeout) as channel:
            channel.send(request)
            deadline = time.monotonic() + timeout
            while status is None and (left := deadline - time.monotonic()) > 0:
                msg = channel.recv(left)
                if msg and msg.get("msg_type") == "execute_reply" and parent_msg_id(msg) == request["msg_id"]:
                    status = (msg.get("content") or {}).get("status")
        if status == "ok" and jupyter.read_text(path) is not None:
            return path
    except Exception as e:  # noqa: BLE001 - the journal is a safety net, never a reason to fail the run
        logger.warning("could not start the run's journal: %s", type(e).__name__)
        return None
    logger.warning("could not start the run's journal (setup answered %s)", status or "nothing")
    return None


def remove(jupyter: Any, path: str) -> str | None:
    """Delete the journal, its run's folder, and the runs' folders above it once they hold
    nothing else (the run's own; no other run's). A note of what is left, or None."""
    try:
        jupyter.delete_file(path)
    except Exception as e:  # noqa: BLE001 - a file left behind bills nothing: report, never raise
        return f"the run's journal {path} ({type(e).__name__})"
    jupyter.delete_empty_folders(path.rpartition("/")[0])  # the run's folder, then studio-runner/runs, …
    return None
