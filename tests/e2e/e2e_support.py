"""Helpers for the end-to-end tests (imported as ``e2e_support``: a module named conftest
is ambiguous when pytest collects several test folders at once)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import nbformat

import localstudio  # noqa: F401  (puts lambdas/ on sys.path)
from localstudio.local_stack import LocalStack
from localstudio.standin import StandIn
from tests.peer_suites import peer_file

REPO = Path(__file__).resolve().parents[2]


def write_notebook(root: Path, name: str, *sources: str, tags: dict[int, list[str]] | None = None,
                   kernel: str = "python3") -> str:
    """Write a notebook of code cells under ``root``; return its path relative to root."""
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": kernel, "display_name": "Python 3", "language": "python"}
    for i, source in enumerate(sources):
        cell = nbformat.v4.new_code_cell(source)
        if tags and i in tags:
            cell.metadata["tags"] = tags[i]
        nb.cells.append(cell)
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return name


class Env:
    """A stand-in plus the local state machine, and helpers to read what a run left."""

    def __init__(self, standin: StandIn, stack: LocalStack, root: Path) -> None:
        self.standin, self.stack, self.root = standin, stack, root

    def run(self, payload: dict[str, Any], timeout: float = 180.0):
        return self.stack.run(payload, timeout=timeout)

    def output(self, execution) -> nbformat.NotebookNode:
        uri = (execution.output or {}).get("output_notebook") or _uri_from_cause(execution.cause)
        return nbformat.reads(self.stack.read_output(uri).decode(), as_version=4)

    def running(self) -> dict[str, list]:
        """What is still running on the stand-in (kernels, sessions, terminals, apps in service)."""
        state = self.standin.state()
        return {
            "kernels": state["kernels"],
            "sessions": state["sessions"],
            "terminals": state["terminals"],
            "apps": [a for a in state["apps"] if a["status"] in ("InService", "Pending")],
            "instances": [i for i in state["notebook_instances"] if i.get("status") in ("InService", "Pending")],
        }


def _uri_from_cause(cause: str | None) -> str:
    import re

    match = re.search(r"s3://\S+?\.ipynb", cause or "")
    assert match, f"no output notebook named in the cause: {cause!r}"
    return match.group(0)


def copy_peer(suite: str, name: str, root: Path) -> str:
    shutil.copy(peer_file(suite, name), root / name)
    return name


def stream_text(cell: nbformat.NotebookNode, name: str = "stdout") -> str:
    """All the text a cell wrote to one stream."""
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == name)


def errors(cell: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [o for o in cell.outputs if o.output_type == "error"]


def assert_nothing_running(env: Env) -> None:
    running = env.running()
    assert running["kernels"] == [] and running["sessions"] == [], running
