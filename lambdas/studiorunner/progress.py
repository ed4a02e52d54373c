"""A run's progress in a few hundred bytes: ``runs/<run id>/progress.json`` beside the notebook.

Who reads it: ``studio-runner watch`` / ``run --wait`` and the local CLI, several times a
second. Before it existed they re-read and re-validated the whole output notebook on every
poll (39 % of a 1,000-cell local run's CPU); this file costs a small ``put_object`` at most
once a second (throttled like the notebook, by time and by the cost of the last write),
whatever the number of cells.

Shape (all times UTC ISO 8601)::

    {"run_id": "...", "state": "running" | "done" | "failed", "updated_at": "...",
     "cells_total": 6, "cells_finished": 3, "cells_failed": 0,
     "current": {"cell": 4, "started_at": "...", "lines": ["last", "output", "lines"]} | null,
     "finished": [{"n": 3, "cell": 3, "status": "completed", "seconds": 0.01}, ...],
     "error": {"name": ..., "message": ...} | null,
     "log": {"id": "3f2a…", "entries": [[seq, cell, "start" | "line" | "end", text | null], ...]}}

Cells are recorded by their index in the notebook as run (0-based; people read it + 1, as papermill
and errors name cells: "Cell 5");
``finished`` keeps the last ``KEEP_FINISHED`` cells, each with its sequence number ``n``
(1 = first cell to finish in the run), so a reader polling slower than cells finish can
tell how many it missed.

``log`` is what ``run --log-output`` streams (papermill's flag): each cell's start and end and
every complete line it printed, numbered ``seq`` from 1; a later RunCells invocation reads the
file and goes on with the same ``id`` and numbers (else a reader that had not seen the previous
invocation's last write lost its last lines); the last ``LOG_KEEP`` entries are kept, so a reader
that fell further behind can tell how many it missed.

A progress write never fails a run: the notebook is what counts; a failed write is logged
and retried at the next cell.

Throttling must not hide the latest state: a change that is not written because the last
write was too recent is written by a timer once the interval has passed (the cell that
started just after a write, then runs for an hour, shows as running, not its predecessor).
The timer never outlives the invocation: ``finish`` cancels it and writes.

How far behind the run it is (issue 17: the CLI was ~5 s behind, piped output 25–30 s): every
write but ``finish``'s happens on the timer's thread, never in the executor's message loop,
so a slow store delays only the file, not the cells; the interval is ``min_interval`` (1 s)
unless a write took longer than half of it (then twice the last write); a running cell's last
lines are refreshed every ``refresh_seconds`` (1 s; it was 5 s). The file is written again
only when something changed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from nbformat import NotebookNode

logger = logging.getLogger(__name__)

PROGRESS_NAME = "progress.json"
KEEP_FINISHED = 100
LAST_LINES = 5
LOG_KEEP = 300
_LINE_CHARS = 300


def progress_uri(output_uri: str) -> str:
    """``s3://b/runs/<id>/report.ipynb`` → ``s3://b/runs/<id>/progress.json``."""
    return output_uri.rsplit("/", 1)[0] + "/" + PROGRESS_NAME


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _output_text(output: dict[str, Any]) -> str:
    """An output's text as a person reads it: a stream's text, ``ename: evalue``, or text/plain
    (each non-stream output ends its line)."""
    kind = output.get("output_type")
    if kind == "stream":
        text = output.get("text", "")
        return "".join(text) if isinstance(text, list) else str(text)
    if kind == "error":
        return f"{output.get('ename', '')}: {output.get('evalue', '')}\n"
    text = (output.get("data") or {}).get("text/plain", "")
    text = "".join(text) if isinstance(text, list) else str(text)
    return text + "\n" if text else ""


def last_lines(cell: NotebookNode | dict[str, Any], limit: int = LAST_LINES) -> list[str]:
    """The last ``limit`` lines of text a cell printed (streams, text/plain, errors), newest last."""
    lines: list[str] = []
    for output in reversed(cell.get("outputs") or []):
        lines[:0] = [line[:_LINE_CHARS] for line in _output_text(output).splitlines() if line.strip()]
        if len(lines) >= limit:
            break
    return lines[-limit:]


