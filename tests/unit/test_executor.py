"""The cell executor against a scripted kernel (the model: nbclient's ``prepare_cell_mocks``).

The fake kernel runs queued execute_requests one at a time and emits the messages a real
ipykernel sends (busy, execute_input, outputs, idle, execute_reply), including aborted
replies for what is queued behind an error. Time is a fake clock advanced by waiting.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from studiorunner.errors import CellExecutionError, CellTimeout, KernelDied
from studiorunner.execution.cursor import Cursor
from studiorunner.execution.executor import CellExecutor
from studiorunner.execution.options import ExecutorOptions, KernelControl
from studiorunner.jupyter.connection import ChannelClosed


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class FakeKernel:
    """Scripts: code -> list of events: ("out", name, text), ("display", text, id|None),
    ("update", text, id), ("result", text), ("error", ename, evalue), ("clear", wait),
    ("wait", seconds), ("hang",) (until interrupted), ("die",)."""

    def __init__(self, clock: Clock, scripts: dict[str, list[tuple[Any, ...]]], reply_first: bool = True) -> None:
        self.clock = clock
        self.scripts = scripts
        self.reply_first = reply_first
        self.queue: list[dict[str, Any]] = []
        self.outbox: list[dict[str, Any]] = []
        self.current: dict[str, Any] | None = None
        self.events: list[tuple[Any, ...]] = []
        self.count = 0
        self.interrupted = False
        self.interrupts = 0
        self.state = "idle"
        self.ran: list[str] = []
        self.journal: list[dict[str, Any]] = []  # what the run's journal holds: every message to a request

    def _msg(self, channel: str, msg_type: str, content: dict[str, Any], parent: dict[str, Any] | None) -> None:
        self.outbox.append({"channel": channel, "msg_type": msg_type, "msg_id": f"k{len(self.outbox)}",
                            "header": {"msg_type": msg_type, "date": "2024-01-01T00:00:00Z"},
                            "parent_header": {"msg_id": parent["msg_id"]} if parent else {},
                            "metadata": {}, "content": content, "buffers": []})
        if parent:
            self.journal.append(self.outbox[-1])

    def interrupt(self) -> None:
        self.interrupts += 1
        self.interrupted = True

    def step(self) -> bool:
        """Advance the kernel by one event; False when it can make no progress now."""
        if self.current is None:
            if not self.queue:
                return False
            req = self.queue.pop(0)
            if self.scripts.get(req["content"]["code"], [None])[0] == ("exit",):
                # os._exit(): the process is gone before its IOPub thread sent anything
                self.outbox.append({"channel": "iopub", "msg_type": "status", "header": {"msg_type": "status"},
                                    "parent_header": {}, "metadata": {}, "content": {"execution_state": "restarting"}})
                self.queue, self.state = [], "dead"
                return True
            self._msg("iopub", "status", {"execution_state": "busy"}, req)
            self.count += 1
            self.current = req
            self.ran.append(req["content"]["code"])
            self.events = list(self.scripts.get(req["content"]["code"], []))
            self.started = self.clock.t
            self._msg("iopub", "execute_input", {"code": req["content"]["code"], "execution_count": self.count}, req)
            self.state = "busy"
            return True
        req = self.current
        if not self.events:
            return self._complete(req, {"status": "ok", "execution_count": self.count})
        ev = self.events[0]
        kind = ev[0]
        if kind in ("wait", "hang"):
            if self.interrupted:
                self.interrupted = False
                self.events = [("error", "KeyboardInterrupt", "")]
                return True
            if kind == "wait" and self.clock.t >= self.started + ev[1]:
                self.events.pop(0)
                return True
            return False
        self.events.pop(0)
        if kind == "out":
            self._msg("iopub", "stream", {"name": ev[1], "text": ev[2]}, req)
        elif kind in ("display", "update"):
            content: dict[str, Any] = {"data": {"text/plain": ev[1]}, "metadata": {}}
            if ev[2]:
                content["transient"] = {"display_id": ev[2]}
            self._msg("iopub", "display_data" if kind == "display" else "update_display_data", content, req)
        elif kind == "result":
            self._msg("iopub", "execute_result", {"data": {"text/plain": ev[1]}, "metadata": {},
                                                  "execution_count": self.count}, req)
        elif kind == "clear":
            self._msg("iopub", "clear_output", {"wait": ev[1]}, req)
        elif kind == "die":
            self.outbox.append({"channel": "iopub", "msg_type": "status", "header": {"msg_type": "status"},
                                "parent_header": {}, "metadata": {}, "content": {"execution_state": "restarting"}})
            self.current, self.queue, self.state = None, [], "dead"
        elif kind == "error":
            self._msg("iopub", "error", {"ename": ev[1], "evalue": ev[2], "traceback": [f"{ev[1]}: {ev[2]}"]}, req)
            self._complete(req, {"status": "error", "ename": ev[1], "evalue": ev[2], "execution_count": self.count})
            if req["content"]["stop_on_error"]:
                for queued in self.queue:  # ipykernel aborts what is queued behind an error
                    self._msg("iopub", "status", {"execution_state": "busy"}, queued)
                    self._msg("shell", "execute_reply", {"status": "aborted"}, queued)
                    self._msg("iopub", "status", {"execution_state": "idle"}, queued)
                self.queue = []
        return True

    def _complete(self, req: dict[str, Any], reply: dict[str, Any]) -> bool:
        order = [("shell", reply), ("iopub", None)] if self.reply_first else [("iopub", None), ("shell", reply)]
        for channel, content in order:
            if channel == "shell":
                self._msg("shell", "execute_reply", content, req)
            else:
                self._msg("iopub", "status", {"execution_state": "idle"}, req)
        self.current, self.state = None, "idle" if not self.queue else "busy"
        return True


class FakeChannel:
    def __init__(self, kernel: FakeKernel) -> None:
        self.kernel = kernel
        self.closed = False
        self.sent: list[dict[str, Any]] = []

    def send(self, msg: dict[str, Any]) -> None:
        if self.closed:
            raise ChannelClosed("closed")
        json.dumps(msg)  # what goes on the wire must be JSON
        self.sent.append(msg)
        self.kernel.queue.append(msg)

    def recv(self, timeout: float) -> dict[str, Any] | None:
        if self.closed:
            raise ChannelClosed("closed")
        waited = 0.0
        while True:  # time passes in small steps, as it would for a real kernel
            while not self.kernel.outbox and self.kernel.step():
                pass
            if self.kernel.outbox:
                return self.kernel.outbox.pop(0)
            if waited >= timeout:
                return None
            step = min(0.1, max(timeout - waited, 0.01))
            self.kernel.clock.t += step
            waited += step

    def close(self) -> None:
        self.closed = True


class NumberedKernel(FakeKernel):
    """Numbers its messages as ipykernel does: ``{session}_{pid}_{n}``, one counter for all it sends."""

    sent = 0

    def _msg(self, channel: str, msg_type: str, content: dict[str, Any], parent: dict[str, Any] | None) -> None:
        super()._msg(channel, msg_type, content, parent)
        msg = self.outbox[-1]
        msg["msg_id"] = msg["header"]["msg_id"] = f"0f1e2d3c-4b5a6978_4242_{self.sent}"
        self.sent += 1
        if self.journal and self.journal[-1] is msg:
            self.journal[-1] = dict(msg)  # the journal's own copy, as read back from the file


def make(scripts: dict[str, list[tuple[Any, ...]]], *sources: str, reply_first: bool = True,
         kernel_cls: type[FakeKernel] = FakeKernel, **kw: Any) -> tuple[CellExecutor, FakeKernel, Any]:
    clock = Clock()
    kernel = kernel_cls(clock, scripts, reply_first=reply_first)
    nb = new_notebook(cells=[new_code_cell(s) if not s.startswith("#md") else new_markdown_cell(s) for s in sources])
    hooks = {k: kw.pop(k) for k in ("on_cell_start", "on_cell_end") if k in kw}
    control = KernelControl(interrupt=kw.pop("interrupt", kernel.interrupt), state=lambda: kernel.state,
                            reconnect=kw.pop("reconnect", None), journal=kw.pop("journal", None))
    ex = CellExecutor(FakeChannel(kernel), nb, session="s", kernel=control,  # type: ignore[arg-type]
                      options=ExecutorOptions(**kw), clock=clock, wall_clock=lambda: clock.t + 1.7e9, **hooks)
    return ex, kernel, nb


def resume(kernel: FakeKernel, nb: Any, **kw: Any) -> CellExecutor:
    """A new executor on a new channel to the same kernel, as the next RunCells invocation makes."""
    control = KernelControl(interrupt=kernel.interrupt, state=lambda: kernel.state, journal=kw.pop("journal", None))
    return CellExecutor(FakeChannel(kernel), nb, session="s", kernel=control,  # type: ignore[arg-type]
                        options=ExecutorOptions(**kw), clock=kernel.clock, wall_clock=lambda: kernel.clock.t + 1.7e9)


def run(ex: CellExecutor, budget: float = 600, cursor: Cursor | None = None) -> Cursor:
    return ex.run(cursor or Cursor(), deadline=ex.clock() + budget)


def test_outputs_counts_and_skips() -> None:
    scripts = {"a": [("out", "stdout", "x\n"), ("result", "1")], "b": [("display", "d", "id1")],
               "c": [("update", "u", "id1"), ("clear", True), ("out", "stdout", "after")]}
    ex, kernel, nb = make(scripts, "a", "#md", "  ", "b", "c", "skipme", reply_first=False)
    nb.cells[5].metadata["tags"] = ["skip-execution"]
    ended: list[tuple[int, str]] = []
    ex.on_cell_end = lambda i, cell, status: ended.append((i, status))
    cur = run(ex)
    assert cur.done and cur.cells_executed == 3 and kernel.ran == ["a", "b", "c"]
    assert [c.get("execution_count") for c in nb.cells] == [1, None, None, 2, 3, None]
    assert nb.cells[0].outputs[0].text == "x\n" and nb.cells[0].outputs[1].execution_count == 1
    assert nb.cells[3].outputs[0].data == {"text/plain": "u"}
    assert [o.text for o in nb.cells[4].outputs] == ["after"]
    # a tagged cell is reported skipped as the sender passes it, possibly before earlier cells end
    assert sorted(ended) == [(0, "completed"), (3, "completed"), (4, "completed"), (5, "skipped")]
    assert set(nb.cells[0].metadata.execution) == {"iopub.status.busy", "iopub.execute_input",
                                                   "shell.execute_reply", "iopub.status.idle"}


def test_requests_are_pipelined_within_the_window() -> None:
    ex, kernel, nb = make({}, *[str(i) for i in range(10)], window=3)
    sent_when_first_started: list[int] = []
    ex.on_cell_start = lambda i, cell: sent_when_first_started.append(len(ex.channel.sent)) if i == 0 else None
    cur = run(ex)
    assert cur.done and [c.execution_count for c in nb.cells] == list(range(1, 11))
    assert sent_when_first_started == [3]


def test_error_aborts_the_queue_and_raises() -> None:
    # pipelining is opt-in (window > 1): queued cells come back aborted
    ex, kernel, nb = make({"bad": [("out", "stdout", "so far\n"), ("error", "ZeroDivisionError", "division by zero")]},
                          "ok", "bad", "later1", "later2", window=3)
    with pytest.raises(CellExecutionError) as failed:
        run(ex)
    assert str(failed.value) == "Cell 2 (In [2]) raised ZeroDivisionError: division by zero"
    assert failed.value.facts == {"cell_index": 1, "execution_count": 2, "ename": "ZeroDivisionError",
                                  "evalue": "division by zero"}
    assert [o.output_type for o in nb.cells[1].outputs] == ["stream", "error"]
    assert kernel.ran == ["ok", "bad"]
    for cell in nb.cells[2:]:
        assert cell.outputs == [] and cell.execution_count is None and "execution" not in cell.metadata
        assert cell.metadata.studio_runner.status == "aborted"


def test_allowed_errors_resend_the_aborted_cells_in_order() -> None:
    scripts = {"bad": [("error", "ValueError", "x")], "tagged": [("error", "KeyError", "k")]}
    ex, kernel, nb = make(scripts, "bad", "a", "tagged", "b", "c", allow_errors=True)
    cur = run(ex)
    assert cur.done and cur.cells_failed == 2 and cur.cells_executed == 5
    assert kernel.ran == ["bad", "a", "tagged", "b", "c"]
    assert [c.execution_count for c in nb.cells] == [1, 2, 3, 4, 5]

    ex, kernel, nb = make(scripts, "tagged", "a", "bad", "b")
    nb.cells[0].metadata["tags"] = ["raises-exception"]
    with pytest.raises(CellExecutionError):
        run(ex)
    assert kernel.ran == ["tagged", "a", "bad"] and nb.cells[3].execution_count is None


@pytest.mark.parametrize("evalue", ["", "0", "None"])
def test_clean_system_exit_stops_the_run(evalue: str) -> None:
    ex, kernel, nb = make({"exit": [("error", "SystemExit", evalue)]}, "a", "exit", "later")
    cur = run(ex)
    assert cur.done and cur.exit == "SystemExit" and kernel.ran == ["a", "exit"]
    assert nb.cells[2].execution_count is None and nb.cells[1].outputs[0].ename == "SystemExit"


def test_clean_system_exit_stops_even_when_errors_are_allowed() -> None:
    ex, kernel, nb = make({"exit": [("error", "SystemExit", "")]}, "exit", "later", allow_errors=True)
    cur = run(ex)
    assert cur.exit == "SystemExit" and kernel.ran == ["exit"]


def test_system_exit_1_fails() -> None:
    ex, kernel, nb = make({"exit": [("error", "SystemExit", "1")]}, "exit", "later")
    with pytest.raises(CellExecutionError) as failed:
        run(ex)
    assert failed.value.facts["evalue"] == "1"


def test_restarting_kernel_raises_kernel_died() -> None:
    ex, kernel, nb = make({"die": [("out", "stdout", "bye\n"), ("die",)]}, "a", "die", "b")
    with pytest.raises(KernelDied):
        run(ex)
    assert nb.cells[1].outputs[0].text == "bye\n"


def test_the_cell_where_the_kernel_died_says_so() -> None:
    """Bug: ``os._exit(1)`` left the cell ``pending`` (its execute_input never left the kernel)
    and a SIGKILL left it ``aborted``, neither with a word; now it gets an error output and
    ``failed``, and the run's error (KernelDied) names it."""
    for script, outputs in (([("exit",)], []), ([("out", "stdout", "bye\n"), ("die",)], ["stream"])):
        ex, kernel, nb = make({"die": script}, "a", "die", "b")
        ended: list[tuple[int, str]] = []
        ex.on_cell_end = lambda i, cell, status: ended.append((i, status))  # noqa: B023
        with pytest.raises(KernelDied) as died:
            run(ex)
        assert isinstance(died.value, RuntimeError) and died.value.cell_index == 1
        cell = nb.cells[1]
        assert [o.output_type for o in cell.outputs] == outputs + ["error"]
        assert cell.outputs[-1].ename == "KernelDied" and "kernel died" in cell.outputs[-1].evalue
        assert cell.metadata.papermill.status == "failed" and cell.metadata.studio_runner.status == "failed"
        assert ended == [(0, "completed"), (1, "failed")] and nb.cells[2].outputs == []


