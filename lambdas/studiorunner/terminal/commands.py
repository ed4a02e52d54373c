"""Run shell commands in a Jupyter terminal and know how each one ended.

jupyter_server serves terminals over the terminado protocol: ``POST api/terminals``
answers ``{"name": …}``; the WebSocket ``terminals/websocket/{name}`` carries JSON
arrays (the server sends ``["setup", {}]``, then ``["stdout", text]`` and, when the shell
exits, ``["disconnect", 1]``; the client sends ``["stdin", text]`` and
``["set_size", rows, cols]``); ``DELETE api/terminals/{name}`` kills it.

A terminal is a screen, not an API: there is no exit status, only text. So each
command is wrapped so that the shell itself prints *markers* around it, carrying a
random per-session nonce and ``$?``::

    printf '\\n__SR_%s_B%d__\\n' NONCE 3; command eval "$(printf '<octal bytes>')" </dev/null; printf '\\n__SR_%s_E%d_%d__\\n' NONCE 3 "$?"

and the output stream is parsed for ``__SR_<nonce>_B3__`` and ``__SR_<nonce>_E3_<status>__``.
Why it is built this way:

* The marker text never appears in what we type (the nonce is a separate ``printf``
  argument), so a terminal that echoes input cannot fake a marker.
* The command travels as octal escapes for ``printf``: only ASCII digits and
  backslashes cross the terminal, so tabs (readline completion), control characters,
  quotes, long or multi-line commands and non-ASCII text all arrive intact, in any
  POSIX shell, without needing ``base64``.
* ``command eval`` runs it in the shell itself, so ``cd`` and ``export`` persist to the
  next command, while ``command`` stops a syntax error in the command from aborting our
  wrapper. ``</dev/null`` makes a command that reads stdin see end-of-file at once
  instead of waiting for keys nobody will press.
* After each command an *idle probe* (``__SR_<nonce>_I3__``) is typed ahead: the shell
  only runs it when it is back at its prompt, so if it arrives without the end marker
  the shell abandoned the command line, and we say so instead of waiting for a timeout.
  After Ctrl-C (which flushes typed-ahead input) the probe is sent again, to learn
  whether the interrupt worked.
* An ``EXIT`` trap prints ``__SR_<nonce>_X0_<status>__``, so a command that ends the
  shell (``exit 3``, ``set -e``, ``exec``) is reported with its status.

Nothing here knows about Lambda or AWS: the HTTP calls and the WebSocket are passed in
(:class:`TerminalREST`, :class:`WebSocketLike`), so tests and the real client plug in.
"""

from __future__ import annotations

import json
import re
import secrets
import select
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol, TextIO

from studiorunner.terminal.ansi import OutputCleaner
from studiorunner.errors import CommandFailed, CommandTimeout, JupyterHTTPError

# -- what the library needs from the outside world ----------------------------------


class WebSocketLike(Protocol):
    """The part of ``websocket.WebSocket`` (websocket-client) this module uses.

    ``recv`` returns one text message, ``""`` when the server closed the connection,
    and raises ``TimeoutError`` or ``websocket.WebSocketTimeoutException`` when nothing
    arrived within the ``settimeout`` seconds.
    """

    def send(self, data: str) -> Any: ...
    def recv(self) -> str | bytes: ...
    def settimeout(self, timeout: float | None) -> None: ...
    def close(self) -> None: ...


class ResponseLike(Protocol):
    def json(self) -> Any: ...


class TerminalREST(Protocol):
    """The REST calls a terminal needs; :class:`studiorunner.jupyter.http.JupyterHTTP` satisfies it.

    Paths are relative to the Jupyter base URL (``api/terminals``). ``post`` returns a
    response whose ``json()`` is the body; both raise on a non-2xx answer, and an error
    that carries the HTTP status as ``exc.facts["status"]`` (as ``JupyterHTTPError``
    does) lets ``close`` recognise a terminal that is already gone (404).
    """

    def post(self, path: str, *, json: Any = ...) -> ResponseLike: ...
    def delete(self, path: str) -> Any: ...


class WebSocketTarget(Protocol):
    url: str
    headers: dict[str, str]


class WebSocketSource(Protocol):
    """Something that knows a WebSocket's URL and handshake headers (cookies, token, XSRF)."""

    def websocket(self, path: str) -> WebSocketTarget: ...


