"""Run a list of shell commands in a terminal session: stop at the first failure, keep a log.

What each place gets, and why:

* the **cause** of a failed run (:class:`CommandFailed`, :class:`CommandTimeout`) names
  the command (one line, shortened, secrets redacted, control characters made visible)
  and how it ended — never its output: a cause lands in the Step Functions history and
  the failure e-mail, and output can hold anything;
* ``commands.log`` (in the run's private, encrypted bucket) has every command and the
  whole cleaned output, each line passed through :func:`studiorunner.redact.redact`;
* the summary (``commands.json``, the step's result) has one entry per command.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from studiorunner.errors import CommandFailed, CommandTimeout
from studiorunner.redact import redact, without_controls
from studiorunner.terminal.session import CommandResult, TerminalSession
from studiorunner.timestamps import utc_iso

__all__ = ["CommandResult", "LogSink", "log_footer", "log_header", "run_commands", "shown_command", "summary"]


def _iso(moment: datetime) -> str:
    return utc_iso(moment, timespec="milliseconds")


def _clean(text: str) -> str:
    """Secrets redacted and control characters (ESC…) made visible: safe to show."""
    return without_controls(redact(text))


def shown_command(command: str, limit: int = 200) -> str:
    """``command`` on one line, at most ``limit`` characters, safe for a message."""
    one_line = _clean(" ⏎ ".join(command.strip().split("\n")))
    if len(one_line) > limit:
        one_line = one_line[: limit - 1] + "…"
    return one_line


def log_header(index: int, command: str, started_at: datetime) -> str:
    """The ``commands.log`` line that opens a command (continuation lines marked ``> ``)."""
    first, *more = _clean(command).split("\n")
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
            "command": _clean(r.command),
            "exit_status": r.exit_status,
            "duration_seconds": r.duration_seconds,
            "timed_out": r.timed_out,
            "started_at": _iso(r.started_at),
        }
        for r in results
    ]


class LogSink(Protocol):
    """Where ``commands.log`` goes as it is produced (a file, or a streamed S3 upload)."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


#: An unfinished line longer than this is written out (redacted) without waiting for its end:
#: a command printing megabytes with no newline (a progress bar with ``\r``) must not grow
#: the memory without bound. A secret cut in two there may escape redaction.
MAX_PARTIAL_LINE = 64 * 1024


class _RedactedLines:
    """Writes output to the log a whole line at a time, each line redacted: a secret is
    only recognisable whole, and output arrives in arbitrary pieces."""

    def __init__(self, log: LogSink) -> None:
        self._log = log
        self._partial = ""

    def write(self, text: str) -> None:
        text = self._partial + text
        cut = text.rfind("\n") + 1
        if not cut and len(text) > MAX_PARTIAL_LINE:
            cut = len(text)
        self._partial = text[cut:]
        if cut:
            self._log.write(redact(text[:cut]))

    def finish(self) -> None:
        """Write what is left of an unfinished last line, ending it."""
        if self._partial:
            self._log.write(redact(self._partial) + "\n")
            self._partial = ""


def run_commands(
    session: TerminalSession,
    commands: list[str],
    *,
    timeout: float | None,
    allow_failure: bool = False,
    log: LogSink | None = None,
    results: list[CommandResult] | None = None,
) -> list[CommandResult]:
    """Run ``commands`` in order in ``session``; return their results.

    ``log`` receives the ``commands.log`` text as it is produced (header, the whole
    cleaned output, footer per command). ``results``, if given, is appended to as each
    command ends, so the caller still has them when this raises.

    Raises ``CommandFailed`` for a non-zero or unknown exit status (unless
    ``allow_failure``) and always for a command that ended the shell or lost the
    terminal; ``CommandTimeout`` for one that ran past ``timeout`` seconds (it was
    interrupted with Ctrl-C; the message says whether that stopped it, or whether the
    terminal went with it). Later commands do not run after an error.
    """
    done = results if results is not None else []
    total = len(commands)
    for index, command in enumerate(commands, 1):
        output = _RedactedLines(log) if log is not None else None
        if log is not None:
            log.write(log_header(index, command, datetime.now(UTC)))
        result = session.run(command, timeout=timeout, on_output=output.write if output is not None else None)
        done.append(result)
        if log is not None and output is not None:
            output.finish()
            log.write(log_footer(index, result))
            log.flush()
        _raise_if_failed(result, index, total, timeout, allow_failure)
    return done


def _raise_if_failed(result: CommandResult, index: int, total: int, timeout: float | None,
                     allow_failure: bool) -> None:
    shown = shown_command(result.command)
    facts = {
        "command": shown,
        "command_index": index,
        "commands_total": total,
        "exit_status": result.exit_status,
        "duration_seconds": result.duration_seconds,
    }
    where = f"Command {index} of {total} `{shown}`"
    see_log = "(its output is in the command log)"
    if result.timed_out:
        limit = f"{timeout:g} s" if timeout is not None else "its time limit"
        raise CommandTimeout(f"{where} did not finish within {limit}: {result.note} {see_log}",
                             **facts, timed_out=True, terminal_closed=result.terminal_closed)
    if result.terminal_closed:
        raise CommandFailed(f"{where} failed: {result.note} {see_log}", **facts, terminal_closed=True)
    if result.exit_status != 0 and not allow_failure:
        status = "no exit status" if result.exit_status is None else f"exit status {result.exit_status}"
        note = f" ({result.note})" if result.note else ""
        raise CommandFailed(f"{where} failed with {status}{note} {see_log}", **facts)