class _CellLog:
    """The complete lines a cell's outputs hold that were not logged yet (incremental: a stream
    output only grows, so each call reads only its new text)."""

    def __init__(self) -> None:
        self.outputs_done = 0  # outputs read to the end
        self.chars = 0  # of outputs[outputs_done] already read
        self.reading: Any = None  # that output (a new object after clear_output: read from its start)

    def new_lines(self, outputs: list[Any], *, final: bool) -> list[str]:
        if self.outputs_done > len(outputs):  # clear_output
            self.outputs_done, self.chars = 0, 0
        lines: list[str] = []
        while self.outputs_done < len(outputs):
            output = outputs[self.outputs_done]
            text = _output_text(output)
            if output is not self.reading or len(text) < self.chars:  # another output, or replaced in place
                self.reading, self.chars = output, 0
            chunk = text[self.chars:]
            growing = self.outputs_done == len(outputs) - 1 and output.get("output_type") == "stream" and not final
            if growing:
                cut = chunk.rfind("\n")
                if cut >= 0:
                    lines += chunk[:cut].split("\n")
                    self.chars += cut + 1
                break
            lines += chunk.splitlines()
            self.outputs_done, self.chars = self.outputs_done + 1, 0
        return [line[:_LINE_CHARS] for line in lines]


