"""The terminal protocol without a server: marker parsing, output cleaning, the session's
state machine against a scripted shell, and the log/summary/error formats."""

from __future__ import annotations

import io
import json
import re
import subprocess
from collections import deque
from datetime import UTC, datetime

import pytest

from studiorunner.errors import CommandFailed, CommandTimeout
from studiorunner.jupyter.connection import ChannelClosed
from studiorunner.jupyter.terminal_protocol import (
    Marker,
    MarkerParser,
    decode_message,
    encode_command,
    encode_message,
    wrap_command,
)
from studiorunner.terminal.ansi import OutputCleaner, clean
from studiorunner.terminal.commands import log_footer, log_header, run_commands, summary
from studiorunner.terminal.session import CommandResult, TerminalSession

NONCE = "0123456789abcdef"


def _parse_in_chunks(stream: str, size: int) -> list[str | Marker]:
    parser = MarkerParser(NONCE)
    events: list[str | Marker] = []
    for i in range(0, len(stream), size):
        events.extend(parser.feed(stream[i:i + size]))
    events.append(parser.flush())
    merged: list[str | Marker] = []
    for event in events:  # adjacent text pieces are one text, however they were cut
        if isinstance(event, str) and merged and isinstance(merged[-1], str):
            merged[-1] += event
        elif event != "":
            merged.append(event)
    return merged


# -- markers ----------------------------------------------------------------------------


def test_markers_are_found_however_the_stream_is_cut():
    stream = (
        "prompt noise\r\n__SR_0123456789abcdef_B1__\r\n"
        "hello\r\nno newline at the end"
        "\r\n__SR_0123456789abcdef_E1_0__\r\n$ "
        "\r\n__SR_0123456789abcdef_I1__\r\n"
    )
    expected = [
        "prompt noise", Marker("B", 1, None),
        "hello\r\nno newline at the end", Marker("E", 1, 0),
        "$ ", Marker("I", 1, None),
    ]
    for size in range(1, len(stream) + 1):
        assert _parse_in_chunks(stream, size) == expected, size


def test_markers_of_another_nonce_or_without_their_newline_are_text():
    stream = "\r\n__SR_ffffffffffffffff_E1_0__\r\nx __SR_0123456789abcdef_E1_0__ y\r\n"
    assert _parse_in_chunks(stream, 5) == [stream]


def test_echoed_wrapper_never_contains_a_marker():
    # If the terminal echoes what we type, the echo must not parse as a marker.
    typed = wrap_command("echo __SR_0123456789abcdef_E1_0__", NONCE, 1).replace("\n", "\r\n")
    assert all(isinstance(e, str) for e in _parse_in_chunks(typed, 3))


@pytest.mark.parametrize("command", [
    "echo 'single' \"double\" $HOME `date` \\ back",
    "printf '%s %d %%\\n' a 1",
    "tab\there\nline two\n\nünïcødé ✓ 日本",
    "x" * 3000,
    "",
])
def test_encoded_command_round_trips_through_a_real_printf(command):
    script = f'printf %s "$({encode_command(command, width=200)})"'
    assert all(len(line) <= 200 for line in encode_command(command, width=200).split("\n"))
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout.decode()
    assert out == command.rstrip("\n")  # command substitution drops trailing newlines, as eval would not care


# -- output cleaning ------------------------------------------------------------------------


@pytest.mark.parametrize("raw, seen", [
    ("\x1b[31mrouge\x1b[0m ünïcødé ✓\r\n", "rouge ünïcødé ✓\n"),
    ("\x1b[1;38;5;208mbold\x1b[m \x1b]0;window title\x07\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\r\n", "bold link\n"),
    ("10%\r50%\r100%\r\ndone\r\n", "100%\ndone\n"),
    ("downloading 100%\r\x1b[2Kok\r\n", "ok\n"),
    ("abcdef\rXY\x1b[K\n", "XY\n"),
    ("\x1b[?2004h\x1b(B\x1b=bell\x07 and nul\x00 gone\tkept\n", "bell and nul gone\tkept\n"),
    ("no final newline", "no final newline"),
])
def test_clean(raw, seen):
    assert clean(raw) == seen


def test_cleaning_does_not_depend_on_chunk_boundaries():
    raw = "\x1b[31mré\x1b[0md\r\n\x1b]0;t\x1b\\10%\r100%\r\n✓ \x1b[1mfin\x1b[m\r\n"
    expected = clean(raw)
    assert expected == "réd\n100%\n✓ fin\n"
    for size in range(1, len(raw) + 1):
        cleaner = OutputCleaner()
        out = "".join(cleaner.feed(raw[i:i + size]) for i in range(0, len(raw), size)) + cleaner.finish()
        assert out == expected, size