# -- results ------------------------------------------------------------------------


@dataclass
class CommandResult:
    """How one command ended. ``output`` is cleaned (no ANSI escapes, ``\\n`` line ends)."""

    command: str
    exit_status: int | None  # None: unknown (timed out, connection lost, line abandoned)
    output: str  # the last ``max_output_chars`` characters of the cleaned output
    started_at: datetime
    duration_seconds: float
    timed_out: bool = False
    terminal_closed: bool = False  # the shell or the connection is gone: no later command can run
    output_truncated: bool = False  # output holds only the end of what was printed
    note: str = ""  # what happened, when the exit status alone does not say it

    @property
    def succeeded(self) -> bool:
        return self.exit_status == 0 and not self.timed_out and not self.terminal_closed

    def last_lines(self, lines: int = 20, chars: int = 2000) -> str:
        """The end of the output, for an error message (secrets in URLs redacted)."""
        tail = "\n".join(self.output.rstrip("\n").split("\n")[-lines:])
        if len(tail) > chars:
            tail = "…" + tail[-chars:]
        return redact(tail)


# -- the wire format ------------------------------------------------------------------

MARKER_PREFIX = "__SR_"


def new_nonce() -> str:
    return secrets.token_hex(8)


def _marker_regex(nonce: str) -> re.Pattern[str]:
    # What follows the literal ``__SR_<nonce>_`` (found with str.find: a regex that may
    # start anywhere is ten times slower on megabytes of output).
    return re.compile(r"(?P<kind>[RBEIX])(?P<seq>\d+)(?:_(?P<status>\d+))?__\r*\n")


# Longer than any marker with its newlines, so a marker split across frames is kept whole.
_HOLD_BACK = 128


@dataclass(frozen=True)
class Marker:
    kind: str  # R ready, B begin, E end, I idle probe, X shell exit
    seq: int
    status: int | None


class MarkerParser:
    """Splits the terminal's output stream into text and markers, across frame boundaries.

    ``feed`` returns, in order, ``str`` pieces and :class:`Marker` objects. Text that may
    be the start of a marker is held back until the next chunk decides it. The newline
    printed before a marker (``\r\n`` once the pty has translated it) belongs to the
    marker, so output that lacks a final newline is recorded as it was.
    """

    def __init__(self, nonce: str) -> None:
        self._prefix = f"{MARKER_PREFIX}{nonce}_"
        self._rest = _marker_regex(nonce)
        self._buffer = ""

    def feed(self, text: str) -> list[str | Marker]:
        buffer = self._buffer + text
        events: list[str | Marker] = []
        pos = 0
        found = buffer.find(self._prefix)
        while found != -1:
            match = self._rest.match(buffer, found + len(self._prefix))
            if match is None:  # incomplete (held back below) or not a marker at all
                found = buffer.find(self._prefix, found + 1)
                continue
            start = found
            if start > pos and buffer[start - 1] == "\n":
                start -= 1
                while start > pos and buffer[start - 1] == "\r":
                    start -= 1
            if start > pos:
                events.append(buffer[pos:start])
            status = match.group("status")
            events.append(Marker(match.group("kind"), int(match.group("seq")), int(status) if status else None))
            pos = match.end()
            found = buffer.find(self._prefix, pos)
        keep = max(pos, len(buffer) - _HOLD_BACK)
        if keep > pos:
            events.append(buffer[pos:keep])
        self._buffer = buffer[keep:]
        return events

    def flush(self) -> str:
        rest, self._buffer = self._buffer, ""
        return rest


