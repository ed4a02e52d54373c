"""What the CLI prints while a run goes on, read from ``progress.json`` (never the notebook).

Cells are named as papermill names them ("Executing Cell 3"), as errors name them: ``Cell <position
in the notebook as run, from 1>`` (markdown cells count, papermill's error banner cells do not).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from studiorunner_cli.runs import RunInfo, Runs

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _seconds(value: Any) -> str:
    return f"{value:.2f}s" if isinstance(value, (int, float)) else "-"


def _since(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()
    except ValueError:
        return None


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class ProgressPrinter:
    """Prints each cell once as it finishes, and what the running cell is doing."""

    def __init__(self, out: TextIO | None = None, *, live_every: float = 30.0, log_output: bool = False) -> None:
        self.out = out = out or sys.stdout
        self.printed = 0  # sequence number (n) of the last finished cell printed
        self.log_output = log_output  # stream every output line (papermill's --log-output)
        self._log_id: str | None = None
        self._log_seq = 0  # the last log entry printed
        self.log_missed = 0  # lines the stream could not show (fell behind the kept entries)
        self.live_every = live_every
        self._current: tuple[Any, float] | None = None  # (cell, when its line was last printed)
        self._tty = getattr(out, "isatty", lambda: False)()
        self._line_open = False
        self._phase: str | None = None

    def phase(self, text: str | None) -> None:
        """Say what the run is doing outside its cells (a slot, the target, a kernel), once per change."""
        if text and text != self._phase and text != "running cells":
            # counts in a slot message change on every poll: say it again only when the state does
            if not (self._phase and text.split(" (")[0] == self._phase.split(" (")[0]):
                self._write(f"  … {text}")
        self._phase = text

    def _write(self, text: str) -> None:
        if self._line_open:
            self.out.write("\r\033[K")
            self._line_open = False
        self.out.write(text + "\n")
        self.out.flush()

    def _stream_log(self, log: dict[str, Any]) -> None:
        """Each output line as the run printed it, between papermill's cell markers."""
        if log.get("id") != self._log_id:  # a new RunCells invocation numbers from 1 again
            self._log_id, self._log_seq = log.get("id"), 0
        entries = [e for e in log.get("entries") or [] if e[0] > self._log_seq]
        if entries and entries[0][0] > self._log_seq + 1:
            missed = entries[0][0] - self._log_seq - 1
            self.log_missed += missed
            self._write(f"… {missed} output lines not shown here (the notebook has them: studio-runner logs RUN)")
        for seq, cell, kind, text in entries:
            if kind == "start":
                self._write(f"Executing Cell {cell + 1:-<40}")
            elif kind == "end":
                self._write(f"Ending Cell {cell + 1:-<43}")
            else:
                self._write(text if self._tty else _ANSI.sub("", text))
            self._log_seq = seq

    def update(self, progress: dict[str, Any]) -> None:
        if not progress:
            return
        if self.log_output and isinstance(progress.get("log"), dict):
            self._stream_log(progress["log"])
        finished = [f for f in progress.get("finished") or [] if f.get("n", 0) > self.printed]
        if finished and finished[0]["n"] > self.printed + 1:
            self._write(f"  … {finished[0]['n'] - self.printed - 1} more cells finished")
        total = progress.get("cells_total") or "?"
        for record in finished:
            self._write(f"  Cell {record['cell'] + 1:<4} {record['status']:<9} {_seconds(record.get('seconds')):>8}"
                        f"   ({record['n']}/{total})")
            self.printed = record["n"]
        current = progress.get("current")
        if not current:
            self._current = None
            return
        running = _since(current.get("started_at")) or 0.0
        lines = current.get("lines") or []
        tail = f": {lines[-1][:80]}" if lines else ""
        text = f"  Cell {current['cell'] + 1:<4} running for {duration_text(running)}{tail}"
        if self._tty:
            self.out.write("\r\033[K" + text)
            self.out.flush()
            self._line_open = True
        elif self._current is None or self._current[0] != current["cell"] or time.monotonic() - self._current[1] >= self.live_every:
            # Piped: the running cell's line once, then every live_every seconds; its output
            # lines only with --log-output, then all of them, in order (not a sample of the last few).
            self._write(f"  Cell {current['cell'] + 1:<4} running for {duration_text(running)}"
                        if self.log_output else text)
        if self._current is None or self._current[0] != current["cell"]:
            self._current = (current["cell"], time.monotonic())
        elif not self._tty and time.monotonic() - self._current[1] >= self.live_every:
            self._current = (current["cell"], time.monotonic())

    def close(self) -> None:
        if self._line_open:
            self.out.write("\r\033[K")
            self.out.flush()
            self._line_open = False


def follow(runs: Runs, run_id: str, printer: ProgressPrinter, *, poll: float = 1.0,
           tick: Callable[[], None] | None = None) -> RunInfo:
    """Until the run ends: print its progress; return how it ended."""
    while True:
        info = runs.describe(run_id)
        progress = runs.progress(info)
        printer.update(progress)  # what the cells did first: then what the run does after them
        if not (progress.get("current") and info.status == "RUNNING"):
            printer.phase(runs.phase(info))  # no cell running: one history call says what is happening
        if info.status != "RUNNING":
            printer.close()
            return info
        if tick:
            tick()
        time.sleep(poll)
