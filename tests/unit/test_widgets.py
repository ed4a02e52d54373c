"""Widget state and Output widgets' capture (nbclient's handle_comm_msg / OutputWidget), message by message."""

from __future__ import annotations

import base64
import json
from typing import Any

from nbformat.v4 import new_code_cell, new_notebook

from studiorunner.execution.outputs import OutputRecorder
from studiorunner.notebook import prepare_for_run

MIME = "application/vnd.jupyter.widget-state+json"


def msg(msg_type: str, content: dict[str, Any], parent: str = "req-1", buffers: list[bytes] | None = None) -> dict:
    return {"channel": "iopub", "msg_type": msg_type, "header": {"msg_type": msg_type, "msg_id": "x"},
            "parent_header": {"msg_id": parent}, "metadata": {}, "content": content, "buffers": buffers or []}


def open_output_widget(comm_id: str = "w1") -> dict:
    return msg("comm_open", {"comm_id": comm_id, "target_name": "jupyter.widget", "data": {"state": {
        "_model_module": "@jupyter-widgets/output", "_model_name": "OutputModel",
        "_model_module_version": "1.0.0", "outputs": []}, "buffer_paths": []}})


def capture(comm_id: str, msg_id: str) -> dict:
    return msg("comm_msg", {"comm_id": comm_id, "data": {"method": "update", "state": {"msg_id": msg_id},
                                                         "buffer_paths": []}})


def stream(text: str, parent: str = "req-1") -> dict:
    return msg("stream", {"name": "stdout", "text": text}, parent)


def test_state_buffers_and_custom_messages() -> None:
    nb = new_notebook(cells=[new_code_cell("w")])
    rec = OutputRecorder(nb)
    rec.process(msg("comm_open", {"comm_id": "s1", "target_name": "jupyter.widget", "data": {"state": {
        "_model_module": "@jupyter-widgets/controls", "_model_name": "IntSliderModel",
        "_model_module_version": "2.0.0", "value": 1}, "buffer_paths": []}}), 0)
    rec.process(msg("comm_msg", {"comm_id": "s1", "data": {"method": "update", "state": {"value": 5}}}), 0)
    rec.process(msg("comm_msg", {"comm_id": "s1", "data": {"method": "custom", "content": {"x": 1}}}), 0)
    rec.process(msg("comm_msg", {"comm_id": "s1", "data": {"method": "update", "state": {"data": None},
                                                           "buffer_paths": [["data"]]}}, buffers=[b"\x00\x01"]), 0)
    rec.process(msg("comm_open", {"comm_id": "other", "target_name": "mine", "data": {"id": "foo"}}), 0)
    saved = nb.metadata.widgets[MIME]
    assert (saved["version_major"], saved["version_minor"]) == (2, 0) and list(saved["state"]) == ["s1"]
    model = saved["state"]["s1"]
    assert (model["model_name"], model["model_module"], model["model_module_version"]) == \
        ("IntSliderModel", "@jupyter-widgets/controls", "2.0.0")
    assert model["state"]["value"] == 5
    assert model["buffers"] == [{"data": base64.b64encode(b"\x00\x01").decode(), "encoding": "base64", "path": ["data"]}]
    assert nb.cells[0].outputs == []


def test_an_output_widget_takes_its_requests_output_nested_and_cleared() -> None:
    nb = new_notebook(cells=[new_code_cell("with out: ...")])
    sent: list[dict] = []
    rec = OutputRecorder(nb, session="s", send=sent.append)
    rec.start_cell(0)
    for m in (open_output_widget("inner"), open_output_widget("outer"), stream("cell\n"),
              capture("inner", "req-1"), stream("in inner\n"),
              capture("outer", "req-1"), stream("in outer\n"), msg("clear_output", {"wait": True}), stream("again\n"),
              capture("outer", ""), stream("also in inner\n"), capture("inner", ""), stream("cell again\n")):
        rec.process(m, 0)
    state = nb.metadata.widgets[MIME]["state"]
    assert [o["text"] for o in state["inner"]["state"]["outputs"]] == ["in inner\nalso in inner\n"]
    assert [o["text"] for o in state["outer"]["state"]["outputs"]] == ["again\n"]
    assert [o["text"] for o in nb.cells[0].outputs] == ["cell\ncell again\n"]
    # the kernel is told what each widget holds (a comm_msg update on shell, in reply to the request)
    last = sent[-1]
    assert (last["channel"], last["msg_type"], last["parent_header"]["msg_id"]) == ("shell", "comm_msg", "req-1")
    assert last["content"]["data"]["state"]["outputs"][0]["text"] == "in inner\nalso in inner\n"


def test_a_capture_outlives_a_pause_in_the_cursor() -> None:
    nb = new_notebook(cells=[new_code_cell("with out: long()")])
    rec = OutputRecorder(nb)
    for m in (open_output_widget("w"), capture("w", "req-1"), msg("clear_output", {"wait": True})):
        rec.process(m, 0)
    carried = json.loads(json.dumps(rec.state()))  # what the cursor carries to the next RunCells
    again = OutputRecorder(nb, carried)
    again.process(stream("after the pause\n"), 0)
    assert nb.metadata.widgets[MIME]["state"]["w"]["state"]["outputs"][0]["text"] == "after the pause\n"
    assert nb.cells[0].outputs == []


def test_a_fresh_run_drops_an_earlier_runs_widget_state() -> None:
    nb = new_notebook(cells=[new_code_cell("w")])
    nb.metadata["widgets"] = {MIME: {"state": {"old": {}}, "version_major": 2, "version_minor": 0}}
    prepare_for_run(nb, run_id="r", input_path="n.ipynb", output_uri="s3://b/runs/r/n.ipynb",
                    parameters={}, kernel_name="python3")
    assert "widgets" not in nb.metadata
