"""The terminal protocol: terminado frames, and the markers that tell how a command ended.

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

Only text in, text out: the socket is :class:`~studiorunner.jupyter.connection.TerminalChannel`,
the session that types and waits is :mod:`studiorunner.terminal.session`.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

# -- terminado frames ----------------------------------------------------------------------


def encode_message(message: list[Any]) -> str:
    """One terminado message (``["stdin", text]``, ``["set_size", rows, cols, rows, cols]``) as a frame."""
    return json.dumps(message)


def decode_message(frame: str | bytes) -> list[Any] | None:
    """A frame as a terminado message (a non-empty JSON array), or None for anything else."""
    if isinstance(frame, bytes):
        frame = frame.decode("utf-8", errors="replace")
    try:
        message = json.loads(frame)
    except ValueError:
        return None  # not terminado's format: ignore rather than guess
    return message if isinstance(message, list) and message else None


# -- markers ---------------------------------------------------------------------------

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