def test_kernel_gone_while_waiting_raises_within_seconds() -> None:
    ex, kernel, nb = make({"long": [("hang",)]}, "long")
    start = ex.clock()
    ex.kernel = KernelControl(interrupt=kernel.interrupt, state=lambda: "missing" if ex.clock() - start > 5 else "busy")
    with pytest.raises(KernelDied):
        run(ex)
    assert ex.clock() - start < 15


def test_closed_channel_without_reconnect_raises_kernel_died() -> None:
    ex, kernel, nb = make({"long": [("hang",)]}, "long")
    original_recv = ex.channel.recv

    def drop(timeout: float) -> Any:
        ex.channel.closed = True
        return original_recv(timeout)

    ex.channel.recv = drop  # type: ignore[method-assign]
    with pytest.raises(KernelDied, match="could not be reopened"):
        run(ex)


def test_timeout_interrupts_and_raises() -> None:
    ex, kernel, nb = make({"slow": [("out", "stdout", "started\n"), ("hang",)]}, "slow", "never", cell_timeout=3)
    start = ex.clock()
    with pytest.raises(CellTimeout) as timed_out:
        run(ex)
    assert kernel.interrupts == 1 and 3 <= ex.clock() - start < 10
    assert timed_out.value.facts["cell_index"] == 0
    assert [o.output_type for o in nb.cells[0].outputs] == ["stream", "error"]
    assert nb.cells[0].outputs[1].ename == "KeyboardInterrupt" and kernel.ran == ["slow"]


