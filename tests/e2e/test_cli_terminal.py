"""What the terminal says (issue 17 point 3), with the CLI's output piped into a file as CI does:
every line there, in order; --log-output streams each output line between papermill's cell
markers; a failure ends with the failing cell's traceback as papermill prints it; an unknown
parameter is a warning before the run starts; the HTML page's path is printed when one was written.

The run is real (a stand-in, the state machine in moto, a kernel); no timing is asserted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
from e2e_support import REPO


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STUDIO_RUNNER_", "POWERTOOLS_"))}
    env["PYTHONPATH"] = str(REPO)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env["TMPDIR"] = str(tmp_path / "tmp")
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    return env


def _notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("# A heading: papermill counts this cell too"))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _run_piped(tmp_path: Path, *args: str) -> tuple[int, list[str]]:
    """The CLI with stdout and stderr into one file (`> log 2>&1`), not a terminal."""
    log = tmp_path / "run.log"
    with log.open("w") as out:
        code = subprocess.run([sys.executable, "-m", "studiorunner_cli", "run", "--local", *args], cwd=tmp_path,
                              env=_env(tmp_path), stdout=out, stderr=subprocess.STDOUT, timeout=300).returncode
    return code, log.read_text().splitlines()


def test_piped_log_output_has_every_line_in_order(tmp_path):
    nb = _notebook(tmp_path / "project" / "chatty.ipynb", "rows = 3",
                   "for i in range(rows):\n    print(f'row {i}', flush=True)\n    __import__('time').sleep(0.3)",
                   "print('\\n'.join(f'burst {i}' for i in range(50)))")
    code, lines = _run_piped(tmp_path, str(nb), "-p", "rows", "5", "-p", "colour", "blue", "--log-output",
                             "-o", str(tmp_path / "out.ipynb"))
    text = "\n".join(lines)

    assert code == 0, text
    # the unknown parameter, said before anything starts
    warning = "studio-runner: warning: Parameter 'colour' is not defined in the notebook's parameters cell"
    assert lines.index(warning) < next(i for i, line in enumerate(lines) if line.startswith("Studio stand-in"))
    # papermill's numbering: cell 1 parameters, 2 injected, 3 markdown, 4 the loop, 5 the burst
    streamed = [line for line in lines if line.startswith(("Executing Cell", "Ending Cell", "row ", "burst "))]
    expected = []
    for number, body in ((1, []), (2, []), (4, [f"row {i}" for i in range(5)]), (5, [f"burst {i}" for i in range(50)])):
        expected += [f"Executing Cell {number:-<40}", *body, f"Ending Cell {number:-<43}"]
    assert streamed == expected, text
    assert "not streamed" not in text and "not shown here" not in text
    # the progress lines, each cell once, in order, numbered as papermill numbers them
    finished = [line.split()[1] for line in lines if line.startswith("  Cell ") and " completed " in line]
    assert finished == ["1", "2", "4", "5"], text
    assert lines[-2].startswith("SUCCEEDED") and lines[-1] == f"Executed notebook: {tmp_path / 'out.ipynb'}"
    assert text.count("row 0") == 1  # not printed again at the end


def test_piped_failure_ends_with_the_traceback_and_the_pages_path(tmp_path):
    nb = _notebook(tmp_path / "project" / "fails.ipynb", "divisor = 1", "print('before')", "1 / divisor")
    code, lines = _run_piped(tmp_path, str(nb), "-p", "divisor", "0", "--html", "-o", str(tmp_path / "out") + "/")
    text = "\n".join(lines)

    assert code == 1, text
    one_line = next(i for i, line in enumerate(lines) if line.startswith("FAILED in "))
    assert "CellExecutionError: Cell 5 (In [4]) raised ZeroDivisionError: division by zero" in lines[one_line]
    # then the traceback as papermill prints it (no colour codes in a file)
    assert lines[one_line + 1:one_line + 4] == ["", "-" * 75, 'Exception encountered at "In [4]":']
    tail = "\n".join(lines[one_line + 4:])
    assert "ZeroDivisionError" in tail and "----> 1 1 / divisor" in tail and "\x1b[" not in text
    assert f"Executed notebook (with the error marked): {tmp_path / 'out' / 'fails.ipynb'}" in lines
    assert f"HTML page: {tmp_path / 'out' / 'fails.html'}" in lines
    assert (tmp_path / "out" / "fails.html").is_file()


def test_cwd_is_where_the_kernel_runs(tmp_path):
    """papermill's --cwd: the kernel's working folder, not the notebook's (payload 'cwd')."""
    nb = _notebook(tmp_path / "project" / "where.ipynb", "import os\nprint(os.path.basename(os.getcwd()))",
                   "print(open('input.csv').read())")
    (tmp_path / "project" / "data").mkdir()
    (tmp_path / "project" / "data" / "input.csv").write_text("a,b\n")
    code, lines = _run_piped(tmp_path, str(nb), str(tmp_path / "out.ipynb"), "--cwd", str(tmp_path / "project" / "data"))

    assert code == 0, "\n".join(lines)
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    code_cells = [c for c in out.cells if c.cell_type == "code"]
    assert code_cells[0].outputs[0].text == "data\n" and code_cells[1].outputs[0].text == "a,b\n\n"
    assert sorted(p.name for p in (tmp_path / "project" / "data").iterdir()) == ["input.csv"]  # nothing of the run's


def test_a_cell_longer_than_one_run_cells_invocation_streams_each_line_once(tmp_path):
    """--budget 2: RunCells hands the running cell to the next invocation several times; the
    terminal shows its start once and each of its lines once, in order."""
    nb = _notebook(tmp_path / "project" / "long.ipynb", "steps = 8",
                   "import time\nfor i in range(steps):\n    print(f'step {i}', flush=True)\n    time.sleep(0.8)")
    code, lines = _run_piped(tmp_path, str(nb), "--log-output", "--budget", "2", "-o", str(tmp_path / "out.ipynb"))
    text = "\n".join(lines)

    assert code == 0, text
    streamed = [line for line in lines if line.startswith(("Executing Cell 3", "Ending Cell 3", "step "))]
    assert streamed == [f"Executing Cell {3:-<40}", *[f"step {i}" for i in range(8)], f"Ending Cell {3:-<43}"], text
