"""Jupyter widgets, as nbclient records them: their state in the notebook, Output widgets' capture.

This mirrors ``nbclient.NotebookClient.handle_comm_msg`` / ``set_widgets_metadata`` /
``register_output_hook`` and ``nbclient.output_widget.OutputWidget`` (nbclient 0.11):

* every comm message whose ``data`` carries a ``state`` updates that widget's state, and
  binary buffers are kept base64-encoded by their path; the notebook gets
  ``metadata.widgets["application/vnd.jupyter.widget-state+json"]`` (``version_major`` 2,
  ``version_minor`` 0; one entry per model with a ``_model_name``), so its widgets render in
  the saved notebook and the HTML page;
* an ``Output`` widget (``@jupyter-widgets/output`` ``OutputModel``) whose ``msg_id`` is set
  (``with out:`` in the kernel) captures the outputs and clears of that request, as
  JupyterLab's does: they go into the widget's ``outputs``, not the cell's, and the widget
  sends its outputs back to the kernel (a ``comm_msg`` ``update``), as a front end does.

One difference: the state lives in ``nb.metadata`` from the first widget message on (not
only at the end of the run), so a run saved mid-way, or resumed by a later RunCells from the
saved notebook, keeps it. What must outlive a pause besides (which Output widget captures
which request, a pending ``clear_output(wait=True)``) is small and JSON, in
:meth:`WidgetRecorder.state`. Comm messages are not in the run's journal: widget state sent
while no runner listened and nothing replayed is not recovered.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from nbformat import NotebookNode
from nbformat.v4 import output_from_msg

from studiorunner.jupyter.kernel_protocol import new_msg, parent_msg_id

WIDGET_STATE_MIMETYPE = "application/vnd.jupyter.widget-state+json"
OUTPUT_MODULE, OUTPUT_MODEL = "@jupyter-widgets/output", "OutputModel"


class WidgetRecorder:
    """Keeps ``nb.metadata.widgets`` and routes output captured by Output widgets.

    ``send(msg)`` puts a message on the kernel's shell channel (None: the kernel is not told
    of the captured outputs, as in unit tests of the recorder alone).
    """

    def __init__(self, nb: NotebookNode, state: dict[str, Any] | None = None, *,
                 session: str = "", send: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.nb, self.session, self.send = nb, session, send
        state = state or {}
        # request msg_id -> the Output widgets capturing its output (the last one captures)
        self.hooks: dict[str, list[str]] = {k: list(v) for k, v in (state.get("hooks") or {}).items()}
        # Output widgets whose clear_output(wait=True) waits for their next output
        self.clear_pending: set[str] = set(state.get("clear_pending") or [])

    def state(self) -> dict[str, Any]:
        return {"hooks": {k: v for k, v in self.hooks.items() if v}, "clear_pending": sorted(self.clear_pending)}

    # -- widget state --

    def _models(self) -> dict[str, Any]:
        widgets = self.nb.metadata.setdefault("widgets", NotebookNode())
        record = widgets.setdefault(WIDGET_STATE_MIMETYPE, NotebookNode(state=NotebookNode()))
        record.setdefault("version_major", 2)
        record.setdefault("version_minor", 0)
        return record.setdefault("state", NotebookNode())

    def _model(self, comm_id: str) -> NotebookNode | None:
        record = (self.nb.metadata.get("widgets") or {}).get(WIDGET_STATE_MIMETYPE) or {}
        return (record.get("state") or {}).get(comm_id)

    def comm(self, msg: dict[str, Any]) -> None:
        """A ``comm_open`` / ``comm_msg`` / ``comm_close`` from the kernel."""
        content = msg.get("content") or {}
        data = content.get("data") or {}
        comm_id = content.get("comm_id")
        new_state = data.get("state")
        if not comm_id or not isinstance(new_state, dict):
            return  # a custom message (widget.send(...)), or no widget at all
        model = self._model(comm_id)
        if model is None:
            if "_model_name" not in new_state:
                return  # nbclient keeps only models that name themselves
            model = self._models()[comm_id] = NotebookNode(state=NotebookNode())
        model["state"].update(new_state)
        full = model["state"]
        model["model_name"] = full.get("_model_name")
        model["model_module"] = full.get("_model_module")
        model["model_module_version"] = full.get("_model_module_version")
        if data.get("buffer_paths"):
            buffers = {tuple(b["path"]): b for b in model.get("buffers") or []}
            for path, buffer in zip(data["buffer_paths"], msg.get("buffers") or [], strict=False):
                buffers[tuple(path)] = NotebookNode(data=base64.b64encode(buffer).decode("ascii"),
                                                    encoding="base64", path=path)
            model["buffers"] = list(buffers.values())
        if "msg_id" in new_state and self._is_output_widget(full):
            self._set_capture(comm_id, new_state["msg_id"])

    @staticmethod
    def _is_output_widget(state: dict[str, Any]) -> bool:
        return state.get("_model_module") == OUTPUT_MODULE and state.get("_model_name") == OUTPUT_MODEL

    def _set_capture(self, comm_id: str, msg_id: str | None) -> None:
        """nbclient's OutputWidget.set_state: ``with out:`` sets msg_id, leaving it clears it."""
        if msg_id:
            self.hooks.setdefault(msg_id, []).append(comm_id)
            return
        for stack in self.hooks.values():
            if comm_id in stack:
                stack.reverse()
                stack.remove(comm_id)  # the innermost (last) capture of this widget
                stack.reverse()
        self.hooks = {k: v for k, v in self.hooks.items() if v}

    # -- Output widget capture --

    def capturing(self, msg: dict[str, Any]) -> str | None:
        """The Output widget that takes this message's output instead of the cell, if any."""
        stack = self.hooks.get(parent_msg_id(msg) or "")
        return stack[-1] if stack else None

    def output(self, comm_id: str, msg: dict[str, Any]) -> None:
        """nbclient's OutputWidget.output: append (merging a stream) to the widget's outputs."""
        model = self._model(comm_id)
        if model is None:
            return
        try:
            out = output_from_msg(msg)
        except ValueError:
            return
        outputs = list(model["state"].get("outputs") or [])
        if comm_id in self.clear_pending:
            outputs = []
            self.clear_pending.discard(comm_id)
        last = outputs[-1] if outputs else None
        if (last is not None and last.get("output_type") == "stream" and out.output_type == "stream"
                and last.get("name") == out.name):
            last["text"] += out.text
        else:
            outputs.append(out)
        self._sync(comm_id, model, outputs, msg)

    def clear_output(self, comm_id: str, msg: dict[str, Any]) -> None:
        """nbclient's OutputWidget.clear_output."""
        model = self._model(comm_id)
        if model is None:
            return
        if (msg.get("content") or {}).get("wait"):
            self.clear_pending.add(comm_id)
            return
        self._sync(comm_id, model, [], msg)

    def _sync(self, comm_id: str, model: NotebookNode, outputs: list[Any], msg: dict[str, Any]) -> None:
        """Keep the outputs in the saved state and tell the kernel, as a front end does."""
        model["state"]["outputs"] = outputs
        if self.send is not None:
            self.send(new_msg("comm_msg", {"data": {"method": "update", "state": {"outputs": outputs},
                                                    "buffer_paths": []}, "comm_id": comm_id},
                              session=self.session, channel="shell", parent={"header": msg.get("parent_header") or {}}))