def test_a_failed_interrupt_on_timeout_is_still_cell_timeout() -> None:
    """Bug: a 503 on the interrupt turned CellTimeout into JupyterHTTPError (and the run's
    notebook got no banner, as the error named no cell). The interrupt is best effort."""
    from studiorunner.errors import JupyterHTTPError

    def refuse() -> None:
        raise JupyterHTTPError("POST api/kernels/k/interrupt failed: HTTP 503", status=503)

    ex, kernel, nb = make({"slow": [("hang",)]}, "slow", cell_timeout=3, interrupt=refuse)
    start = ex.clock()
    with pytest.raises(CellTimeout) as timed_out:
        run(ex)
    assert timed_out.value.cell_index == 0 and isinstance(timed_out.value, TimeoutError)
    assert "did not stop when interrupted" in str(timed_out.value) and ex.clock() - start < 12
    assert nb.cells[0].metadata.studio_runner.timed_out is True
    assert nb.cells[0].metadata.studio_runner.status == "failed"


def test_cell_execution_error_carries_its_fields() -> None:
    ex, kernel, nb = make({"bad": [("error", "ValueError", "nope")]}, "bad")
    with pytest.raises(CellExecutionError) as failed:
        run(ex)
    e = failed.value
    assert (e.cell_index, e.execution_count, e.ename, e.evalue) == (0, 1, "ValueError", "nope")


