"""Writing a run's files where the user asked: the notebook, and beside it commands.log and HTML."""

from __future__ import annotations

from pathlib import Path

from studiorunner_cli.runs import RunInfo, Runs


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
    if name:
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
