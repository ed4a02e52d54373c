"""Terminal commands against a real jupyter_server (terminado), in bash and in dash.

The module starts its own servers on 127.0.0.1 (one per shell) and kills them by PID.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from studiorunner.errors import CommandFailed, CommandTimeout
from studiorunner.jupyter.connection import TerminalChannel
from studiorunner.terminal.commands import run_commands, summary
from studiorunner.terminal.session import TerminalSession

SHELLS = [s for s in ("/bin/bash", "/bin/dash") if shutil.which(s)]


@dataclass(frozen=True)
class _WS:
    url: str
    headers: dict[str, str]


class TokenREST:
    """The smallest client with the shape TerminalSession expects (like JupyterHTTP's)."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.headers = {"Authorization": f"token {token}"}

    def get(self, path: str) -> requests.Response:
        response = requests.get(f"{self.base}/{path}", headers=self.headers, timeout=10)
        response.raise_for_status()
        return response

    def post(self, path: str, *, json=None) -> requests.Response:
        response = requests.post(f"{self.base}/{path}", json=json, headers=self.headers, timeout=10)
        response.raise_for_status()
        return response

    def delete(self, path: str) -> requests.Response:
        response = requests.delete(f"{self.base}/{path}", headers=self.headers, timeout=10)
        response.raise_for_status()
        return response

    def websocket(self, path: str) -> _WS:
        return _WS(self.base.replace("http://", "ws://") + "/" + path, dict(self.headers))

    def open_channel(self, path: str) -> TerminalChannel:
        ws = self.websocket(path)
        return TerminalChannel.open(ws.url, headers=ws.headers)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", params=SHELLS, ids=[Path(s).name for s in SHELLS])
def server(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, SHELL=request.param)
    process = subprocess.Popen(
        [
            sys.executable, "-m", "jupyter_server", "--ServerApp.ip=127.0.0.1", f"--port={port}",
            "--allow-root", f"--ServerApp.token={token}", "--no-browser", f"--ServerApp.root_dir={root}",
        ],
        # In Studio the server runs from the home directory, which is also its root.
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    request.addfinalizer(lambda: _stop(process))
    rest = TokenREST(f"http://127.0.0.1:{port}", token)
    deadline = time.monotonic() + 30
    while True:
        try:
            rest.get("api/status")
            break
        except requests.RequestException:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("jupyter_server did not start") from None
            time.sleep(0.1)
    return rest, root


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


@pytest.fixture
def terminal(server):
    rest, _ = server
    with TerminalSession(rest=rest, open_channel=rest.open_channel, interrupt_grace=3) as session:
        yield session


def _terminal_names(rest: TokenREST) -> set[str]:
    return {t["name"] for t in rest.get("api/terminals").json()}


def test_commands_succeed_and_the_shell_state_persists(server, terminal):
    _, root = server
    log = io.StringIO()
    results = run_commands(
        terminal, ["echo hello", "pwd", "mkdir sub && cd sub", "pwd", "export GREETING=salut", 'echo "$GREETING"'],
        timeout=10, allow_failure=False, log=log,
    )
    assert [r.exit_status for r in results] == [0] * 6
    assert results[0].output == "hello\n"
    assert results[1].output == f"{root}\n"
    assert results[3].output == f"{root}/sub\n"
    assert results[5].output == "salut\n"
    text = log.getvalue()
    assert "$ echo hello\nhello\n=== [1] exit status 0 after" in text
    assert json.loads(json.dumps(summary(results)))[0]["command"] == "echo hello"


def test_a_failing_command_raises_with_its_status_and_output(terminal):
    with pytest.raises(CommandFailed) as caught:
        run_commands(terminal, ["echo before; echo 'it broke' >&2; exit_three() { return 3; }; exit_three", "echo never"],
                     timeout=10, allow_failure=False, log=None)
    message = str(caught.value)
    assert "exit status 3" in message and "exit_three" in message
    assert "before\n" not in message  # the output goes to commands.log, not into the cause
    assert caught.value.facts["exit_status"] == 3
    # The terminal is still usable after a failed command.
    assert terminal.run("echo still here", timeout=5).output == "still here\n"


def test_allow_failure_records_the_status_and_goes_on(terminal):
    results = run_commands(terminal, ["false", "echo next"], timeout=5, allow_failure=True, log=None)
    assert [r.exit_status for r in results] == [1, 0]


def test_exit_ends_the_shell_and_is_a_failure(server, terminal):
    rest, _ = server
    with pytest.raises(CommandFailed) as caught:
        run_commands(terminal, ["exit 3", "echo never"], timeout=10, allow_failure=True, log=None)
    assert "ended the terminal's shell (exit status 3)" in str(caught.value)
    assert terminal.broken
    name = terminal.name
    terminal.close()  # deleting a terminal whose shell is gone is fine
    assert name not in _terminal_names(rest)


def test_a_hanging_command_times_out_and_is_interrupted(terminal):
    results = []
    start = time.monotonic()
    with pytest.raises(CommandTimeout) as caught:
        run_commands(terminal, ["echo waiting; sleep 600"], timeout=2, allow_failure=False, log=None, results=results)
    elapsed = time.monotonic() - start
    assert 2 <= elapsed < 15  # at its timeout, not the command's 600 s
    assert "did not finish within 2 s" in str(caught.value) and "still usable" in str(caught.value)
    assert results[0].timed_out and results[0].output.startswith("waiting\n")
    assert terminal.run("echo after", timeout=5).output == "after\n"


def test_exec_past_its_timeout_is_command_timeout(server):
    # Issue 9: `exec sleep` replaces the shell; Ctrl-C at the deadline ends it and the
    # terminal with it. That was CommandFailed ("the shell exited"): it is a timeout.
    rest, _ = server
    results = []
    with TerminalSession(rest=rest, open_channel=rest.open_channel, interrupt_grace=3) as session:
        with pytest.raises(CommandTimeout) as caught:
            run_commands(session, ["exec sleep 100000", "echo never"], timeout=1, log=None, results=results)
        assert session.broken
    assert results[0].timed_out and results[0].terminal_closed
    assert "did not finish within 1 s" in str(caught.value)


def test_colours_are_stripped_and_unicode_kept(terminal):
    result = terminal.run(r"printf '\033[31mrouge\033[0m ünïcødé ✓\n'", timeout=5)
    assert result.output == "rouge ünïcødé ✓\n"
    progress = terminal.run(r"printf '10%%\r50%%\r100%%\n'; printf 'no newline'", timeout=5)
    assert progress.output == "100%\nno newline"


def test_multi_line_command_with_quotes_and_tabs(terminal):
    command = "for word in 'un deux' \"trois\"; do\n  printf '%s\\t|\\n' \"$word\"\ndone\ncat <<'EOF'\n$HOME stays\tliteral\nEOF"
    result = terminal.run(command, timeout=5)
    assert result.exit_status == 0
    assert result.output == "un deux\t|\ntrois\t|\n$HOME stays\tliteral\n"


def test_a_command_reading_stdin_does_not_hang(terminal):
    result = terminal.run("read line; echo \"read status $?\"; cat; wc -c", timeout=5)
    assert result.exit_status == 0 and result.duration_seconds < 4  # not waiting for input until the 5 s timeout
    assert result.output.startswith("read status 1\n")


def test_a_syntax_error_fails_fast(terminal):
    result = terminal.run("echo 'unterminated", timeout=5)
    assert result.exit_status == 2 and not result.timed_out and result.duration_seconds < 4
    assert "unterminated" in result.output.lower() or "unexpected eof" in result.output.lower()
    expansion = terminal.run("echo ${never_set_anywhere?}", timeout=5)
    assert expansion.exit_status != 0 and "never_set_anywhere" in expansion.output
    assert terminal.run("echo ok", timeout=5).output == "ok\n"


def test_large_output_is_streamed_whole_and_kept_short(server):
    rest, _ = server
    lines = []
    with TerminalSession(rest=rest, open_channel=rest.open_channel, max_output_chars=1000) as session:
        result = session.run("seq 1 20000", timeout=20, on_output=lines.append)
    streamed = "".join(lines)
    assert streamed == "".join(f"{i}\n" for i in range(1, 20001))
    assert result.output_truncated and len(result.output) <= 1000 and result.output.endswith("19999\n20000\n")


def test_the_terminal_is_gone_after_close(server):
    rest, _ = server
    session = TerminalSession(rest=rest, open_channel=rest.open_channel)
    name = session.create()
    assert name in _terminal_names(rest)
    session.close()
    assert name not in _terminal_names(rest)
    session.close()  # closing twice is harmless