def encode_command(command: str, width: int = 1000) -> str:
    """``printf`` calls (one per line, each at most ``width`` characters) that print ``command``.

    Every byte becomes a three-digit octal escape, which POSIX ``printf`` decodes in its
    format: nothing the terminal or readline would interpret is ever typed.
    """
    data = command.encode("utf-8")
    per_line = max(1, (width - len("printf ''")) // 4)
    lines = []
    for i in range(0, len(data), per_line):
        escaped = "".join(f"\\{b:03o}" for b in data[i:i + per_line])
        lines.append(f"printf '{escaped}'")
    return "\n".join(lines) or "printf ''"


def wrap_command(command: str, nonce: str, seq: int) -> str:
    """The text typed into the terminal to run ``command`` as number ``seq``."""
    return (
        f"printf '\\n{MARKER_PREFIX}%s_B%d__\\n' {nonce} {seq}; "
        f'command eval "$({encode_command(command)})" </dev/null; '
        f"printf '\\n{MARKER_PREFIX}%s_E%d_%d__\\n' {nonce} {seq} \"$?\"\n"
    )


def idle_probe(nonce: str, seq: int) -> str:
    return f"printf '\\n{MARKER_PREFIX}%s_I%d__\\n' {nonce} {seq}\n"


def setup_lines(nonce: str) -> list[str]:
    """What is typed once, before any command. One statement per line, so that one that
    fails in some shell (e.g. ``stty`` without a tty) cannot take the others with it."""
    return [
        # No echo: our typing must not end up in the output (markers are safe anyway).
        "stty -echo 2>/dev/null\n",
        # Prompts only add noise between commands; they are discarded, but cheaply.
        "PS1=''; PS2=''\n",
        # Our wrapped commands are not worth keeping in the user's ~/.bash_history.
        "unset HISTFILE\n",
        # No colours from tools that honour TERM, no pager waiting for a key, and git
        # fails at once instead of prompting for a password nobody will type.
        "export TERM=dumb PAGER=cat GIT_PAGER=cat GIT_TERMINAL_PROMPT=0\n",
        f"trap 'printf \"\\n{MARKER_PREFIX}%s_X0_%d__\\n\" {nonce} \"$?\"' EXIT\n",
        # "$?" also proves a POSIX-like shell: fish, for one, rejects it.
        f"printf '\\n{MARKER_PREFIX}%s_R0_%d__\\n' {nonce} \"$?\"\n",
    ]


# -- redaction --------------------------------------------------------------------------

_URL_QUERY = re.compile(r"(?P<url>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#'\"<>]+)\?[^\s'\"<>]*")
_AUTH_HEADER = re.compile(r"(?i)(?P<name>authorization|cookie|x-xsrftoken)(?P<sep>\s*:\s*)[^\n'\"]+")


def redact(text: str) -> str:
    """``text`` with URL query strings and auth header values replaced by ``…``.

    For error messages and summaries, which end up in Step Functions history: a command
    or its output may hold a presigned URL or a token the user passed on purpose.
    """
    text = _URL_QUERY.sub(lambda m: m.group("url") + "?…", text)
    return _AUTH_HEADER.sub(lambda m: m.group("name") + m.group("sep") + "…", text)


# -- the session -------------------------------------------------------------------------


class TerminalClosed(Exception):
    """Internal: the shell exited or the WebSocket went away."""

    def __init__(self, status: int | None, why: str) -> None:
        super().__init__(why)
        self.status = status
        self.why = why


@dataclass(frozen=True)
class _Closed:
    """Queued after the last output when the terminal or its connection ends."""

    why: str


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError):
        return True
    return type(exc).__name__ == "WebSocketTimeoutException"


def _http_status(exc: BaseException) -> int | None:
    facts = getattr(exc, "facts", None)
    if isinstance(facts, dict) and isinstance(facts.get("status"), int):
        return facts["status"]
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


@dataclass
class _Tail:
    """The last ``limit`` characters of a stream, without keeping the stream."""

    limit: int
    chunks: deque[str] = field(default_factory=deque)
    size: int = 0
    dropped: bool = False

    def add(self, text: str) -> None:
        if not text:
            return
        self.chunks.append(text)
        self.size += len(text)
        while self.size - len(self.chunks[0]) >= self.limit:
            self.size -= len(self.chunks.popleft())
            self.dropped = True

    def text(self) -> str:
        joined = "".join(self.chunks)
        if len(joined) > self.limit:
            self.dropped = True
            return joined[-self.limit:]
        return joined