class ProgressReporter:
    """Keeps ``progress.json`` for one RunCells invocation (it resumes the counts it finds in the cursor).

    ``write(uri, data)`` stores bytes (the notebook store's ``write_bytes``);
    ``on_cell_finished(record)`` is told each finished cell (the Lambda edge logs it).
    """

    def __init__(
        self,
        write: Callable[[str, bytes], None],
        uri: str,
        *,
        run_id: str,
        cells_total: int,
        cells_finished: int = 0,
        cells_failed: int = 0,
        finished: list[dict[str, Any]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        min_interval: float = 1.0,
        cost_factor: float = 2.0,
        on_cell_finished: Callable[[dict[str, Any]], None] | None = None,
        refresh_seconds: float = 1.0,
        log: dict[str, Any] | None = None,
    ) -> None:
        self._write, self.uri, self._clock = write, uri, clock
        self.min_interval, self.cost_factor = min_interval, cost_factor
        self.on_cell_finished = on_cell_finished
        self.data: dict[str, Any] = {
            "run_id": run_id, "state": "running", "updated_at": _now_iso(),
            "cells_total": cells_total, "cells_finished": cells_finished, "cells_failed": cells_failed,
            "current": None, "finished": list(finished or [])[-KEEP_FINISHED:], "error": None,
            "log": {"id": uuid.uuid4().hex[:12], "entries": []},
        }
        self._seq = 0
        entries = (log or {}).get("entries") if isinstance(log, dict) else None
        if isinstance(log, dict) and isinstance(log.get("id"), str) and isinstance(entries, list):
            # The previous invocation's log goes on (same id, numbers after its last): a reader that
            # had not seen its last entries before this invocation's first write still gets them.
            kept = [e for e in entries if isinstance(e, list) and len(e) == 4 and isinstance(e[0], int)][-LOG_KEEP:]
            self.data["log"] = {"id": log["id"], "entries": kept}
            self._seq = kept[-1][0] if kept else 0
        # How far the previous invocation had logged the cell it left running (``reading``): the
        # notebook the next one reads may hold lines printed after that invocation's last write.
        reading = log.get("reading") if isinstance(log, dict) else None
        self._resume_reading: dict[str, Any] | None = reading if isinstance(reading, dict) else None
        self._cell_logs: dict[int, _CellLog] = {}
        self._lock = threading.RLock()  # the data; never held during a write
        self._write_lock = threading.Lock()  # one write at a time, each of the latest data
        self._timer: threading.Timer | None = None
        self._dirty = False
        self._closed = False
        self.refresh_seconds = refresh_seconds
        self._current: tuple[int, NotebookNode] | None = None
        self._started: dict[int, float] = {}
        self._last_end: float | None = None
        self._last_cost = 0.0
        self.writes = 0

    # -- the executor's callbacks -------------------------------------------------
    def cell_started(self, index: int, cell: NotebookNode) -> None:
        with self._lock:
            self._current = (index, cell)
            self._started.setdefault(index, time.time())
            if self.data["current"] is None or self.data["current"]["cell"] != index:
                self.data["current"] = {"cell": index, "started_at": _now_iso(), "lines": []}
            if index not in self._cell_logs:
                log = self._cell_logs[index] = _CellLog()
                if cell.get("outputs"):  # resumed (see cell_resumed): log only what is new
                    log.new_lines(cell.get("outputs") or [], final=False)
                else:
                    self._log(index, "start")
        self.save_if_due()

    def cell_resumed(self, index: int, cell: NotebookNode) -> None:
        """The cell a previous RunCells invocation left running, as this one takes it over: it is
        the running cell again, and its start and the lines it had printed were logged by that
        invocation (the terminal must not show them twice): only what it prints from now on is."""
        started = (cell.get("metadata", {}).get("papermill") or {}).get("start_time")
        with self._lock:
            self._current = (index, cell)
            try:
                self._started[index] = datetime.fromisoformat(started).timestamp() if isinstance(started, str) \
                    else time.time()
            except ValueError:
                self._started[index] = time.time()
            self.data["current"] = {"cell": index, "started_at": started or _now_iso(), "lines": []}
            log = self._cell_logs[index] = _CellLog()
            reading = self._resume_reading
            outputs = cell.get("outputs") or []
            if reading and reading.get("cell") == index and isinstance(reading.get("outputs"), int) \
                    and isinstance(reading.get("chars"), int) and reading["outputs"] <= len(outputs):
                # Where the previous invocation stopped logging: what the cell printed since is new.
                log.outputs_done, log.chars = reading["outputs"], reading["chars"]
                log.reading = outputs[log.outputs_done] if log.outputs_done < len(outputs) else None
            else:  # a progress file of an older version: take what the cell holds as logged
                log.new_lines(outputs, final=False)
        self.save_if_due()

    def _log(self, index: int, kind: str, text: str | None = None) -> None:
        self._seq += 1
        entries = self.data["log"]["entries"]
        entries.append([self._seq, index, kind, text])
        if len(entries) > LOG_KEEP:
            del entries[: len(entries) - LOG_KEEP]

    def _log_lines(self, index: int, cell: NotebookNode, *, final: bool) -> None:
        log = self._cell_logs.get(index)
        if log is None:
            return
        for line in log.new_lines(cell.get("outputs") or [], final=final):
            self._log(index, "line", line)
        if final:
            del self._cell_logs[index]
            self._log(index, "end")
            self.data["log"].pop("reading", None)
        else:
            self.data["log"]["reading"] = {"cell": index, "outputs": log.outputs_done, "chars": log.chars}

    def cell_finished(self, index: int, cell: NotebookNode, status: str) -> None:
        if status == "skipped":
            # Not run, and not in cells_total (the cells a run executes). Bug fix: it took a
            # number in the sequence, so the CLI printed "(3/2)" (issue 20).
            return
        with self._lock:
            record = self._finished(index, cell, status)
        if self.on_cell_finished:
            self.on_cell_finished(record)
        self.save_if_due()

    def _finished(self, index: int, cell: NotebookNode, status: str) -> dict[str, Any]:
        self._log_lines(index, cell, final=True)
        started = self._started.pop(index, None)
        seconds = round(time.time() - started, 3) if started is not None else None
        data = self.data
        data["cells_finished"] += 1
        if status == "failed":
            data["cells_failed"] += 1
        record = {"n": data["cells_finished"], "cell": index, "status": status, "seconds": seconds}
        finished = data["finished"]
        finished.append(record)
        if len(finished) > KEEP_FINISHED:
            del finished[: len(finished) - KEEP_FINISHED]
        if self._current and self._current[0] == index:
            self._current = None
            data["current"] = None
        return record

    # -- saving -------------------------------------------------------------------
    def due(self) -> bool:
        if self._last_end is None:
            return True
        return self._clock() - self._last_end >= max(self.min_interval, self.cost_factor * self._last_cost)

    def save_if_due(self) -> bool:
        """Have the change written: now on the timer's thread when due, else when the interval has
        passed. True when the write is due now. The caller (the executor) never waits for it."""
        with self._lock:
            self._dirty = True
            due = self.due()
            if self._timer is None:
                self._schedule(0.0 if due else self._interval() - (self._clock() - (self._last_end or 0.0)))
            return due

    def _interval(self) -> float:
        return max(self.min_interval, self.cost_factor * self._last_cost)

    def _schedule(self, delay: float) -> None:
        if self._closed:
            return
        self._timer = threading.Timer(max(delay, 0.0), self._trailing_write)
        self._timer.daemon = True
        self._timer.start()

    def _trailing_write(self) -> None:
        """Write what throttling held back; while a cell runs, refresh its last lines now and then."""
        with self._lock:
            if self._closed:
                self._timer = None
                return
            current = self.data["current"]
            try:
                if self._current is not None and current is not None and last_lines(self._current[1]) != current["lines"]:
                    self._dirty = True  # (a cell printing the same last lines again is caught by the next change)
            except (IndexError, KeyError, TypeError, AttributeError, ValueError):
                self._dirty = True  # changing as it was read: write it
            dirty = self._dirty
            if not dirty:
                self._timer = None
                if self._current is not None:
                    self._schedule(max(self.refresh_seconds, self._interval()))
                return
        try:
            self.flush()  # outside the data lock: the executor goes on while it writes
        finally:
            with self._lock:
                self._timer = None
                if self._dirty:  # changed while it wrote
                    self._schedule(self._interval())
                elif self._current is not None:
                    self._schedule(max(self.refresh_seconds, self._interval()))  # the live lines of a long cell

    def finish(self, state: str, error: dict[str, Any] | None = None) -> None:
        """The invocation ends: ``running`` (more to come), ``done`` or ``failed``; always written,
        here, before it returns (a timer's write in flight finishes first, then this one)."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self.data["state"] = state
            self.data["error"] = error
            if state != "running":
                self.data["current"] = None
                self._current = None
        self.flush()

    def flush(self) -> None:
        """Write the latest data now (in the calling thread; the data lock is not held meanwhile)."""
        with self._write_lock:
            with self._lock:  # the body is taken after the write lock: a later write never has older data
                self._dirty = False
                if self._current is not None and self.data["current"] is not None:
                    # Read only now, at most once per write: the cell's outputs, never the notebook.
                    try:
                        self.data["current"]["lines"] = last_lines(self._current[1])
                        self._log_lines(*self._current, final=False)
                    except (IndexError, KeyError, TypeError, AttributeError, ValueError):
                        pass  # the executor changed the outputs as they were read (clear_output): the next write has them
                self.data["updated_at"] = _now_iso()
                body = json.dumps(self.data, separators=(",", ":")).encode()
            started = self._clock()
            try:
                self._write(self.uri, body)
            except Exception as exc:  # noqa: BLE001 - progress is a convenience; the run must go on
                logger.warning("could not write %s: %s", self.uri, type(exc).__name__)
            ended = self._clock()
            with self._lock:
                self._last_cost = max(0.0, ended - started)
                self._last_end = ended
                self.writes += 1


def read_progress(data: bytes) -> dict[str, Any]:
    """Parse a ``progress.json``; an unreadable one reads as empty (the next poll will do)."""
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def reporter_for(state: dict[str, Any], store: Any, **options: Any) -> ProgressReporter | None:
    """The reporter for a RunCells invocation, from the state alone (no notebook read); None if
    the state has no output notebook (then there is nothing to report beside)."""
    run, kernel, cursor = state.get("run") or {}, state.get("kernel") or {}, state.get("cursor") or {}
    if not run.get("output_uri"):
        return None

    def write(uri: str, data: bytes) -> None:
        store.write_bytes(uri, data, content_type="application/json")

    uri = progress_uri(run["output_uri"])
    log = None
    if cursor.get("pending") or cursor.get("cells_executed"):  # a later invocation: continue the log
        try:
            log = read_progress(store.read_bytes(uri)).get("log")
        except Exception:  # noqa: BLE001 - progress is a convenience: a fresh log then
            log = None
    return ProgressReporter(
        write, uri, run_id=str(run.get("run_id", "")),
        cells_total=int(kernel.get("cells_total") or 0),
        cells_finished=int(cursor.get("cells_executed") or 0), cells_failed=int(cursor.get("cells_failed") or 0),
        log=log, **options,
    )
