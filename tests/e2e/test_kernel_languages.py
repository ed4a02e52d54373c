"""Parameters in other kernel languages (issue 18.4): real IRkernel and bash_kernel processes on the
stand-in, run by the state machine, parameters injected by papermill's translator for the language.

The kernels are what ``make test`` installs (``make kernels``: Debian's r-cran-irkernel and PyPI's
bash_kernel, their kernelspecs registered in the venv, where the stand-in's jupyter_server finds
them). A machine without them skips these tests, saying which is missing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from e2e_support import REPO, Env, assert_nothing_running, errors, stream_text
from jupyter_client.kernelspec import KernelSpecManager

from localstudio.local_stack import LocalStack
from localstudio.standin import StandIn

SPECS = KernelSpecManager().find_kernel_specs()  # the venv's (sys.prefix), as the stand-in's server sees them


def _needs(kernel: str):
    return pytest.mark.skipif(kernel not in SPECS, reason=f"kernel {kernel!r} is not installed (run `make kernels`)")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("languages-home")
    with StandIn(root=root, flavor="studio-space") as standin, LocalStack(standin, wait_scale=0.05) as stack:
        yield Env(standin, stack, root)


def notebook(root: Path, name: str, kernel: str, language: str, *sources: str) -> str:
    """A notebook in ``language`` whose first cell is tagged ``parameters``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": kernel, "display_name": kernel, "language": language}
    nb.metadata.language_info = {"name": language}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nb, root / name)
    return name


R_PARAMETERS = {"run_date": "2026-11-22", "n": 21, "ratio": 0.5, "verbose": True, "nothing": None,
                "regions": ["eu", "us"], "limits": {"cpu": 2, "label": 'say "hi"'}, "_private": "kept"}


@_needs("ir")
def test_a_parameterised_r_notebook_runs_end_to_end(env: Env) -> None:
    path = notebook(
        env.root, "report.ipynb", "ir", "R",
        'run_date <- "2000-01-01"\nn <- 1\nratio <- 0\nverbose <- FALSE\nnothing <- 1\nregions <- list()\n'
        "limits <- list()\nprivate <- NULL",
        'cat(run_date, n * 2, ratio, verbose, is.null(nothing), length(regions), regions[[2]], '
        'limits$cpu, limits$label, private, sep = "|")',
    )
    execution = env.run({"notebook": path, "parameters": R_PARAMETERS})

    assert execution.succeeded, (execution.error, execution.cause)
    nb = env.output(execution)
    assert nb.cells[1].metadata.tags == ["injected-parameters"]
    assert nb.cells[1].source == (
        '# Parameters\nrun_date = "2026-11-22"\nn = 21\nratio = 0.5\nverbose = TRUE\nnothing = NULL\n'
        'regions = list("eu", "us")\nlimits = list("cpu" = 2, "label" = "say \\"hi\\"")\nprivate = "kept"\n'
    )
    assert stream_text(nb.cells[2]) == '2026-11-22|42|0.5|TRUE|TRUE|2|us|2|say "hi"|kept'
    assert [c.metadata.papermill["status"] for c in nb.cells] == ["completed"] * 3
    assert execution.output.get("warnings") in (None, [])  # every name is in the parameters cell
    assert_nothing_running(env)


@_needs("ir")
def test_an_r_error_is_marked_in_its_cell_and_fails_the_run(env: Env) -> None:
    path = notebook(env.root, "fails.ipynb", "ir", "R", "limit <- 1", 'if (limit > 5) stop("limit too high: ", limit)',
                    'cat("never")')
    execution = env.run({"notebook": path, "parameters": {"limit": 9}})

    assert execution.status == "FAILED"
    assert execution.error == "CellExecutionError", (execution.error, execution.cause)
    assert execution.cause.startswith("Cell 3 (In [3]) raised ERROR: Error in eval(expr, envir, enclos): limit too high: 9")
    nb = env.output(execution)
    cells = [c for c in nb.cells if "papermill-error-cell-tag" not in c.metadata.get("tags", [])]
    assert "limit too high: 9" in errors(cells[2])[0].evalue
    assert cells[3].metadata.papermill["status"] == "pending"
    assert_nothing_running(env)


