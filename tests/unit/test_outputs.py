"""iopub messages into nbformat outputs, as nbclient records them (cf. nbclient's test_client mocks)."""

from __future__ import annotations

from typing import Any

from nbformat.v4 import new_code_cell, new_notebook

from studiorunner.execution.outputs import OutputRecorder


def msg(msg_type: str, content: dict[str, Any], date: str = "2024-05-06T07:08:09.123456Z") -> dict[str, Any]:
    return {"msg_type": msg_type, "header": {"msg_type": msg_type, "date": date},
            "parent_header": {"msg_id": "x"}, "content": content, "channel": "iopub"}


def stream(name: str, text: str) -> dict[str, Any]:
    return msg("stream", {"name": name, "text": text})


def display(data: str, display_id: str | None = None, kind: str = "display_data", **extra: Any) -> dict[str, Any]:
    content: dict[str, Any] = {"data": {"text/plain": data}, "metadata": {}, **extra}
    if display_id:
        content["transient"] = {"display_id": display_id}
    return msg(kind, content)


def recorder(cells: int = 2) -> OutputRecorder:
    nb = new_notebook(cells=[new_code_cell(f"c{i}") for i in range(cells)])
    rec = OutputRecorder(nb)
    for i in range(cells):
        rec.start_cell(i)
    return rec


def test_execute_input_and_result_set_counts_and_timing() -> None:
    rec = recorder()
    rec.process(msg("status", {"execution_state": "busy"}), 0)
    rec.process(msg("execute_input", {"code": "c0", "execution_count": 4}), 0)
    rec.process(display("5", kind="execute_result", execution_count=4), 0)
    rec.process(msg("status", {"execution_state": "idle"}), 0)
    cell = rec.nb.cells[0]
    assert cell.execution_count == 4
    assert cell.outputs == [{"output_type": "execute_result", "data": {"text/plain": "5"}, "metadata": {},
                             "execution_count": 4}]
    assert cell.metadata.execution == {"iopub.status.busy": "2024-05-06T07:08:09.123456Z",
                                       "iopub.execute_input": "2024-05-06T07:08:09.123456Z",
                                       "iopub.status.idle": "2024-05-06T07:08:09.123456Z"}


def test_consecutive_streams_merge_and_stdout_goes_before_stderr() -> None:
    rec = recorder()
    for m in (stream("stdout", "a"), stream("stdout", "b"), stream("stderr", "e"), stream("stdout", "c")):
        rec.process(m, 0)
    assert [(o.name, o.text) for o in rec.nb.cells[0].outputs] == [("stdout", "ab"), ("stderr", "e"), ("stdout", "c")]
    rec.finish_cell(0)
    assert [(o.name, o.text) for o in rec.nb.cells[0].outputs] == [("stdout", "abc"), ("stderr", "e")]


def test_error_output() -> None:
    rec = recorder()
    rec.process(msg("error", {"ename": "ValueError", "evalue": "bad", "traceback": ["tb"]}), 0)
    assert rec.nb.cells[0].outputs == [{"output_type": "error", "ename": "ValueError", "evalue": "bad",
                                        "traceback": ["tb"]}]


def test_clear_output_now_and_wait() -> None:
    rec = recorder()
    rec.process(stream("stdout", "gone"), 0)
    rec.process(msg("clear_output", {"wait": False}), 0)
    assert rec.nb.cells[0].outputs == []
    rec.process(stream("stdout", "shown until next"), 0)
    rec.process(msg("clear_output", {"wait": True}), 0)
    assert rec.nb.cells[0].outputs[0].text == "shown until next"  # wait: cleared only by the next output
    rec.process(stream("stdout", "new"), 0)
    assert [o.text for o in rec.nb.cells[0].outputs] == ["new"]
    rec.process(msg("clear_output", {"wait": True}), 1)
    rec.process(stream("stdout", "x"), 1)  # another cell's wait is its own
    assert [o.text for o in rec.nb.cells[0].outputs] == ["new"]


def test_update_display_data_across_cells_and_after_clear() -> None:
    rec = recorder(3)
    rec.process(display("one", "d"), 0)
    rec.process(display("two", "d"), 1)
    rec.process(display("three", "d", kind="update_display_data"), 2)
    assert rec.nb.cells[0].outputs[0].data == {"text/plain": "three"}
    assert rec.nb.cells[1].outputs[0].data == {"text/plain": "three"}
    assert rec.nb.cells[2].outputs == []  # an update adds no output
    rec.process(msg("clear_output", {}), 1)
    rec.process(display("four", "d", kind="update_display_data"), 2)
    assert rec.nb.cells[0].outputs[0].data == {"text/plain": "four"} and rec.nb.cells[1].outputs == []


def test_display_state_survives_json_round_trip() -> None:
    rec = recorder(2)
    rec.process(display("one", "d"), 0)
    rec.process(msg("clear_output", {"wait": True}), 1)
    again = OutputRecorder(rec.nb, rec.state())
    again.process(display("two", "d", kind="update_display_data"), 1)
    assert rec.nb.cells[0].outputs[0].data == {"text/plain": "two"}
    assert again.clear_pending == {1}


def test_iopub_rate_limit_note_marks_the_cell_truncated() -> None:
    rec = recorder()
    rec.process(stream("stdout", "lots"), 0)
    rec.process(stream("stderr", "IOPub data rate exceeded.\nThe Jupyter server will temporarily stop...\n"), 0)
    meta = rec.nb.cells[0].metadata["studio_runner"]
    assert meta["output_truncated"] is True and "rate limit" in meta["output_truncated_reason"]
    rec.start_cell(0)  # a new execution starts clean
    assert "output_truncated" not in rec.nb.cells[0].metadata["studio_runner"]


def test_comm_messages_are_ignored() -> None:
    rec = recorder()
    rec.process(msg("comm_open", {"comm_id": "c", "target_name": "t", "data": {}}), 0)
    assert rec.nb.cells[0].outputs == []
