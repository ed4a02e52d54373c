"""The kernel channel and cell executor against a real jupyter_server + ipykernel."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from studiorunner.errors import CellExecutionError, CellTimeout, JupyterHTTPError, KernelDied, LoginFailed
from studiorunner.execution.cursor import Cursor
from studiorunner.execution.executor import CellExecutor
from studiorunner.execution.options import ExecutorOptions, KernelControl
from studiorunner.jupyter.connection import KernelChannel
from studiorunner.jupyter.kernel_protocol import V1_SUBPROTOCOL, kernel_info_request, new_session_id
from tests.integration.kernel_server import JupyterServer, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    srv = start_server(tmp_path_factory.mktemp("jupyter-root"))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def kernel(server: JupyterServer) -> Iterator[str]:
    kid = server.start_kernel()
    try:
        yield kid
    finally:
        server.shutdown_kernel(kid)


def notebook(*sources: str) -> NotebookNode:
    return new_notebook(cells=[new_code_cell(s) for s in sources])


def executor(server: JupyterServer, kid: str, nb: NotebookNode, channel: KernelChannel, session: str,
             **kw: object) -> CellExecutor:
    options: dict[str, object] = dict(cell_timeout=30, allow_errors=False)
    options.update(kw)
    return CellExecutor(channel, nb, session=session,
                        kernel=KernelControl(interrupt=lambda: server.interrupt(kid),
                                             state=lambda: server.kernel_state(kid)),
                        options=ExecutorOptions(**options))  # type: ignore[arg-type]


def run(server: JupyterServer, kid: str, nb: NotebookNode, budget: float = 30, **kw: object) -> Cursor:
    session = new_session_id()
    with server.open(kid, session) as channel:
        return executor(server, kid, nb, channel, session, **kw).run(Cursor(), deadline=time.monotonic() + budget)


def test_channel_speaks_v1_and_json(server: JupyterServer, kernel: str) -> None:
    session = new_session_id()
    with server.open(kernel, session) as channel:
        assert channel.subprotocol == V1_SUBPROTOCOL
        request = kernel_info_request(session=session)
        channel.send(request)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            msg = channel.recv(1.0)
            if msg and msg["msg_type"] == "kernel_info_reply" and msg["parent_header"]["msg_id"] == request["msg_id"]:
                assert msg["channel"] == "shell"
                assert msg["content"]["language_info"]["name"] == "python"
                break
        else:
            pytest.fail("no kernel_info_reply")
        assert channel.recv(0.05) is None or True  # a quiet socket times out rather than blocking


def test_handshake_errors_name_the_path_not_the_secrets(server: JupyterServer, kernel: str) -> None:
    url = server.ws_url(kernel, "sess-secret-query")
    with pytest.raises(LoginFailed) as refused:
        KernelChannel.open(url, headers={"Authorization": "token wrong-token-123"}, timeout=5)
    assert "403" in str(refused.value) or "401" in str(refused.value)
    assert "sess-secret-query" not in str(refused.value) and "wrong-token-123" not in str(refused.value)
    with pytest.raises(JupyterHTTPError) as missing:
        KernelChannel.open(server.ws_url("00000000-0000-0000-0000-000000000000", "s"), headers=server.headers)
    assert missing.value.facts["status"] == 404
    assert server.token not in str(missing.value)


def test_every_output_type_end_to_end(server: JupyterServer, kernel: str) -> None:
    nb = new_notebook(cells=[
        new_markdown_cell("# title"),
        new_code_cell("import sys\nprint('out 1')\nprint('out 2')\nprint('err', file=sys.stderr)"),
        new_code_cell("from IPython.display import display, clear_output, HTML\n"
                      "h = display(HTML('<b>first</b>'), display_id='d1')\n'result'"),
        new_code_cell("h.update(HTML('<b>updated</b>'))"),
        new_code_cell("print('gone')\nclear_output()\nprint('kept', end='')"),
        new_code_cell("print('a', end='')\nclear_output(wait=True)\nprint('b', end='')"),
        new_code_cell("   \n"),
        new_code_cell("raise ValueError('allowed')", metadata={"tags": ["raises-exception"]}),
        new_code_cell("print('after')"),
    ])
    cur = run(server, kernel, nb)
    assert cur.done and cur.cells_failed == 1 and cur.cells_executed == 7
    c = nb.cells
    assert [o["name"] for o in c[1].outputs] == ["stdout", "stderr"]
    assert c[1].outputs[0]["text"] == "out 1\nout 2\n"
    assert c[2].outputs[0]["output_type"] == "display_data"
    assert c[2].outputs[0]["data"]["text/html"] == "<b>updated</b>"  # updated from the next cell
    assert c[2].outputs[1]["output_type"] == "execute_result" and c[2].outputs[1]["execution_count"] == 2
    assert c[3].outputs == []
    assert [o["text"] for o in c[4].outputs] == ["kept"]
    assert [o["text"] for o in c[5].outputs] == ["b"]
    assert c[6].execution_count is None and c[6].outputs == []
    err = c[7].outputs[-1]
    assert (err["output_type"], err["ename"], err["evalue"]) == ("error", "ValueError", "allowed")
    assert c[8].outputs[0]["text"] == "after\n" and c[8].execution_count == 7
    assert set(c[1].metadata["execution"]) == {
        "iopub.status.busy", "iopub.execute_input", "shell.execute_reply", "iopub.status.idle"}


def test_error_fails_the_run_and_later_cells_stay_unexecuted(server: JupyterServer, kernel: str) -> None:
    nb = notebook("x = 1", "x / 0", "print('never')", "print('never either')")
    with pytest.raises(CellExecutionError) as failed:
        run(server, kernel, nb)
    e = failed.value
    assert str(e) == "Cell 2 (In [2]) raised ZeroDivisionError: division by zero"
    assert e.facts == {"cell_index": 1, "execution_count": 2, "ename": "ZeroDivisionError",
                       "evalue": "division by zero"}
    assert nb.cells[1].outputs[0]["ename"] == "ZeroDivisionError"
    for cell in nb.cells[2:]:  # by default a cell is sent only after the previous one finished
        assert cell.outputs == [] and cell.execution_count is None
        assert cell.metadata.get("studio_runner", {}).get("status") in (None, "pending")
    # the aborted queue is drained: the kernel settles to idle (the server's view lags a little)
    deadline = time.monotonic() + 5
    while server.kernel_state(kernel) != "idle" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.kernel_state(kernel) == "idle"


@pytest.mark.parametrize("code", ["import sys; sys.exit()", "import sys; sys.exit(0)", "raise SystemExit"])
def test_clean_system_exit_stops_without_failing(server: JupyterServer, kernel: str, code: str) -> None:
    nb = notebook("print('before')", code, "print('not run')")
    cur = run(server, kernel, nb)
    assert cur.done and cur.exit == "SystemExit"
    assert [o["ename"] for o in nb.cells[1].outputs if o["output_type"] == "error"] == ["SystemExit"]
    assert nb.cells[1].metadata["studio_runner"]["status"] == "completed"
    assert nb.cells[2].outputs == [] and nb.cells[2].execution_count is None


def test_system_exit_1_fails(server: JupyterServer, kernel: str) -> None:
    with pytest.raises(CellExecutionError) as failed:
        run(server, kernel, notebook("import sys; sys.exit(1)", "print('not run')"))
    assert failed.value.facts["ename"] == "SystemExit" and failed.value.facts["evalue"] == "1"


def test_dead_kernel_raises_within_seconds(server: JupyterServer, kernel: str) -> None:
    start = time.monotonic()
    with pytest.raises(KernelDied):
        run(server, kernel, notebook("print('hi')", "import os; os._exit(1)", "print('never')"))
    assert time.monotonic() - start < 30  # not a hang until the test's own timeout


def test_input_fails_fast(server: JupyterServer, kernel: str) -> None:
    start = time.monotonic()
    with pytest.raises(CellExecutionError) as failed:
        run(server, kernel, notebook("name = input('name: ')"))
    assert failed.value.facts["ename"] == "StdinNotImplementedError"
    assert time.monotonic() - start < 30  # not a hang waiting for an answer


def test_cell_timeout_interrupts_and_fails(server: JupyterServer, kernel: str) -> None:
    nb = notebook("import time\nprint('start', flush=True)\ntime.sleep(30)", "print('never')")
    start = time.monotonic()
    with pytest.raises(CellTimeout) as timed_out:
        run(server, kernel, nb, cell_timeout=1.5)
    assert time.monotonic() - start < 25  # interrupted, not the cell's 30 s
    assert timed_out.value.facts["cell_index"] == 0
    assert nb.cells[0].outputs[0]["text"] == "start\n"
    assert nb.cells[0].outputs[-1]["ename"] == "KeyboardInterrupt"
    assert nb.cells[1].execution_count is None


def test_cell_outlives_deadline_and_resumes_on_a_new_socket(server: JupyterServer, kernel: str) -> None:
    nb = notebook(
        "print('first')",
        "import time\nprint('before', flush=True)\ntime.sleep(1.5)\nprint('during', flush=True)\n"
        "time.sleep(1.5)\nprint('after')\n'value'",
        "print('last')",
    )
    session = new_session_id()
    with server.open(kernel, session) as channel:
        cur = executor(server, kernel, nb, channel, session).run(Cursor(), deadline=time.monotonic() + 1.2)
    # one cell at a time by default: the long cell is pending, the last one not sent yet
    assert not cur.done and [p.cell for p in cur.pending] == [1] and cur.next_cell == 2
    assert nb.cells[1].outputs[0]["text"] == "before\n"
    time.sleep(1.5)  # 'during' is printed while no socket is open: jupyter_server buffers it
    saved = Cursor.from_dict(cur.to_dict())  # through JSON, as Step Functions carries it
    with server.open(kernel, session) as channel:
        cur = executor(server, kernel, nb, channel, session).run(saved, deadline=time.monotonic() + 20)
    assert cur.done and cur.cells_executed == 3
    assert nb.cells[1].outputs[0] == {"output_type": "stream", "name": "stdout", "text": "before\nduring\nafter\n"}
    assert nb.cells[1].outputs[1]["data"]["text/plain"] == "'value'"
    assert nb.cells[1].execution_count == 2 and nb.cells[2].outputs[0]["text"] == "last\n"
    assert "output_lost" not in nb.cells[1].metadata["studio_runner"]


def test_lost_replay_is_marked_not_hidden(server: JupyterServer, kernel: str) -> None:
    # 'before' must reach the first connection even on a loaded machine: the cell sleeps
    # well past the first deadline, and the test waits until it has finished.
    nb = notebook("import time\nprint('before', flush=True)\ntime.sleep(2)\nprint('during')", "print('next')")
    session = new_session_id()
    with server.open(kernel, session) as channel:
        cur = executor(server, kernel, nb, channel, session, window=1).run(
            Cursor(), deadline=time.monotonic() + 1.5)
    assert [p.cell for p in cur.pending] == [0]
    assert nb.cells[0].outputs[0]["text"] == "before\n"
    time.sleep(2.5)
    # another client takes the buffer: a different session_id gets no replay
    other = new_session_id()
    with server.open(kernel, other) as channel:
        start = time.monotonic()
        cur = executor(server, kernel, nb, channel, other).run(cur, deadline=time.monotonic() + 20)
    assert time.monotonic() - start < 20  # no wait for a replay that never comes
    assert cur.done
    out = nb.cells[0].outputs
    assert out[0]["text"] == "before\n"
    assert "was lost" in out[-1]["text"] and out[-1]["name"] == "stderr"
    assert nb.cells[0].metadata["studio_runner"]["output_lost"]["from"]
    assert nb.cells[1].outputs[0]["text"] == "next\n"


def test_two_hundred_pipelined_cells(server: JupyterServer, kernel: str) -> None:
    nb = notebook(*[f"{i}" for i in range(200)])
    cur = run(server, kernel, nb)  # how fast: bench/ (a wall-clock bound here fails on a loaded machine)
    assert cur.done and cur.cells_executed == 200
    assert [c.execution_count for c in nb.cells] == list(range(1, 201))
    assert [c.outputs[0]["data"]["text/plain"] for c in nb.cells] == [str(i) for i in range(200)]


def test_a_transient_handshake_failure_is_retried_for_kernels_and_terminals(standin_factory) -> None:
    # Issue 9: one 503 (or 401) on the kernel WebSocket handshake in StartKernel was not
    # retried, although REST calls were. Every socket now opens through one connection
    # module that rides out 502/503/504 (and a first 401) within a short budget.
    from studiorunner.errors import JupyterHTTPError as HTTPError
    from studiorunner.jupyter.connection import TerminalChannel
    from studiorunner.jupyter.http import JupyterHTTP
    from studiorunner.jupyter.rest import JupyterClient

    standin = standin_factory("jupyter")
    http = JupyterHTTP(standin.jupyter_url, token=standin.token)
    jupyter = JupyterClient(http)
    kid = jupyter.create_kernel("python3")["id"]
    try:
        channels = f"/api/kernels/{kid}/channels"
        standin.set_faults(http_errors=[{"path_regex": channels, "status": 503, "count": 2},
                                        {"path_regex": channels, "status": 401, "count": 1}])
        ws = jupyter.channels(kid, "sess-in-query")
        with KernelChannel.open(ws.url, headers=ws.headers, timeout=10) as channel:
            request = kernel_info_request(session="s")
            channel.send(request)
            deadline = time.monotonic() + 10
            while (msg := channel.recv(1.0)) is None or msg["msg_type"] != "kernel_info_reply":
                assert time.monotonic() < deadline
        assert all(rule["count"] == 0 for rule in standin.set_faults()["http_errors"])

        name = http.post("api/terminals", json={}).json()["name"]
        standin.set_faults(http_errors=[{"path_regex": f"terminals/websocket/{name}$", "status": 502, "count": 1}])
        term = http.websocket(f"terminals/websocket/{name}")
        TerminalChannel.open(term.url, headers=term.headers, timeout=10).close()
        http.delete(f"api/terminals/{name}")

        # What does not pass within the budget, or is no transient failure, is named once.
        standin.set_faults(http_errors=[{"path_regex": channels, "status": 503, "count": 100}])
        with pytest.raises(HTTPError) as unavailable:
            KernelChannel.open(ws.url, headers=ws.headers, timeout=5, retry_seconds=2.0)
        assert unavailable.value.facts["status"] == 503 and "attempts" in str(unavailable.value)
        standin.set_faults(http_errors=[{"path_regex": channels, "status": 401, "count": 2}])
        with pytest.raises(LoginFailed):
            KernelChannel.open(ws.url, headers=ws.headers, timeout=5)
        assert "sess-in-query" not in str(unavailable.value) and standin.token not in str(unavailable.value)
    finally:
        standin.set_faults(http_errors=[])
        jupyter.delete_kernel(kid)


def _exchange(channel: KernelChannel, request: dict, timeout: float = 30) -> list[dict]:
    """Send ``request``; every message until its reply and idle (in arrival order)."""
    channel.send(request)
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    reply = idle = False
    while not (reply and idle) and time.monotonic() < deadline:
        msg = channel.recv(deadline - time.monotonic())
        if msg is None or msg.get("parent_header", {}).get("msg_id") != request["msg_id"]:
            continue
        got.append(msg)
        reply = reply or msg["msg_type"] == "execute_reply"
        idle = idle or (msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle")
    assert reply and idle, got
    return got


def test_the_journal_holds_the_runs_messages_in_the_order_they_arrive(server: JupyterServer, kernel: str) -> None:
    """The kernel side of the run's journal (execution/journal.py) on a real ipykernel: the run's
    own messages, in arrival order, nothing of another session's, the user's namespace untouched."""
    from studiorunner.execution import journal
    from studiorunner.jupyter.kernel_protocol import execute_request

    run_session, other = new_session_id(), new_session_id()
    path = "studio-runner/runs/it-journal/journal.jsonl"
    setup = execute_request(journal.setup_code(path, kernel_cwd="", run_session=run_session),
                            session=new_session_id(), silent=True, store_history=False, stop_on_error=False)
    code = ("import sys\nfor i in range(40):\n    print(i, flush=True)\n    print('e', i, file=sys.stderr)\n"
            "    if i % 10 == 0:\n        display(i)\nprint(sorted(k for k in globals() if 'studio_runner' in k))")
    with server.open(kernel, run_session) as channel:
        assert [m for m in _exchange(channel, setup) if m["msg_type"] == "execute_reply"][0]["content"]["status"] == "ok"
        ours = _exchange(channel, execute_request(code, session=run_session))
        theirs = _exchange(channel, execute_request("print('not the run')", session=other))
    entries = journal.parse((server.root / path).read_text())
    iopub = [m["msg_id"] for m in ours if m["channel"] == "iopub"]
    assert [e["msg_id"] for e in entries if e["channel"] == "iopub"] == iopub
    assert [e["msg_type"] for e in entries if e["channel"] == "shell"] == ["execute_reply"]
    assert not {m["msg_id"] for m in theirs} & {e["msg_id"] for e in entries}
    stdout = "".join(m["content"]["text"] for m in ours if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")
    assert stdout.endswith("39\n[]\n")  # the setup left nothing in the user's namespace
    assert [m for m in ours if m["msg_type"] == "execute_input"][0]["content"]["execution_count"] == 1