# -- a scripted shell behind a fake terminado socket ---------------------------------------------

_WRAPPER = re.compile(r"printf '\\n__SR_%s_B%d__\\n' (\w+) (\d+); command eval \"\$\((.*?)\)\" </dev/null", re.S)
_PROBE = re.compile(r"printf '\\n__SR_%s_I%d__\\n' (\w+) (\d+)")
_READY = re.compile(r"printf '\\n__SR_%s_R0_%d__\\n' (\w+)")


def _decode(printf_lines: str) -> str:
    octal = "".join(re.findall(r"printf '([^']*)'", printf_lines))
    return bytes(int(o, 8) for o in re.findall(r"\\(\d{3})", octal)).decode()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeShell:
    """Answers TerminalSession like terminado + a POSIX shell would, in small frames
    (a ``TerminalChannel``: terminado messages in and out, through their JSON encoding).

    ``script`` maps a command to ``(output, status)``, or to ``"hang"`` (stops on
    Ctrl-C), ``"stubborn"`` (ignores Ctrl-C), ``"exec-hang"`` (``exec sleep``: the
    program replaced the shell, so Ctrl-C ends the terminal), ``("exit", status)`` or
    ``"abandon"`` (the shell drops the line, as for an expansion error)."""

    def __init__(self, clock: Clock, script: dict, frame: int = 7) -> None:
        self.clock, self.script, self.frame = clock, script, frame
        self.frames: deque[str] = deque([json.dumps(["setup", {}])])
        self.busy: tuple[str, int] | None = None  # (kind, seq) of a command still running
        self.closed = False
        self.sent: list[list] = []
        self.timeout: float | None = None

    def emit(self, text: str) -> None:
        text = text.replace("\n", "\r\n")  # the pty's onlcr
        for i in range(0, len(text), self.frame):
            self.frames.append(json.dumps(["stdout", text[i:i + self.frame]]))

    def marker(self, nonce: str, body: str) -> None:
        self.emit(f"\n__SR_{nonce}_{body}__\n")

    # TerminalChannel
    def recv(self, timeout):
        if self.frames:
            return decode_message(self.frames.popleft())
        if self.closed:
            raise ChannelClosed("closed")
        self.clock.now += timeout if timeout is not None else 3600
        return None

    def close(self):
        self.closed = True

    def send(self, message):
        message = json.loads(encode_message(message))
        self.sent.append(message)
        if message[0] != "stdin":
            return
        text = message[1]
        if text == "\x03":
            if self.busy and self.busy[0] == "hang":
                self.emit("^C")
                self.busy = None  # bash abandons the rest of the list: no end marker
            elif self.busy and self.busy[0] == "exec-hang":
                self.emit("^C")  # the shell is gone: no marker, no EXIT trap, the pty closes
                self.frames.append(json.dumps(["disconnect", 1]))
                self.closed = True
            return
        if (m := _READY.search(text)) is not None:
            self.emit("$ ")
            self.marker(m.group(1), "R0_0")
        elif (m := _WRAPPER.search(text)) is not None:
            nonce, seq, command = m.group(1), int(m.group(2)), _decode(m.group(3))
            self.emit("$ ")
            self.marker(nonce, f"B{seq}")
            what = self.script[command]
            if what in ("hang", "stubborn", "exec-hang"):
                self.busy = (what, seq)
            elif what == "abandon":
                self.emit("sh: x: parameter not set\n")
            elif what[0] == "exit":
                self.marker(nonce, f"X0_{what[1]}")
                self.frames.append(json.dumps(["disconnect", 1]))
                self.closed = True
            else:
                output, status = what
                self.emit(output)
                self.marker(nonce, f"E{seq}_{status}")
        elif (m := _PROBE.search(text)) is not None and not self.busy:
            self.marker(m.group(1), f"I{m.group(2)}")


class FakeREST:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def post(self, path, *, json=None):
        self.calls.append(("POST", path))

        class Response:
            def json(self):
                return {"name": "7"}
        return Response()

    def delete(self, path):
        self.calls.append(("DELETE", path))


def _session(script: dict, **kw):
    clock = Clock()
    shell = FakeShell(clock, script)
    rest = FakeREST()
    opened: list[str] = []

    def open_channel(path):
        opened.append(path)
        return shell

    session = TerminalSession(rest=rest, open_channel=open_channel, clock=clock, interrupt_grace=5, **kw)
    assert session.create() == "7"
    assert opened == ["terminals/websocket/7"]
    return session, shell, rest, clock


