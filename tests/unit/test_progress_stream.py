"""progress.json as the terminal reads it (issue 17 point 3): every output line for --log-output,
writes that never hold up the cells, and an interval that stays near a second."""

from __future__ import annotations

import io
import json
import threading

from nbformat.v4 import new_code_cell, new_output

from studiorunner.progress import LOG_KEEP, ProgressReporter
from studiorunner_cli.display import ProgressPrinter


def reporter(writes: list[dict], **options) -> ProgressReporter:
    return ProgressReporter(lambda uri, data: writes.append(json.loads(data)), "s3://b/runs/r/progress.json",
                            run_id="r", cells_total=3, **options)


def stream(cell, text: str) -> None:
    """What the executor does with a stream message: append to the last stream output, or add one."""
    if cell.outputs and cell.outputs[-1].output_type == "stream":
        cell.outputs[-1].text += text
    else:
        cell.outputs.append(new_output("stream", name="stdout", text=text))


def test_the_log_holds_every_complete_line_and_the_cells_markers():
    writes: list[dict] = []
    progress = reporter(writes)
    cell = new_code_cell("loop")
    progress.cell_started(0, cell)
    stream(cell, "one\ntw")
    progress.flush()
    assert [e[2:] for e in writes[-1]["log"]["entries"]] == [["start", None], ["line", "one"]]  # "tw" is not a line yet
    stream(cell, "o\nthree\n")
    cell.outputs.append(new_output("execute_result", data={"text/plain": "42"}, execution_count=1))
    progress.flush()
    stream(cell, "last, no newline")
    progress.cell_finished(0, cell, "completed")
    progress.finish("done")
    entries = writes[-1]["log"]["entries"]
    assert [e[2:] for e in entries] == [["start", None], ["line", "one"], ["line", "two"], ["line", "three"],
                                        ["line", "42"], ["line", "last, no newline"], ["end", None]]
    assert [e[0] for e in entries] == list(range(1, 8)) and {e[1] for e in entries} == {0}


def test_a_cleared_output_logs_its_new_lines():
    writes: list[dict] = []
    progress = reporter(writes)
    cell = new_code_cell("progress bar")
    progress.cell_started(0, cell)
    stream(cell, "10%\n")
    progress.flush()
    cell.outputs.clear()  # clear_output(wait=True), then the next value
    stream(cell, "20%\n")
    progress.cell_finished(0, cell, "completed")
    progress.finish("done")
    assert [e[3] for e in writes[-1]["log"]["entries"] if e[2] == "line"] == ["10%", "20%"]


def test_the_printer_streams_each_line_once_in_order_and_says_what_it_missed():
    out = io.StringIO()
    printer = ProgressPrinter(out, log_output=True)
    log = {"id": "a", "entries": [[1, 0, "start", None], [2, 0, "line", "x"]]}
    printer.update({"log": log})
    log["entries"] += [[3, 0, "line", "\x1b[31my\x1b[0m"], [4, 0, "end", None]]
    printer.update({"log": log})
    printer.update({"log": {"id": "a", "entries": [[9, 1, "line", "late"]]}})  # 5–8 fell out of the kept entries
    printer.update({"log": {"id": "b", "entries": [[1, 2, "start", None]]}})  # the next RunCells invocation
    assert out.getvalue().splitlines() == [
        "Executing Cell 1" + "-" * 39, "x", "y", "Ending Cell 1" + "-" * 42,
        "… 4 output lines not shown here (the notebook has them: studio-runner logs RUN)", "late",
        "Executing Cell 3" + "-" * 39,
    ]
    assert printer.log_missed == 4


def test_the_log_keeps_its_last_entries():
    writes: list[dict] = []
    progress = reporter(writes)
    cell = new_code_cell("chatty")
    progress.cell_started(0, cell)
    stream(cell, "".join(f"{i}\n" for i in range(LOG_KEEP + 50)))
    progress.cell_finished(0, cell, "completed")
    progress.finish("done")
    entries = writes[-1]["log"]["entries"]
    assert len(entries) == LOG_KEEP and entries[-1][2] == "end" and entries[0][0] == 352 - LOG_KEEP + 1


def test_a_slow_write_never_holds_up_the_cells():
    """Writes happen on the reporter's timer thread: the executor's callbacks return while one is
    stuck (before, the first callback wrote in the executor's own thread and waited for the store)."""
    release, writing = threading.Event(), threading.Event()

    def slow(uri: str, data: bytes) -> None:
        writing.set()
        release.wait(30)

    progress = ProgressReporter(slow, "s3://b/runs/r/progress.json", run_id="r", cells_total=100)
    cell = new_code_cell("x")

    def cells() -> None:
        for index in range(100):
            progress.cell_started(index, cell)
            progress.cell_finished(index, cell, "completed")

    runner = threading.Thread(target=cells)
    runner.start()
    assert writing.wait(30)
    runner.join(30)
    stuck = runner.is_alive()
    release.set()
    progress.finish("done")
    assert not stuck, "the cells waited for a progress write"


