"""Turning iopub messages into nbformat outputs, as nbclient records them.

This mirrors ``nbclient.NotebookClient.process_message`` / ``output`` / ``clear_output`` /
``_update_display_id`` (nbclient 0.10) with three deliberate differences:

* consecutive stream outputs with the same name are merged into one output (as
  JupyterLab shows them), so a chatty loop does not become thousands of outputs, and
  at the end of a cell a stderr output directly followed by stdout is swapped (as
  nbclient's ``coalesce_streams`` does; ipykernel's two streams race each other);
* jupyter_server's iopub rate-limit note ("IOPub data rate exceeded." / "IOPub message
  rate exceeded." on stderr) marks the cell ``metadata.studio_runner.output_truncated``:
  the server dropped output, and the notebook must not pass for complete;
* the display-id map and pending ``clear_output(wait=True)`` survive a pause: they are
  plain JSON (:meth:`OutputRecorder.state`) the executor keeps in its cursor.

Widget state (``comm_*`` messages) and the Output widgets' capture of a request's output
are :mod:`.widgets`' (the cell never sees output an Output widget captured).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from nbformat import NotebookNode
from nbformat.v4 import new_output, output_from_msg

from studiorunner.execution.widgets import WidgetRecorder
from studiorunner.timestamps import utc_iso

RATE_LIMIT_NOTES = ("IOPub data rate exceeded", "IOPub message rate exceeded")
META_KEY = "studio_runner"


def server_note(msg: dict[str, Any]) -> bool:
    """jupyter_server's own rate-limit note: on a request's iopub, but not the kernel's (nor in its journal)."""
    content = msg.get("content") or {}
    return (msg.get("msg_type") == "stream" and content.get("name") == "stderr"
            and any(note in str(content.get("text", "")) for note in RATE_LIMIT_NOTES))


def timestamp(msg: dict[str, Any] | None = None) -> str:
    """The message's header date as nbclient writes it (``%Y-%m-%dT%H:%M:%S.%fZ``, UTC)."""
    raw = ((msg or {}).get("header") or {}).get("date")
    if isinstance(raw, str) and raw:
        try:
            when = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00"))
            return utc_iso(when)
        except ValueError:
            pass
    return utc_iso()


def runner_meta(cell: NotebookNode) -> dict[str, Any]:
    """The cell's ``metadata.studio_runner`` dict (created on first use)."""
    meta = cell.setdefault("metadata", NotebookNode())
    if META_KEY not in meta:
        meta[META_KEY] = NotebookNode()
    return meta[META_KEY]