def test_timeout_with_allow_errors_carries_on() -> None:
    ex, kernel, nb = make({"slow": [("hang",)], "next": [("out", "stdout", "done\n")]}, "slow", "next",
                          cell_timeout=3, allow_errors=True)
    cur = run(ex)
    assert cur.done and cur.cells_failed == 1 and nb.cells[1].outputs[0].text == "done\n"
    assert nb.cells[0].metadata.studio_runner.timed_out is True


def test_timeout_counts_from_start_not_from_queueing() -> None:
    ex, kernel, nb = make({"w2": [("wait", 2)]}, "w2", "w2", "w2", cell_timeout=3)
    cur = run(ex)  # 6 s in all, each cell 2 s: no timeout although the third was queued at t=0
    assert cur.done and kernel.interrupts == 0


def test_deadline_returns_pending_and_resume_collects_replayed_output() -> None:
    scripts = {"long": [("out", "stdout", "before\n"), ("wait", 10), ("out", "stdout", "after\n")]}
    ex, kernel, nb = make(scripts, "a", "long", "c", window=3)
    cur = run(ex, budget=5)
    assert not cur.done and [p.cell for p in cur.pending] == [1, 2] and cur.paused_at is not None
    assert nb.cells[1].outputs[0].text == "before\n"
    ex.channel.close()
    kernel.clock.t += 20  # no socket open: the kernel finishes, the server buffers its messages
    while kernel.step():
        pass
    saved = Cursor.from_dict(json.loads(json.dumps(cur.to_dict())))
    ex2 = resume(kernel, nb)
    cur = ex2.run(saved, deadline=kernel.clock() + 60)
    assert cur.done and cur.cells_executed == 3
    assert nb.cells[1].outputs[0].text == "before\nafter\n" and nb.cells[2].execution_count == 3


