"""Never touch a person's kernel (issue 8 point 1, REAL-STUDIO K1).

``POST api/sessions`` on a path that already has a session answers *that* session: a run
that asked for a session on the notebook's own path while its owner had it open in Studio
would execute in the person's kernel, and Cleanup would then shut it down. The run's
session has a path of its own, beside the notebook (so the kernel's working directory is
still the notebook's folder), and Cleanup removes only what the run recorded.
"""

from __future__ import annotations

import json
import time
import uuid

import websocket
from e2e_support import Env, stream_text, write_notebook


def _jupyter(env: Env):
    """A logged-in REST client for the stand-in's Jupyter, got the way the steps get theirs."""
    from studiorunner.steps import _runtime

    return _runtime.services().target(None).login()


def _execute(http, kernel_id: str, code: str, timeout: float = 30.0) -> str:
    """Run ``code`` in a kernel over a plain WebSocket (as JupyterLab does); return its stdout."""
    target = http.websocket(f"api/kernels/{kernel_id}/channels", {"session_id": uuid.uuid4().hex})
    ws = websocket.create_connection(target.url, header=[f"{k}: {v}" for k, v in target.headers.items()],
                                     timeout=timeout)
    msg_id = uuid.uuid4().hex
    ws.send(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "person", "session": uuid.uuid4().hex,
                   "date": "2026-01-01T00:00:00Z", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }))
    out, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)
    finally:
        ws.close()
    raise TimeoutError(f"no idle after {code!r}")


def test_a_persons_open_notebook_keeps_its_kernel_and_variables(local_env):
    env = local_env("studio-space")
    path = write_notebook(env.root, "work/report.ipynb", "x = 1\nprint('run x', x)")
    failing = write_notebook(env.root, "work/broken.ipynb", "x = 2\nraise ValueError('boom')")
    http = _jupyter(env)
    # The person opens both notebooks in JupyterLab: a session on each path, a variable in each kernel.
    person = {}
    for nb in (path, failing):
        session = http.post("api/sessions", json={"path": nb, "name": nb, "type": "notebook",
                                                  "kernel": {"name": "python3"}}).json()
        assert _execute(http, session["kernel"]["id"], "secret = 'the person''s work'; print('set')") == "set\n"
        person[nb] = session

    ok = env.run({"notebook": path})
    failed = env.run({"notebook": failing})

    assert ok.succeeded, ok.cause
    assert stream_text(env.output(ok).cells[0]) == "run x 1\n"
    assert failed.status == "FAILED" and failed.error == "CellExecutionError"
    sessions = {s["id"]: s for s in env.running()["sessions"]}
    for nb, session in person.items():
        # Same session, same kernel, and the kernel still holds the person's variable: the run
        # neither ran in it (x is not defined there) nor shut it down.
        assert sessions.get(session["id"], {}).get("kernel_id") == session["kernel"]["id"], (nb, sessions)
        assert _execute(http, session["kernel"]["id"], "print(secret)") == "the persons work\n"
        assert _execute(http, session["kernel"]["id"], "print('x' in dir())") == "False\n"
    # Only the person's sessions and kernels are left: the runs removed their own.
    assert sorted(sessions) == sorted(s["id"] for s in person.values())
    assert sorted(k["id"] for k in env.running()["kernels"]) == sorted(s["kernel"]["id"] for s in person.values())


def test_relative_paths_read_the_notebooks_own_folder(local_env):
    env = local_env("studio-space")
    (env.root / "data").mkdir()
    (env.root / "data" / "data.csv").write_text("a,b\n1,2\n")
    (env.root / "data.csv").write_text("the root's file, not the notebook's\n")
    path = write_notebook(env.root, "data/read.ipynb", "import os\nprint(open('data.csv').read(), end='')",
                          "print(os.path.basename(os.getcwd()))")

    execution = env.run({"notebook": path})

    assert execution.succeeded, execution.cause
    cells = env.output(execution).cells
    assert stream_text(cells[0]) == "a,b\n1,2\n"
    assert stream_text(cells[1]) == "data\n"
