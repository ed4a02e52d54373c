"""One Jupyter terminal, used for shell commands one after another, and how each one ended.

The session types wrapped commands into the terminal and reads the markers back
(:mod:`studiorunner.jupyter.terminal_protocol` says how and why); the socket is a
:class:`~studiorunner.jupyter.connection.TerminalChannel`. Nothing here knows about Lambda
or AWS: the REST calls and the channel are passed in (:class:`TerminalREST`,
:class:`ChannelLike`), so tests and the real client plug in.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from studiorunner.errors import CommandFailed
from studiorunner.jupyter.connection import ChannelClosed
from studiorunner.jupyter.http import delete_if_present
from studiorunner.jupyter.terminal_protocol import (
    Marker,
    MarkerParser,
    idle_probe,
    new_nonce,
    setup_lines,
    wrap_command,
)
from studiorunner.terminal.ansi import OutputCleaner

# -- what the session needs from the outside world ----------------------------------------


class ChannelLike(Protocol):
    """What :class:`~studiorunner.jupyter.connection.TerminalChannel` offers.

    ``recv`` returns one terminado message, None when nothing arrived within ``timeout``
    seconds, and raises :class:`ChannelClosed` once the connection is gone.
    """

    def send(self, message: list[Any]) -> None: ...
    def recv(self, timeout: float | None) -> list[Any] | None: ...
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


# -- results --------------------------------------------------------------------------------


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


# -- the session ----------------------------------------------------------------------------


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

        with TerminalSession(rest=http, open_channel=open_terminal_channel) as term:
            result = term.run("pip install -q requests", timeout=600)

    Not thread-safe. After a command ends the shell, loses the connection, or ignores
    Ctrl-C, the session is *broken* (``broken`` says why): ``run`` refuses, and
    ``close`` deletes the terminal, which kills what is left in it.
    """

    def __init__(
        self,
        *,
        rest: TerminalREST,
        open_channel: Callable[[str], ChannelLike],
        cwd: str | None = None,
        size: tuple[int, int] = (50, 200),
        setup_timeout: float = 30.0,
        interrupt_grace: float = 5.0,
        max_output_chars: int = 64 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``open_channel(path)`` opens the terminal's WebSocket at ``path`` (relative to
        the Jupyter base URL, e.g. ``terminals/websocket/1``). ``cwd`` is where the shell
        starts (relative to the server's root); ``size`` is (rows, cols) as programs see
        it; ``setup_timeout`` bounds the shell's start (a login shell may source a lot);
        ``interrupt_grace`` is how long a command has to stop after Ctrl-C;
        ``max_output_chars`` is how much of each command's output a result keeps."""
        self.rest = rest
        self.open_channel = open_channel
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
        self._channel: ChannelLike | None = None
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
            self._channel = self.open_channel(f"terminals/websocket/{self.name}")
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
        channel, self._channel = self._channel, None
        self.broken = self.broken or "the terminal is closed"
        if channel is not None:
            try:
                channel.close()
            except Exception:  # noqa: BLE001 - closing a dead socket is not worth an error
                pass
        if delete and self.name is not None:
            name, self.name = self.name, None
            delete_if_present(self.rest, f"api/terminals/{name}")

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
        raising on failure is :func:`~studiorunner.terminal.commands.run_commands`' job.
        ``on_output`` receives the cleaned output as it arrives (all of it; the result
        keeps only the end). Raises ``RuntimeError`` if the session is broken or was
        never created, ``ValueError`` for a command containing NUL.
        """
        if "\x00" in command:
            raise ValueError("a shell command cannot contain a NUL character")
        if self.broken or self._channel is None:
            raise RuntimeError(f"cannot run a command: {self.broken or 'the terminal was not created'}")
        self.seq += 1
        seq = self.seq
        started_at = datetime.now(UTC)
        start = self.clock()
        cleaner = OutputCleaner()
        tail = _Tail(self.max_output_chars)
        begun = False
        interrupting = False

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
            interrupting = True
            status, note = self._interrupt(seq, on_text)
            return result(status, timed_out=True, terminal_closed=self.broken is not None, note=note)
        except TerminalClosed as closed:
            self.broken = closed.why
            if interrupting:
                # It ran past its deadline; that the shell went with it (``exec sleep``:
                # Ctrl-C ends the program that replaced the shell) does not make it a
                # mere failure. It timed out, and the terminal is gone.
                return result(closed.status, timed_out=True, terminal_closed=True,
                              note=f"interrupted with Ctrl-C, and then {closed.why}")
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

    # -- reading and writing ---------------------------------------------------------------
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
        if self._channel is None:
            raise TerminalClosed(None, "the terminal is closed")
        try:
            self._channel.send(message)
        except ChannelClosed:
            raise TerminalClosed(None, "lost the connection to the terminal") from None

    def _closed(self, why: str) -> None:
        self._events.extend(self._parser.feed(""))
        rest = self._parser.flush()
        if rest:
            self._events.append(rest)
        self._events.append(_Closed(why))

    def _receive(self, deadline: float | None) -> bool:
        """Read one terminado message into the event queue; False once ``deadline`` passed."""
        if self._channel is None:
            self._events.append(_Closed("the terminal is closed"))
            return True
        remaining = None if deadline is None else deadline - self.clock()
        if remaining is not None and remaining <= 0:
            return False
        try:
            message = self._channel.recv(remaining)
        except ChannelClosed:
            self._closed("the terminal's connection was closed")
            return True
        if message is None:
            return False
        if message[0] == "stdout" and len(message) > 1 and isinstance(message[1], str):
            self._events.extend(self._parser.feed(message[1]))
        elif message[0] == "disconnect":
            self._closed("the terminal's shell exited")
        return True