def test_lost_replay_is_marked_in_the_cell() -> None:
    scripts = {"long": [("out", "stdout", "before\n"), ("wait", 10), ("out", "stdout", "after\n")]}
    ex, kernel, nb = make(scripts, "long", "next", window=1)
    cur = run(ex, budget=5)
    ex.channel.close()
    kernel.clock.t += 20
    while kernel.step():
        pass
    kernel.outbox.clear()  # the buffer went to someone else
    ex2 = resume(kernel, nb)
    start = kernel.clock()
    cur = ex2.run(Cursor.from_dict(cur.to_dict()), deadline=kernel.clock() + 60)
    assert cur.done and kernel.clock() - start < 5
    assert "was lost" in nb.cells[0].outputs[-1].text
    assert nb.cells[0].metadata.studio_runner.output_lost["from"]
    assert kernel.ran == ["long", "next"] and nb.cells[1].execution_count == 2  # and the run carried on


def test_cursor_round_trips_through_json_and_stays_small() -> None:
    ex, kernel, nb = make({"long": [("wait", 100)]}, *(["long"] + ["x"] * 50), window=3)
    cur = run(ex, budget=2)
    data = json.loads(json.dumps(cur.to_dict()))
    assert Cursor.from_dict(data).to_dict() == data
    assert data["pending"][0]["cell"] == 0  # cell 0 must survive (0 is falsy)
    assert len(json.dumps(data)) < 1000


# -- output another client took while no runner was connected (message numbers) -----------

LONG = {"long": [("out", "stdout", "before\n"), ("wait", 10), ("out", "stdout", "during\n"),
                 ("wait", 20), ("out", "stdout", "after\n")]}


def pause_and_resume(away: float, while_away: Any = None) -> tuple[Any, FakeKernel, Cursor]:
    """Run until the long cell is pending, leave for ``away`` s (``while_away(kernel)`` may
    take buffered messages), then resume on a new channel with the cursor through JSON."""
    ex, kernel, nb = make(LONG, "long", "next", kernel_cls=NumberedKernel)
    cur = run(ex, budget=5)
    assert [p.cell for p in cur.pending] == [0] and cur.kernel_seq is not None
    ex.channel.close()
    kernel.clock.t += away
    while kernel.step():
        pass
    if while_away is not None:
        while_away(kernel)
    saved = Cursor.from_dict(json.loads(json.dumps(cur.to_dict())))
    ex2 = resume(kernel, nb)
    return nb, kernel, ex2.run(saved, deadline=kernel.clock() + 60)


def stderr(cell: Any) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stderr")