def test_session_runs_commands_and_reads_their_status():
    session, shell, rest, _ = _session({
        "echo hi": ("hi\n", 0),
        "false": ("", 1),
        "printf '\\033[32mvert\\033[0m'": ("\x1b[32mvert\x1b[0m", 0),
    })
    assert shell.sent[0][0] == "set_size"
    ok = session.run("echo hi", timeout=5)
    assert (ok.exit_status, ok.output, ok.timed_out, ok.succeeded) == (0, "hi\n", False, True)
    failed = session.run("false", timeout=5)
    assert (failed.exit_status, failed.output, failed.succeeded) == (1, "", False)
    assert session.run("printf '\\033[32mvert\\033[0m'", timeout=5).output == "vert"
    session.close()
    assert rest.calls == [("POST", "api/terminals"), ("DELETE", "api/terminals/7")]


def test_timeout_interrupts_and_the_shell_comes_back():
    session, shell, _, clock = _session({"sleep 600": "hang", "echo ok": ("ok\n", 0)})
    start = clock.now
    result = session.run("sleep 600", timeout=2)
    assert result.timed_out and result.exit_status is None and not result.terminal_closed
    assert "still usable" in result.note
    assert 2 <= clock.now - start < 3
    assert ["stdin", "\x03"] in shell.sent
    assert session.run("echo ok", timeout=2).output == "ok\n"


def test_a_command_that_ignores_ctrl_c_breaks_the_session():
    session, _, _, _ = _session({"trap '' INT; sleep 600": "stubborn"})
    result = session.run("trap '' INT; sleep 600", timeout=2)
    assert result.timed_out and result.terminal_closed and "did not stop within 5 s" in result.note
    with pytest.raises(RuntimeError, match="did not stop"):
        session.run("echo more", timeout=1)


def test_exit_is_reported_with_its_status():
    session, _, _, _ = _session({"exit 3": ("exit", 3)})
    result = session.run("exit 3", timeout=5)
    assert result.terminal_closed and result.exit_status == 3
    assert "ended the terminal's shell (exit status 3)" in result.note


def test_an_abandoned_line_fails_fast_without_a_status():
    session, _, _, clock = _session({"echo ${x?}": "abandon"})
    start = clock.now
    result = session.run("echo ${x?}", timeout=60)
    assert result.exit_status is None and "abandoned" in result.note
    assert result.output == "sh: x: parameter not set\n"
    assert clock.now - start < 1


def test_output_is_capped_but_streamed_whole():
    big = "".join(f"line {i}\n" for i in range(2000))
    session, _, _, _ = _session({"big": (big, 0)}, max_output_chars=500)
    streamed: list[str] = []
    result = session.run("big", timeout=5, on_output=streamed.append)
    assert "".join(streamed) == big
    assert result.output_truncated and len(result.output) <= 500 and big.endswith(result.output)


# -- run_commands, the log and the summary -----------------------------------------------------------


def test_run_commands_writes_the_log_and_raises_on_failure():
    url = "https://bucket.s3.amazonaws.com/key?X-Amz-Signature=secret123"
    session, _, _, _ = _session({
        "echo one": ("one\n", 0),
        f"curl -fsS '{url}'": (f"curl: (22) 403 for {url}\n", 22),
        "echo never": ("never\n", 0),
    })
    log = io.StringIO()
    results: list[CommandResult] = []
    with pytest.raises(CommandFailed) as caught:
        run_commands(session, ["echo one", f"curl -fsS '{url}'", "echo never"],
                     timeout=5, allow_failure=False, log=log, results=results)
    message = str(caught.value)
    assert "Command 2 of 3" in message and "exit status 22" in message and "curl -fsS" in message
    # The output stays in commands.log: a cause goes to the Step Functions history (issue 9).
    assert "403 for" not in message and "command log" in message
    assert "secret123" not in message and "secret123" not in json.dumps(caught.value.facts)
    assert [r.exit_status for r in results] == [0, 22]
    text = log.getvalue()
    assert re.search(r"^=== \[1\] \S+Z \$ echo one\none\n=== \[1\] exit status 0 after \d+\.\d{3} s\n", text)
    assert "=== [2] exit status 22 after" in text and "never" not in text
    entries = summary(results)
    assert entries[1] == {
        "command": "curl -fsS 'https://bucket.s3.amazonaws.com/key?…'", "exit_status": 22,
        "duration_seconds": results[1].duration_seconds, "timed_out": False,
        "started_at": entries[1]["started_at"],
    }
    json.dumps(entries)