class TerminalSession:
    """One Jupyter terminal running one shell, used for commands one after another.

    Use as a context manager, or call :meth:`create` then :meth:`close`::

        with TerminalSession(rest=http, open_socket=websocket_opener(http)) as term:
            result = term.run("pip install -q requests", timeout=600)

    Not thread-safe. After a command ends the shell, loses the connection, or ignores
    Ctrl-C, the session is *broken* (``broken`` says why): ``run`` refuses, and
    ``close`` deletes the terminal, which kills what is left in it.
    """

    def __init__(
        self,
        *,
        rest: TerminalREST,
        open_socket: Callable[[str], WebSocketLike],
        cwd: str | None = None,
        size: tuple[int, int] = (50, 200),
        setup_timeout: float = 30.0,
        interrupt_grace: float = 5.0,
        max_output_chars: int = 64 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``open_socket(path)`` opens the WebSocket at ``path`` (relative to the Jupyter
        base URL, e.g. ``terminals/websocket/1``). ``cwd`` is where the shell starts
        (relative to the server's root); ``size`` is (rows, cols) as programs see it;
        ``setup_timeout`` bounds the shell's start (a login shell may source a lot);
        ``interrupt_grace`` is how long a command has to stop after Ctrl-C;
        ``max_output_chars`` is how much of each command's output a result keeps."""
        self.rest = rest
        self.open_socket = open_socket
        self.cwd = cwd
        self.size = size
        self.setup_timeout = setup_timeout
        self.interrupt_grace = interrupt_grace
        self.max_output_chars = max_output_chars
        self.clock = clock
        self.name: str | None = None
        self.nonce = new_nonce()
        self.seq = 0
        self.broken: str | None = None  # why no further command can run
        self._socket: WebSocketLike | None = None
        self._parser = MarkerParser(self.nonce)
        self._events: deque[str | Marker | _Closed] = deque()

    def __repr__(self) -> str:
        return f"TerminalSession(name={self.name!r}, seq={self.seq}, broken={self.broken!r})"

    def __enter__(self) -> TerminalSession:
        if self.name is None:
            self.create()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- lifecycle -------------------------------------------------------------------
    def create(self) -> str:
        """Start a terminal, connect, and prepare its shell. Returns the terminal's name.

        Raises ``CommandFailed`` if the shell does not get ready within
        ``setup_timeout`` or exits (the terminal is deleted then)."""
        body = {"cwd": self.cwd} if self.cwd else {}
        self.name = str(self.rest.post("api/terminals", json=body).json()["name"])
        try:
            self._socket = self.open_socket(f"terminals/websocket/{self.name}")
            rows, cols = self.size
            self._send(["set_size", rows, cols, rows, cols])
            for line in setup_lines(self.nonce):
                self._send(["stdin", line])
            ready = self._wait_for(0, "R", self.clock() + self.setup_timeout, lambda text: None)
            if ready is None:
                raise CommandFailed(
                    f"The terminal's shell did not get ready within {self.setup_timeout:g} s "
                    "(it must be a POSIX shell such as bash, sh or zsh).",
                    terminal=self.name,
                )
            return self.name
        except TerminalClosed as closed:
            name = self.name
            self.close()
            raise CommandFailed(f"The terminal closed while starting: {closed.why}.", terminal=name) from None
        except BaseException:
            self.close()
            raise

    def close(self, delete: bool = True) -> None:
        """Disconnect, and delete the terminal (which kills its shell) unless ``delete`` is
        false. A terminal that is already gone is not an error; other REST errors raise."""
        socket, self._socket = self._socket, None
        self.broken = self.broken or "the terminal is closed"
        if socket is not None:
            try:
                socket.close()
            except Exception:  # noqa: BLE001 - closing a dead socket is not worth an error
                pass
        if delete and self.name is not None:
            name, self.name = self.name, None
            try:
                self.rest.delete(f"api/terminals/{name}")
            except Exception as exc:
                if _http_status(exc) != 404:
                    raise

    # -- commands -----------------------------------------------------------------------
    def run(
        self,
        command: str,
        *,
        timeout: float | None,
        on_output: Callable[[str], Any] | None = None,
    ) -> CommandResult:
        """Run ``command`` in the shell and wait for it, at most ``timeout`` seconds.

        Always returns a :class:`CommandResult` for how the command ended (any exit
        status, timed out and interrupted, ended the shell, lost the connection);
        raising on failure is :func:`run_commands`' job. ``on_output`` receives the
        cleaned output as it arrives (all of it; the result keeps only the end).
        Raises ``RuntimeError`` if the session is broken or was never created,
        ``ValueError`` for a command containing NUL.
        """
        if "\x00" in command:
            raise ValueError("a shell command cannot contain a NUL character")
        if self.broken or self._socket is None:
            raise RuntimeError(f"cannot run a command: {self.broken or 'the terminal was not created'}")
        self.seq += 1
        seq = self.seq
        started_at = datetime.now(timezone.utc)
        start = self.clock()
        cleaner = OutputCleaner()
        tail = _Tail(self.max_output_chars)
        begun = False

        def emit(text: str) -> None:
            if text:
                tail.add(text)
                if on_output is not None:
                    on_output(text)

        def on_text(text: str) -> None:
            if begun:  # before the begin marker it is prompt and echo noise
                emit(cleaner.feed(text))

        def result(exit_status: int | None, **kw: Any) -> CommandResult:
            emit(cleaner.finish())
            return CommandResult(
                command=command,
                exit_status=exit_status,
                output=tail.text(),
                started_at=started_at,
                duration_seconds=round(self.clock() - start, 3),
                output_truncated=tail.dropped,
                **kw,
            )

        deadline = None if timeout is None else start + timeout
        try:
            self._send(["stdin", wrap_command(command, self.nonce, seq)])
            self._send(["stdin", idle_probe(self.nonce, seq)])
            while True:
                marker = self._wait_for(seq, "BEI", deadline, on_text)
                if marker is None:
                    break
                if marker.kind == "B":
                    begun = True
                elif marker.kind == "E":
                    return result(marker.status)
                else:
                    return result(
                        None,
                        note="the shell abandoned the command line before it finished "
                        "(a syntax or expansion error); see its output",
                    )
            # Past the deadline: interrupt, then ask the shell whether it is back.
            status, note = self._interrupt(seq, on_text)
            return result(status, timed_out=True, terminal_closed=self.broken is not None, note=note)
        except TerminalClosed as closed:
            self.broken = closed.why
            return result(closed.status, terminal_closed=True, note=closed.why)

    def _interrupt(self, seq: int, on_text: Callable[[str], None]) -> tuple[int | None, str]:
        """Send Ctrl-C; return the exit status if the end marker came, and what happened."""
        self._send(["stdin", "\x03"])
        # Ctrl-C flushes input typed ahead, so the idle probe must be typed again, after
        # a short pause that lets the interrupt land first.
        marker = self._wait_for(seq, "E", self.clock() + 0.2, on_text)
        if marker is None:
            self._send(["stdin", idle_probe(self.nonce, seq)])
            marker = self._wait_for(seq, "EI", self.clock() + self.interrupt_grace, on_text)
        if marker is None:
            self.broken = "a command did not stop after Ctrl-C"
            return None, (
                f"interrupted with Ctrl-C, but it did not stop within {self.interrupt_grace:g} s; "
                "the terminal is unusable and will be deleted"
            )
        return marker.status, "interrupted with Ctrl-C; the terminal is still usable"

    # -- transport ---------------------------------------------------------------------
    def _wait_for(
        self, seq: int, kinds: str, deadline: float | None, on_text: Callable[[str], None]
    ) -> Marker | None:
        """Pass output to ``on_text`` until a marker of one of ``kinds`` for ``seq`` arrives.

        Returns None once ``deadline`` has passed; raises ``TerminalClosed`` when the
        shell exits (its exit marker) or the connection ends."""
        while True:
            while not self._events:
                if not self._receive(deadline):
                    return None
            event = self._events.popleft()
            if isinstance(event, str):
                on_text(event)
            elif isinstance(event, _Closed):
                self._events.appendleft(event)  # every later wait must see it too
                raise TerminalClosed(None, event.why)
            elif event.kind == "X":
                raise TerminalClosed(event.status, f"the command ended the terminal's shell (exit status {event.status})")
            elif event.seq == seq and event.kind in kinds:
                return event
            # else: a late marker of an earlier command, or one not asked for

    def _send(self, message: list[Any]) -> None:
        if self._socket is None:
            raise TerminalClosed(None, "the terminal is closed")
        try:
            self._socket.send(json.dumps(message))
        except Exception as exc:  # gone; name the kind only, websocket errors may hold the URL
            raise TerminalClosed(None, f"lost the connection to the terminal ({type(exc).__name__})") from None

    def _closed(self, why: str) -> None:
        self._events.extend(self._parser.feed(""))
        rest = self._parser.flush()
        if rest:
            self._events.append(rest)
        self._events.append(_Closed(why))

    def _receive(self, deadline: float | None) -> bool:
        """Read one WebSocket message into the event queue; False once ``deadline`` passed."""
        if self._socket is None:
            self._events.append(_Closed("the terminal is closed"))
            return True
        remaining = None if deadline is None else deadline - self.clock()
        if remaining is not None and remaining <= 0:
            return False
        self._socket.settimeout(remaining)
        try:
            raw = self._socket.recv()
        except Exception as exc:
            if _is_timeout(exc):
                return False
            self._closed(f"lost the connection to the terminal ({type(exc).__name__})")
            return True
        if not raw:
            self._closed("the terminal's connection was closed")
            return True
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", errors="replace")
        try:
            message = json.loads(raw)
        except ValueError:
            return True  # not terminado's format: ignore rather than guess
        if not isinstance(message, list) or not message:
            return True
        if message[0] == "stdout" and len(message) > 1 and isinstance(message[1], str):
            self._events.extend(self._parser.feed(message[1]))
        elif message[0] == "disconnect":
            self._closed("the terminal's shell exited")
        return True


# -- running a list of commands -------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def log_header(index: int, command: str, started_at: datetime) -> str:
    """The ``commands.log`` line that opens a command (continuation lines marked ``> ``)."""
    first, *more = command.split("\n")
    lines = [f"=== [{index}] {_iso(started_at)} $ {first}"] + [f"=== [{index}] > {line}" for line in more]
    return "\n".join(lines) + "\n"


def log_footer(index: int, result: CommandResult) -> str:
    """The ``commands.log`` line that closes a command: how it ended and how long it took."""
    if result.timed_out:
        how = "timed out"
    elif result.exit_status is None:
        how = "ended without an exit status"
    else:
        how = f"exit status {result.exit_status}"
    parts = [f"=== [{index}] {how} after {result.duration_seconds:.3f} s"]
    if result.note:
        parts.append(result.note)
    return " · ".join(parts) + "\n"


def summary(results: list[CommandResult]) -> list[dict[str, Any]]:
    """JSON-able summary: one entry per command, with the command's secrets redacted."""
    return [
        {
            "command": redact(r.command),
            "exit_status": r.exit_status,
            "duration_seconds": r.duration_seconds,
            "timed_out": r.timed_out,
            "started_at": _iso(r.started_at),
        }
        for r in results
    ]


def _shown(command: str, limit: int = 200) -> str:
    one_line = " ⏎ ".join(command.strip().split("\n"))
    if len(one_line) > limit:
        one_line = one_line[: limit - 1] + "…"
    return redact(one_line)


def run_commands(
    session: TerminalSession,
    commands: list[str],
    *,
    timeout: float | None,
    allow_failure: bool = False,
    log: TextIO | None = None,
    results: list[CommandResult] | None = None,
) -> list[CommandResult]:
    """Run ``commands`` in order in ``session``; return their results.

    ``log`` receives the ``commands.log`` text as it is produced (header, the whole
    cleaned output, footer per command). ``results``, if given, is appended to as each
    command ends, so the caller still has them when this raises.

    Raises ``CommandFailed`` for a non-zero or unknown exit status (unless
    ``allow_failure``) and always for a command that ended the shell or lost the
    terminal; ``CommandTimeout`` for one that ran past ``timeout`` seconds (it was
    interrupted with Ctrl-C; the message says whether that stopped it). Later commands
    do not run after an error.
    """
    done = results if results is not None else []
    total = len(commands)
    for index, command in enumerate(commands, 1):
        if log is not None:
            log.write(log_header(index, command, datetime.now(timezone.utc)))
        result = session.run(command, timeout=timeout, on_output=log.write if log is not None else None)
        done.append(result)
        if log is not None:
            if result.output and not result.output.endswith("\n"):
                log.write("\n")
            log.write(log_footer(index, result))
            log.flush()
        facts = {
            "command": _shown(command),
            "command_index": index,
            "commands_total": total,
            "exit_status": result.exit_status,
            "duration_seconds": result.duration_seconds,
        }
        where = f"Command {index} of {total} `{_shown(command)}`"
        output = result.last_lines()
        shown_output = f" Last output:\n{output}" if output.strip() else " It printed nothing."
        if result.timed_out:
            raise CommandTimeout(
                f"{where} did not finish within {timeout:g} s: {result.note}.{shown_output}",
                **facts, timed_out=True,
            )
        if result.terminal_closed:
            raise CommandFailed(f"{where} failed: {result.note}.{shown_output}", **facts, terminal_closed=True)
        if result.exit_status != 0 and not allow_failure:
            status = "no exit status" if result.exit_status is None else f"exit status {result.exit_status}"
            note = f" ({result.note})" if result.note else ""
            raise CommandFailed(f"{where} failed with {status}{note}.{shown_output}", **facts)
    return done


# -- the real WebSocket ----------------------------------------------------------------------------

_TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class _WebSocketClient:
    """websocket-client's ``WebSocket`` made to fit :class:`WebSocketLike`, with two fixes.

    ``recv`` waits with ``select`` and then reads a whole frame: a timeout in the middle
    of a frame would leave websocket-client's framing half-consumed. And TCP_QUICKACK is
    re-armed after every receive: jupyter_server does not set TCP_NODELAY, so each small
    frame would otherwise wait ~40 ms for our delayed ACK (DESIGN.md, performance facts),
    which made every trivial command cost ~45 ms instead of ~5 ms.
    """

    def __init__(self, ws: Any, frame_timeout: float) -> None:
        self._ws = ws
        self._timeout: float | None = None
        self._frame_timeout = frame_timeout

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout

    def send(self, data: str) -> None:
        self._ws.sock.settimeout(self._frame_timeout)
        self._ws.send(data)

    def recv(self) -> str | bytes:
        import websocket

        end = None if self._timeout is None else time.monotonic() + self._timeout
        while True:
            sock = self._ws.sock
            if sock is None:
                return ""
            pending = isinstance(sock, ssl.SSLSocket) and sock.pending()
            if not pending:
                wait = None if end is None else max(0.0, end - time.monotonic())
                if not select.select([sock], [], [], wait)[0]:
                    raise TimeoutError("no message")
            sock.settimeout(self._frame_timeout)
            opcode, frame = self._ws.recv_data_frame(True)
            self._quickack()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return ""
            if opcode == websocket.ABNF.OPCODE_TEXT:
                data = frame.data
                return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
            if opcode == websocket.ABNF.OPCODE_BINARY:
                return frame.data
            # ping/pong (websocket-client has answered a ping already): keep waiting

    def close(self) -> None:
        try:
            self._ws.close(timeout=1.0)
        except Exception:  # noqa: BLE001 - closing a broken socket must not raise
            pass

    def _quickack(self) -> None:
        if _TCP_QUICKACK is not None and self._ws.sock is not None:
            try:
                self._ws.sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
            except OSError:
                pass


def websocket_opener(source: WebSocketSource, *, timeout: float = 30.0) -> Callable[[str], WebSocketLike]:
    """``open_socket`` for :class:`TerminalSession` over websocket-client, given something
    (like ``JupyterHTTP``) whose ``websocket(path)`` returns the URL and handshake headers.

    ``timeout`` bounds the handshake and the reading of one frame. Handshake errors
    become ``JupyterHTTPError`` naming only the path and the status: websocket-client's
    own messages can include the URL and response headers (``Set-Cookie``)."""
    import websocket  # websocket-client; imported here so the parser needs no third-party code

    def open_socket(path: str) -> WebSocketLike:
        target = source.websocket(path)
        header = dict(target.headers)
        ws = websocket.WebSocket(
            skip_utf8_validation=True,  # the pure-Python check costs more than the protocol
            sockopt=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        try:
            ws.connect(
                target.url, header=header, timeout=timeout,
                suppress_origin=any(k.lower() == "origin" for k in header),
            )
        except websocket.WebSocketBadStatusException as exc:
            raise JupyterHTTPError(
                f"GET {path} (terminal WebSocket) answered {exc.status_code}",
                method="GET", path=path, status=exc.status_code,
            ) from None
        except (OSError, websocket.WebSocketException) as exc:
            raise JupyterHTTPError(
                f"GET {path} (terminal WebSocket) could not connect ({type(exc).__name__})",
                method="GET", path=path, status=None,
            ) from None
        client = _WebSocketClient(ws, frame_timeout=timeout)
        client._quickack()
        return client

    return open_socket