def test_full_replay_after_a_pause_gets_no_gap_note() -> None:
    nb, kernel, cur = pause_and_resume(away=8)  # 'during' is printed after the resume: nothing buffered is lost
    assert cur.done and cur.cells_executed == 2
    assert nb.cells[0].outputs[0].text == "before\nduring\nafter\n" and stderr(nb.cells[0]) == ""
    assert "output_lost" not in nb.cells[0].metadata.studio_runner

    nb, kernel, cur = pause_and_resume(away=40)  # all of it buffered while away and replayed
    assert cur.done and nb.cells[0].outputs[0].text == "before\nduring\nafter\n" and stderr(nb.cells[0]) == ""


def test_replayed_numbers_slightly_out_of_order_get_no_gap_note() -> None:
    def swap_first_two(kernel: FakeKernel) -> None:  # the kernel's threads race each other
        kernel.outbox[0], kernel.outbox[1] = kernel.outbox[1], kernel.outbox[0]

    nb, kernel, cur = pause_and_resume(away=40, while_away=swap_first_two)
    assert cur.done and stderr(nb.cells[0]) == "" and "output_lost" not in nb.cells[0].metadata.studio_runner


def test_numbers_jumping_past_what_we_saw_mark_the_cell_and_the_run_carries_on() -> None:
    def another_client_takes_the_buffer(kernel: FakeKernel) -> None:
        assert kernel.outbox[0]["content"]["text"] == "during\n"
        kernel.outbox.clear()

    nb, kernel, cur = pause_and_resume(away=12, while_away=another_client_takes_the_buffer)
    assert cur.done and cur.cells_executed == 2 and kernel.ran == ["long", "next"]
    cell = nb.cells[0]
    assert [o.text for o in cell.outputs if o.name == "stdout"] == ["before\nafter\n"]
    assert "may be incomplete" in stderr(cell) and "another client" in stderr(cell)
    lost = cell.metadata.studio_runner.output_lost
    assert lost["from"] < lost["to"] and lost["messages_not_replayed"] == 1
    assert cell.metadata.studio_runner.status == "completed"
    assert nb.cells[1].execution_count == 2
    assert stderr(nb.cells[1]) == "" and "output_lost" not in nb.cells[1].metadata.studio_runner


def test_lost_reply_gets_one_note_from_the_idle_check() -> None:
    nb, kernel, cur = pause_and_resume(away=40, while_away=lambda kernel: kernel.outbox.clear())
    assert cur.done and stderr(nb.cells[0]).count("[studio-runner]") == 1 and "was lost" in stderr(nb.cells[0])


def test_reopened_socket_checks_the_numbers_too() -> None:
    for taken in (False, True):
        ex, kernel, nb = make(LONG, "long", kernel_cls=NumberedKernel)
        first = ex.channel
        original_recv = first.recv

        def drop_at_eight(timeout: float, first: Any = first, original_recv: Any = original_recv,
                          kernel: FakeKernel = kernel, taken: bool = taken) -> Any:
            if kernel.clock.t >= 1008 and not first.closed:
                first.closed = True
                kernel.clock.t += 4  # the socket is down while 'during' is printed
                while kernel.step():
                    pass
                if taken:
                    kernel.outbox.clear()
            return original_recv(timeout)

        first.recv = drop_at_eight  # type: ignore[method-assign]
        ex.kernel = KernelControl(interrupt=kernel.interrupt, state=lambda kernel=kernel: kernel.state,
                                  reconnect=lambda kernel=kernel: FakeChannel(kernel))
        cur = run(ex)
        assert cur.done
        if taken:
            assert "may be incomplete" in stderr(nb.cells[0]) and nb.cells[0].metadata.studio_runner.output_lost
        else:
            assert nb.cells[0].outputs[0].text == "before\nduring\nafter\n" and stderr(nb.cells[0]) == ""


# -- the run's journal: what the socket missed, recovered in order, nothing twice ----------

def journal_of(kernel: FakeKernel) -> Any:
    return lambda: list(kernel.journal)


def test_journal_recovers_output_another_client_took() -> None:
    def another_client_takes_the_buffer(kernel: FakeKernel) -> None:
        kernel.outbox.clear()

    ex, kernel, nb = make(LONG, "long", "next", kernel_cls=NumberedKernel)
    cur = run(ex, budget=5)
    ex.channel.close()
    kernel.clock.t += 12  # 'during' is printed while away
    while kernel.step():
        pass
    kernel.outbox.clear()  # no replay
    cur = resume(kernel, nb, journal=journal_of(kernel)).run(
        Cursor.from_dict(json.loads(json.dumps(cur.to_dict()))), deadline=kernel.clock() + 60)
    assert cur.done and nb.cells[0].outputs[0].text == "before\nduring\nafter\n" and stderr(nb.cells[0]) == ""
    assert "output_lost" not in nb.cells[0].metadata.studio_runner and nb.cells[1].execution_count == 2


