"""Writing a run's files where the user asked: the notebook, and beside it commands.log and HTML."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from studiorunner_cli.parameters import UsageError
from studiorunner_cli.runs import RunInfo, Runs


def check_writable(output: str, flag: str = "-o") -> None:
    """``-o``: somewhere this command can write, checked before anything starts (a usage error).

    The folder it names (or the file's folder) need not exist yet; its nearest existing
    ancestor must be a folder we can create files in (a probe file, removed at once: a
    read-only filesystem or missing rights fail here, even for root where access() says yes).
    """
    path = Path(output).expanduser()
    if path.is_dir():
        folder = path
    elif output.endswith(("/", "\\")):
        folder = path
    else:
        if path.exists() and not path.is_file():
            raise UsageError(f"{flag} {output}: not a file or folder we can write")
        folder = path.parent
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{flag} {output}: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".studio-runner-probe-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"{flag} {output}: cannot write in {existing}: {reason}") from None
    if path.is_file() and not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {output}: the file is not writable")


def write_or_keep(runs: Runs, info: RunInfo, output: str | None, default_dir: Path | None,
                  keep_dir: Path | None) -> tuple[list[Path], bool]:
    """``write_outputs``, and when ``-o`` cannot be written after all (the disk filled, the folder
    went away): never drop the notebook. Write it into ``keep_dir`` and say where, else say where
    it still is in S3. Returns what was written and whether ``-o`` was missed (then exit 1)."""
    try:
        return write_outputs(runs, info, output, default_dir), False
    except OSError as exc:
        reason = f"{exc.strerror or type(exc).__name__}" + (f": {exc.filename}" if exc.filename else "")
        print(f"studio-runner: cannot write -o {output} ({reason})", file=sys.stderr)
    if keep_dir is not None:
        try:
            kept = write_outputs(runs, info, None, keep_dir)
        except OSError as again:
            print(f"studio-runner: nor into {keep_dir} ({again.strerror})", file=sys.stderr)
        else:
            if kept:
                print(f"The executed notebook is kept at {kept[0]}", file=sys.stderr)
                return kept, True
    uri = runs.output_uri(info)
    if uri:
        print(f"The executed notebook stays at {uri} (studio-runner download {info.run_id} -o OUT)", file=sys.stderr)
    return [], True


def destination(output: str | None, default: Path, name: str) -> Path:
    """``-o`` as a file, or as a folder to write ``name`` into (an existing folder, or one ending in /)."""
    if not output:
        return default
    path = Path(output).expanduser()
    if path.is_dir() or output.endswith(("/", "\\")):
        return path / name
    return path


def write_outputs(runs: Runs, info: RunInfo, output: str | None, default_dir: Path | None) -> list[Path]:
    """Copy the executed notebook (and commands.log, the HTML rendering when there) out of the bucket.

    Returns what was written, notebook first; nothing if the run left no notebook.
    """
    uri = runs.output_uri(info)
    written: list[Path] = []
    name = uri.rsplit("/", 1)[-1] if uri else None
    folder_uri = uri.rsplit("/", 1)[0] if uri else f"s3://{runs.bucket}/runs/{info.run_id}"
    target = None
    if uri and name:
        default = (default_dir or Path.cwd()) / (name if default_dir else f"{info.run_id}.ipynb")
        target = destination(output, default, name)
        body = runs.get_uri(uri)
        if body is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
            written.append(target)
            html = runs.get_uri(uri[: -len(".ipynb")] + ".html") if uri.endswith(".ipynb") else None
            if html is not None:
                page = target.with_suffix(".html")
                page.write_bytes(html)
                written.append(page)
    log = runs.get_uri(f"{folder_uri}/commands.log")
    if log is not None:
        where = (target.parent if target else destination(output, (default_dir or Path.cwd()) / "x", "x").parent)
        where.mkdir(parents=True, exist_ok=True)
        (where / "commands.log").write_bytes(log)
        written.append(where / "commands.log")
    return written