def test_the_interval_stays_near_a_second_when_writes_are_slow():
    """It was max(1 s, 10 × the last write): a 0.5 s write (a loaded machine) meant 5 s behind."""
    now = [0.0]

    def write(uri: str, data: bytes) -> None:
        now[0] += 0.4  # the write takes 0.4 s

    progress = ProgressReporter(write, "s3://b/runs/r/progress.json", run_id="r", cells_total=1, clock=lambda: now[0])
    progress.flush()
    assert progress._interval() == 1.0
    now[0] += 0.1
    progress.flush()
    now[0] = 10.0
    assert progress.due()


def test_a_cell_resumed_by_the_next_invocation_logs_only_its_new_lines():
    """A cell that outlives a RunCells invocation is started again by the next one's reporter with the
    outputs it had: its start marker and earlier lines were logged already (no repeat in the terminal)."""
    cell = new_code_cell("train()")
    first: list[dict] = []
    progress = reporter(first)
    progress.cell_started(0, cell)
    stream(cell, "epoch 1\n")
    progress.finish("running")
    assert [e[2:] for e in first[-1]["log"]["entries"]] == [["start", None], ["line", "epoch 1"]]

    second: list[dict] = []
    progress = reporter(second)
    progress.cell_resumed(0, cell)  # RunCells: the cursor's running cell, before the executor hears of it
    progress.flush()
    assert second[-1]["current"]["cell"] == 0 and second[-1]["current"]["lines"] == ["epoch 1"]
    progress.cell_started(0, cell)  # the executor may announce it again: nothing is logged twice
    stream(cell, "epoch 2\n")
    progress.cell_finished(0, cell, "completed")
    progress.finish("done")
    assert [e[2:] for e in second[-1]["log"]["entries"]] == [["line", "epoch 2"], ["end", None]]


def test_outputs_that_change_as_they_are_read_never_stop_the_writes():
    """The timer's thread reads the running cell's outputs while the executor changes them; a read
    that fails (here: an output that is not one) skips the lines for that write, and writing goes on."""
    writes: list[dict] = []
    progress = reporter(writes)
    cell = new_code_cell("x")
    progress.cell_started(0, cell)
    cell.outputs.append(None)  # what a half-made change can look like to the reader
    progress.flush()
    cell.outputs[:] = [new_output("stream", name="stdout", text="fine\n")]
    progress.cell_finished(0, cell, "completed")
    progress.finish("done")
    assert writes[-1]["state"] == "done"
    assert [e[3] for e in writes[-1]["log"]["entries"] if e[2] == "line"] == ["fine"]


def test_a_later_invocation_goes_on_with_the_same_log():
    """Each RunCells invocation has its own reporter; the next one continues the file's log (same
    id, numbers after its last), so a reader that missed the last write of the previous one loses nothing."""
    from studiorunner.progress import reporter_for

    class Store:
        def __init__(self):
            self.objects: dict[str, bytes] = {}

        def read_bytes(self, uri):
            return self.objects[uri]

        def write_bytes(self, uri, data, content_type=None):
            self.objects[uri] = data

    store = Store()
    state = {"run": {"output_uri": "s3://b/runs/r/n.ipynb", "run_id": "r"}, "kernel": {"cells_total": 2}, "cursor": {}}
    cell = new_code_cell("train()")
    first = reporter_for(state, store)
    first.cell_started(1, cell)
    stream(cell, "epoch 1\n")
    first.finish("running")
    before = json.loads(store.objects["s3://b/runs/r/progress.json"])["log"]

    second = reporter_for({**state, "cursor": {"cells_executed": 0, "pending": [{"cell": 1}]}}, store)
    second.cell_resumed(1, cell)
    stream(cell, "epoch 2\n")
    second.cell_finished(1, cell, "completed")
    second.finish("done")
    after = json.loads(store.objects["s3://b/runs/r/progress.json"])["log"]
    assert after["id"] == before["id"]
    assert after["entries"] == [[1, 1, "start", None], [2, 1, "line", "epoch 1"],
                                                         [3, 1, "line", "epoch 2"], [4, 1, "end", None]]


def test_lines_a_cell_printed_after_the_last_write_of_an_invocation_are_logged_by_the_next():
    """A line that reached the notebook after the invocation's last progress write (it is saved with
    the notebook, which the next invocation reads) was taken as logged already and never shown
    (seen: `step 3` missing from `--log-output` of a cell spanning two invocations, under load)."""
    cell = new_code_cell("loop()")
    first: list[dict] = []
    progress = reporter(first)
    progress.cell_started(0, cell)
    stream(cell, "step 1\nstep 2\n")
    progress.finish("running")
    stream(cell, "step 3\n")  # after that write, before the notebook was saved

    second: list[dict] = []
    progress = reporter(second, log=first[-1]["log"])
    progress.cell_resumed(0, cell)
    stream(cell, "step 4\n")
    progress.cell_finished(0, cell, "completed")
    progress.finish("done")
    lines = [e[3] for e in second[-1]["log"]["entries"] if e[2] == "line"]
    assert lines == ["step 1", "step 2", "step 3", "step 4"]