class OutputRecorder:
    """Applies iopub messages to the cells of one notebook, in place."""

    def __init__(self, nb: NotebookNode, state: dict[str, Any] | None = None, *,
                 session: str = "", send: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.nb = nb
        state = state or {}
        self.widgets = WidgetRecorder(nb, state.get("widgets"), session=session, send=send)
        # display_id -> {cell index -> [output indices]}, as nbclient's _display_id_map
        self.displays: dict[str, dict[int, list[int]]] = {
            did: {int(ci): list(idx) for ci, idx in cells.items()}
            for did, cells in (state.get("displays") or {}).items()
        }
        # cells whose clear_output(wait=True) waits for the next output
        self.clear_pending: set[int] = set(state.get("clear_pending") or [])

    def state(self) -> dict[str, Any]:
        """JSON-able state to carry into a later process (small: ids and indices only)."""
        displays = {
            did: {str(ci): idx for ci, idx in cells.items() if idx}
            for did, cells in self.displays.items()
        }
        state: dict[str, Any] = {
            "displays": {did: cells for did, cells in displays.items() if cells},
            "clear_pending": sorted(self.clear_pending),
        }
        widgets = self.widgets.state()
        if widgets["hooks"] or widgets["clear_pending"]:
            state["widgets"] = widgets
        return state

    def start_cell(self, index: int) -> None:
        """Reset a cell about to be executed (outputs, count, timing)."""
        cell = self.nb.cells[index]
        cell.outputs = []
        cell.execution_count = None
        cell.metadata["execution"] = {}
        runner_meta(cell).pop("output_truncated", None)
        self.clear_pending.discard(index)
        self._clear_display_id_mapping(index)

    def process(self, msg: dict[str, Any], index: int) -> NotebookNode | None:
        """Apply one iopub message whose parent is cell ``index``'s request.

        Returns the output appended (or merged into), if any.
        """
        cell = self.nb.cells[index]
        msg_type = msg["msg_type"]
        content = msg.get("content") or {}
        transient = content.get("transient")
        display_id = transient.get("display_id") if transient else None

        if display_id and msg_type in {"execute_result", "display_data", "update_display_data"}:
            self._update_display_id(display_id, msg)

        if "execution_count" in content:
            cell["execution_count"] = content["execution_count"]

        timing = cell.metadata.setdefault("execution", {})
        if msg_type == "status":
            state = content.get("execution_state")
            if state == "idle":
                timing["iopub.status.idle"] = timestamp(msg)
            elif state == "busy":
                timing["iopub.status.busy"] = timestamp(msg)
            return None
        if msg_type == "execute_input":
            timing["iopub.execute_input"] = timestamp(msg)
            return None
        if msg_type.startswith("comm"):
            self.widgets.comm(msg)
            return None
        if msg_type == "update_display_data":
            return None
        widget = self.widgets.capturing(msg)
        if msg_type == "clear_output":
            if widget is not None:
                self.widgets.clear_output(widget, msg)
            else:
                self._clear_output(cell.outputs, content, index)
            return None
        return self._output(cell, msg, display_id, index, widget)

    def record_reply(self, msg: dict[str, Any], index: int) -> None:
        """Note the shell ``execute_reply`` time, as nbclient's record_timing does."""
        self.nb.cells[index].metadata.setdefault("execution", {})["shell.execute_reply"] = timestamp(msg)

    def finish_cell(self, index: int) -> None:
        """A cell's outputs are complete: put stdout before an adjacent stderr, as nbclient does.

        ipykernel flushes stdout and stderr from different threads, so their relative order
        is not guaranteed; nbclient (with coalesce_streams) moves stdout in front.
        """
        outs = self.nb.cells[index].outputs
        for i in range(len(outs) - 1):
            a, b = outs[i], outs[i + 1]
            if (a.get("output_type") == "stream" and a.get("name") == "stderr"
                    and b.get("output_type") == "stream" and b.get("name") == "stdout"):
                outs[i], outs[i + 1] = b, a
        merged: list[NotebookNode] = []
        for out in outs:
            prev = merged[-1] if merged else None
            if (prev is not None and out.get("output_type") == "stream"
                    and prev.get("output_type") == "stream" and prev.get("name") == out.get("name")):
                prev["text"] += out["text"]
            else:
                merged.append(out)
        if len(merged) != len(outs):
            outs[:] = merged

    def append_note(self, index: int, text: str, name: str = "stderr") -> NotebookNode:
        """Append a stream output written by the runner itself (not by the kernel)."""
        out = new_output("stream", name=name, text=text)
        self.nb.cells[index].outputs.append(out)
        return out

    # -- nbclient's output / clear_output / _update_display_id --

    def _output(self, cell: NotebookNode, msg: dict[str, Any], display_id: str | None,
                index: int, widget: str | None) -> NotebookNode | None:
        try:
            out = output_from_msg(msg)
        except ValueError:
            return None  # not an output message (e.g. a reply that leaked onto iopub)
        if widget is not None:
            self.widgets.output(widget, msg)  # an Output widget's, not the cell's
            return None
        outs = cell.outputs
        if index in self.clear_pending:
            outs[:] = []
            self._clear_display_id_mapping(index)
            self.clear_pending.discard(index)

        if out.output_type == "stream":
            if out.name == "stderr" and any(note in out.text for note in RATE_LIMIT_NOTES):
                meta = runner_meta(cell)
                meta["output_truncated"] = True
                meta["output_truncated_reason"] = (
                    "jupyter_server's iopub rate limit dropped some of this cell's output")
            if outs and outs[-1].get("output_type") == "stream" and outs[-1].get("name") == out.name:
                outs[-1]["text"] += out.text
                return outs[-1]

        if display_id:
            cell_map = self.displays.setdefault(display_id, {})
            cell_map.setdefault(index, []).append(len(outs))
        outs.append(out)
        return out

    def _clear_output(self, outs: list[NotebookNode], content: dict[str, Any], index: int) -> None:
        if content.get("wait"):
            self.clear_pending.add(index)
        else:
            outs[:] = []
            self._clear_display_id_mapping(index)

    def _clear_display_id_mapping(self, index: int) -> None:
        for cell_map in self.displays.values():
            if index in cell_map:
                cell_map[index] = []

    def _update_display_id(self, display_id: str, msg: dict[str, Any]) -> None:
        if display_id not in self.displays:
            return
        as_display = dict(msg)
        as_display["header"] = dict(msg["header"], msg_type="display_data")
        as_display["msg_type"] = "display_data"
        try:
            out = output_from_msg(as_display)
        except ValueError:
            return
        for cell_idx, output_indices in self.displays[display_id].items():
            outputs = self.nb.cells[cell_idx].outputs
            for output_idx in output_indices:
                if output_idx < len(outputs):
                    outputs[output_idx]["data"] = out["data"]
                    outputs[output_idx]["metadata"] = out["metadata"]