def test_journal_recovers_a_cell_that_ended_while_nobody_listened() -> None:
    ex, kernel, nb = make(LONG, "long", "next", kernel_cls=NumberedKernel)
    cur = run(ex, budget=5)
    ex.channel.close()
    kernel.clock.t += 40  # the cell finished while away: its reply and idle went nowhere
    while kernel.step():
        pass
    kernel.outbox.clear()
    cur = resume(kernel, nb, journal=journal_of(kernel)).run(Cursor.from_dict(cur.to_dict()),
                                                             deadline=kernel.clock() + 60)
    assert cur.done and cur.cells_executed == 2
    assert nb.cells[0].outputs[0].text == "before\nduring\nafter\n" and stderr(nb.cells[0]) == ""
    assert nb.cells[0].metadata.papermill.status == "completed"


def test_journal_with_a_full_replay_adds_nothing_twice() -> None:
    ex, kernel, nb = make(LONG, "long", kernel_cls=NumberedKernel)
    cur = run(ex, budget=5)
    ex.channel.close()
    kernel.clock.t += 40
    while kernel.step():
        pass  # the server replays all of it
    cur = resume(kernel, nb, journal=journal_of(kernel)).run(Cursor.from_dict(cur.to_dict()),
                                                             deadline=kernel.clock() + 60)
    assert cur.done and nb.cells[0].outputs[0].text == "before\nduring\nafter\n"
    assert [o.output_type for o in nb.cells[0].outputs] == ["stream"]


def test_dropped_sockets_without_replay_lose_nothing_with_a_journal() -> None:
    """As behind a proxy that strips session_id: every reopened socket is a new session."""
    scripts = {"tick": [e for i in range(6) for e in (("out", "stdout", f"{i}\n"), ("wait", 2 * (i + 1)))]}
    ex, kernel, nb = make(scripts, "tick", kernel_cls=NumberedKernel)
    drops = {"n": 0}

    def dropping_recv(channel: Any, original: Any) -> Any:
        def recv(timeout: float) -> Any:
            if kernel.clock.t >= 1003 + 4 * drops["n"] and drops["n"] < 3:
                drops["n"] += 1
                channel.closed = True
                kernel.clock.t += 1.5  # down while the cell prints
                while kernel.step():
                    pass
                kernel.outbox.clear()  # a new session_id: nothing replayed
            return original(timeout)
        return recv

    def reconnect() -> FakeChannel:
        channel = FakeChannel(kernel)
        channel.recv = dropping_recv(channel, channel.recv)  # type: ignore[method-assign]
        return channel

    ex.channel.recv = dropping_recv(ex.channel, ex.channel.recv)  # type: ignore[method-assign]
    ex.kernel = KernelControl(interrupt=kernel.interrupt, state=lambda: kernel.state, reconnect=reconnect,
                              journal=journal_of(kernel))
    cur = run(ex)
    assert drops["n"] == 3 and cur.done
    assert nb.cells[0].outputs[0].text == "".join(f"{i}\n" for i in range(6)) and stderr(nb.cells[0]) == ""


def test_a_journal_that_cannot_cover_the_gap_still_marks_it() -> None:
    def unreadable() -> list[dict[str, Any]]:
        raise FileNotFoundError("the run's journal is missing")

    nb, kernel, cur = pause_and_resume(away=12, while_away=lambda kernel: kernel.outbox.clear())
    assert "may be incomplete" in stderr(nb.cells[0])  # no journal at all
    ex, kernel, nb = make(LONG, "long", "next", kernel_cls=NumberedKernel)
    cur = run(ex, budget=5)
    ex.channel.close()
    kernel.clock.t += 12
    while kernel.step():
        pass
    kernel.outbox.clear()
    cur = resume(kernel, nb, journal=unreadable).run(Cursor.from_dict(cur.to_dict()), deadline=kernel.clock() + 60)
    assert cur.done and "may be incomplete" in stderr(nb.cells[0]) and nb.cells[0].metadata.studio_runner.output_lost