@_needs("bash")
def test_a_parameterised_bash_notebook_runs_end_to_end(env: Env) -> None:
    path = notebook(
        env.root, "job.sh.ipynb", "bash", "bash",
        "msg=default\nN=1\nDRY_RUN=true\nEMPTY=x\nITEMS=()",
        'echo "$msg|$((N * 2))|$DRY_RUN|${EMPTY:-unset}|${#ITEMS[@]}|${ITEMS[1]}"',
    )
    execution = env.run({"notebook": path, "parameters": {
        "msg": "it's $HOME; rm -rf /", "N": 21, "DRY_RUN": False, "EMPTY": None, "ITEMS": ["a b", 2],
        "UNDECLARED": 1}})

    assert execution.succeeded, (execution.error, execution.cause)
    nb = env.output(execution)
    assert nb.cells[1].source == ("# Parameters\nmsg='it'\"'\"'s $HOME; rm -rf /'\nN=21\nDRY_RUN=false\nEMPTY=\n"
                                  "ITEMS=('a b' 2)\nUNDECLARED=1\n")
    assert stream_text(nb.cells[2]).strip() == "it's $HOME; rm -rf /|42|false|unset|2|2"
    assert execution.output["warnings"] == ["Parameter 'UNDECLARED' is not defined in the notebook's parameters cell"]
    assert_nothing_running(env)


@_needs("bash")
@pytest.mark.parametrize("parameters, words", [
    ({"café": 1}, "parameter name 'café' is not a valid bash variable name"),
    ({"opts": {"a": 1}}, "parameter 'opts' is an object (dict), which papermill's bash translator cannot write"),
])
def test_what_bash_cannot_take_is_payload_invalid_before_a_kernel_starts(env: Env, parameters, words) -> None:
    path = notebook(env.root, "refused.ipynb", "bash", "bash", "x=1", "echo $x")
    execution = env.run({"notebook": path, "parameters": parameters})

    assert execution.status == "FAILED"
    assert execution.error == "PayloadInvalid" and words in execution.cause, (execution.error, execution.cause)
    assert_nothing_running(env)


@_needs("ir")
def test_cli_runs_an_r_notebook_with_papermill_style_parameters(tmp_path: Path) -> None:
    root = tmp_path / "home"
    root.mkdir()
    notebook(root, "r.ipynb", "ir", "R", 'region <- "eu"\ncount <- 0\nmy.flag <- FALSE', 'cat(region, count + 1, my.flag)')
    out = tmp_path / "out.ipynb"
    done = subprocess.run(
        [sys.executable, "-m", "studiorunner_cli", "run", "--local", str(root / "r.ipynb"), "-p", "region", "us",
         "-p", "count", "41", "-p", "my.flag", "True", "-o", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    nb = nbformat.read(out, as_version=4)
    assert stream_text(nb.cells[2]) == "us 42 TRUE"
    assert json.loads(json.dumps(nb.metadata.papermill.parameters)) == {"region": "us", "count": 41, "my.flag": True}


@_needs("bash")
def test_a_notebook_that_names_no_language_gets_its_kernelspecs_translator(env: Env) -> None:
    """Only ``kernelspec.name`` in the notebook (nbformat requires no language): the language is the
    server's kernelspec's (papermill would refuse: no language found), so bash gets ``x=1``, not ``x = 1``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "bash", "display_name": "Bash"}
    nb.cells = [nbformat.v4.new_code_cell("GREETING=hi"), nbformat.v4.new_code_cell('echo "$GREETING"')]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nb, env.root / "nolang.ipynb")

    execution = env.run({"notebook": "nolang.ipynb", "parameters": {"GREETING": "hello"}})

    assert execution.succeeded, (execution.error, execution.cause)
    out = env.output(execution)
    assert out.cells[1].source == "# Parameters\nGREETING=hello\n"
    assert stream_text(out.cells[2]).strip() == "hello"


@_needs("ir")
def test_kernel_language_in_the_payload_wins_over_the_notebooks_metadata(env: Env) -> None:
    """papermill's -k ir -l R on a notebook saved with Python's metadata: R code is injected."""
    path = notebook(env.root, "saved_as_python.ipynb", "python3", "python", "flag <- FALSE", "cat(isTRUE(flag))")
    execution = env.run({"notebook": path, "kernel": {"name": "ir", "language": "R"}, "parameters": {"flag": True}})

    assert execution.succeeded, (execution.error, execution.cause)
    out = env.output(execution)
    assert out.cells[1].source == "# Parameters\nflag = TRUE\n"
    assert stream_text(out.cells[2]) == "TRUE"