def test_run_commands_raises_timeout_even_when_failures_are_allowed():
    session, _, _, _ = _session({"sleep 600": "hang"})
    with pytest.raises(CommandTimeout, match=r"did not finish within 2 s: interrupted with Ctrl-C"):
        run_commands(session, ["sleep 600"], timeout=2, allow_failure=True, log=None)


def test_log_lines_for_a_multi_line_command():
    started = datetime(2026, 11, 22, 1, 2, 3, 456000, tzinfo=UTC)
    assert log_header(2, "for i in 1 2\ndo echo $i\ndone", started) == (
        "=== [2] 2026-11-22T01:02:03.456Z $ for i in 1 2\n=== [2] > do echo $i\n=== [2] > done\n"
    )
    timed_out = CommandResult("x", None, "", started, 2.0, timed_out=True, note="interrupted with Ctrl-C")
    assert log_footer(2, timed_out) == "=== [2] timed out after 2.000 s · interrupted with Ctrl-C\n"


def test_exec_that_outlives_its_timeout_is_a_timeout_not_a_failure():
    # Issue 9: `exec sleep 100000` under timeouts.command_seconds ended as CommandFailed
    # ("the shell exited"): Ctrl-C ends the program that replaced the shell, and the
    # terminal with it. It ran past its deadline, so it is CommandTimeout.
    session, shell, _, clock = _session({"exec sleep 100000": "exec-hang"})
    results: list[CommandResult] = []
    start = clock.now
    with pytest.raises(CommandTimeout) as caught:
        run_commands(session, ["exec sleep 100000", "echo never"], timeout=2, allow_failure=True, log=None,
                     results=results)
    assert ["stdin", "\x03"] in shell.sent and 2 <= clock.now - start < 3
    assert results[0].timed_out and results[0].terminal_closed and session.broken
    assert "did not finish within 2 s" in str(caught.value) and "shell exited" in str(caught.value)
    assert caught.value.facts["timed_out"] is True and caught.value.facts["terminal_closed"] is True


def test_control_characters_in_a_command_are_shown_not_sent():
    # Issue 9: raw ESC bytes in a command appeared unfiltered in the cause and the log header.
    command = "printf x; \x1b]0;pwned\x07\x1b[2J\x9b31m"
    session, _, _, _ = _session({command: ("x\n", 4)})
    log = io.StringIO()
    results: list[CommandResult] = []
    with pytest.raises(CommandFailed) as caught:
        run_commands(session, [command], timeout=5, log=log, results=results)
    header = log.getvalue().split("\n", 1)[0]
    for text in (str(caught.value), caught.value.facts["command"], header, summary(results)[0]["command"]):
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", text), repr(text)
        assert "\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m" in text, text
    assert results[0].command == command  # what ran is what was asked for


def test_the_cause_names_command_and_status_and_the_log_is_redacted():
    # Issue 9: the cause carried the last 20 output lines, and redaction missed
    # user:token@host URLs and KEY=value secrets.
    command = "export API_TOKEN=tok123 && git clone https://bob:ghp_secret42@github.example/x.git"
    printed = ("Cloning into 'x'...\nfatal: could not read from https://bob:ghp_secret42@github.example/x.git\n"
               "API_TOKEN=tok123\nAWS_SECRET_ACCESS_KEY='wJalr/K7'\nPATH=/usr/bin\nlast line without newline")
    session, _, _, _ = _session({command: (printed, 128)})
    log = io.StringIO()
    results: list[CommandResult] = []
    with pytest.raises(CommandFailed) as caught:
        run_commands(session, [command], timeout=5, log=log, results=results)
    message = str(caught.value)
    assert message.startswith("Command 1 of 1 `export API_TOKEN=… && git clone https://…@github.example/x.git`")
    assert "exit status 128" in message and caught.value.facts["exit_status"] == 128
    assert "Cloning" not in message and "fatal" not in message
    text = log.getvalue()
    everything = message + json.dumps(caught.value.facts) + text + json.dumps(summary(results))
    for secret in ("tok123", "ghp_secret42", "wJalr"):
        assert secret not in everything, secret
    # The log keeps the output, redacted line by line, including an unfinished last line.
    assert "fatal: could not read from https://…@github.example/x.git\nAPI_TOKEN=…\nAWS_SECRET_ACCESS_KEY='…'\n" in text
    assert "PATH=/usr/bin\nlast line without newline\n=== [1] exit status 128 after" in text