def test_journal_finds_a_lost_reply_that_came_before_the_last_message_received() -> None:
    """The shell channel is not ordered with iopub: a reply lost in a drop may precede the
    idle that was received (seen behind a proxy that strips session_id)."""
    from studiorunner.execution.journal import recoverable

    def msg(msg_id: str, channel: str, msg_type: str) -> dict[str, Any]:
        return {"msg_id": msg_id, "channel": channel, "msg_type": msg_type, "parent_header": {"msg_id": "req"}}

    journal = [msg("k_1_1", "iopub", "stream"), msg("k_1_2", "shell", "execute_reply"), msg("k_1_3", "iopub", "status")]
    found = recoverable(journal, after="k_1_3", cells={"req"}, until=None, received=set(), replied=set())
    assert [m["msg_id"] for m in found or []] == ["k_1_2"]
    assert recoverable(journal, after="k_1_3", cells={"req"}, until=None, received=set(), replied={"req"}) == []
    assert recoverable(journal, after="k_9_9", cells={"req"}, until=None, received=set(), replied=set()) is None


class IdleLosingKernel(FakeKernel):
    """Loses the ``status: idle`` of the cells in ``LOSE`` (as jupyter_server under a flood of
    output does), and its server then reports the kernel busy for ever, as jupyter_server does."""

    LOSE = {"flood"}

    def _msg(self, channel: str, msg_type: str, content: dict[str, Any], parent: dict[str, Any] | None) -> None:
        super()._msg(channel, msg_type, content, parent)
        if msg_type == "status" and content.get("execution_state") == "idle" and parent \
                and parent["content"].get("code") in self.LOSE:
            self.outbox.pop()  # lost on its way to the client (the run's journal has it)

    def _complete(self, req: dict[str, Any], reply: dict[str, Any]) -> bool:
        super()._complete(req, reply)
        if req["content"]["code"] in self.LOSE:
            self.state = "busy"
        return True


def test_a_cell_whose_idle_never_comes_ends_after_the_iopub_timeout_marked() -> None:
    ex, kernel, nb = make({"flood": [("out", "stdout", "99\n")]}, "flood", "after",
                          kernel_cls=IdleLosingKernel, iopub_timeout=4.0)
    cur = run(ex, budget=60)
    assert cur.done and cur.cells_executed == 2 and kernel.ran == ["flood", "after"]
    flood = nb.cells[0]
    assert flood.metadata.studio_runner["status"] == "completed"
    assert flood.metadata.studio_runner["output_lost"] == {"idle_missing": True, "iopub_timeout_seconds": 4.0}
    assert flood.outputs[0].text == "99\n"
    assert "the end of this cell's output may be missing" in flood.outputs[-1].text
    assert nb.cells[1].metadata.studio_runner["status"] == "completed"


def test_the_iopub_timeout_holds_across_a_pause_between_the_reply_and_the_idle() -> None:
    ex, kernel, nb = make({"flood": [("out", "stdout", "99\n")]}, "flood", "after", kernel_cls=IdleLosingKernel)
    kernel.reply_first = True
    cur = ex.run(Cursor(), deadline=ex.clock() + 1.0)  # the reply is in, the idle is not: pause
    assert not cur.done and cur.pending[0].reply == "ok" and not cur.pending[0].idle
    cur = run(resume(kernel, nb), cursor=Cursor.from_dict(json.loads(json.dumps(cur.to_dict()))), budget=60)
    assert cur.done and kernel.ran == ["flood", "after"]
    assert nb.cells[0].metadata.studio_runner["output_lost"]["idle_missing"] is True


def test_a_lost_idle_is_recovered_from_the_journal_when_it_has_the_cells_end() -> None:
    scripts = {"flood": [("out", "stdout", "1\n"), ("clear", True), ("out", "stdout", "2\n")]}
    ex, kernel, nb = make(scripts, "flood", "after", kernel_cls=IdleLosingKernel)
    ex.kernel = KernelControl(interrupt=kernel.interrupt, state=lambda: kernel.state, journal=journal_of(kernel))
    dropped = {"n": 0}
    original = ex.channel.recv

    def recv(timeout: float) -> Any:  # the cell's last output is lost with its idle
        msg = original(timeout)
        if msg and msg["msg_type"] == "stream" and msg["content"]["text"] == "2\n" and not dropped["n"]:
            dropped["n"] += 1
            return None
        return msg

    ex.channel.recv = recv  # type: ignore[method-assign]
    cur = run(ex, budget=60)
    assert cur.done and dropped["n"] == 1 and kernel.ran == ["flood", "after"]
    assert [o.text for o in nb.cells[0].outputs] == ["2\n"]  # from the journal, nothing marked
    assert "output_lost" not in nb.cells[0].metadata.studio_runner


def test_a_journal_line_with_a_lone_surrogate_reads_as_a_replacement_character() -> None:
    from studiorunner.execution.journal import parse

    line = json.dumps({"msg_id": "m", "content": {"text": "file-\udc80.csv \U0001f600"}})  # as the kernel writes it
    assert parse(line + "\n")[0]["content"]["text"] == "file-\ufffd.csv \U0001f600"
