"""papermill's interface where ours had no reason to differ (issue 18 point 3) and one check of
parameter names by the notebook's language before anything starts (issue 20 fault 9).

Each flag is compared with what papermill 2.7 (requirements-dev) does with the same command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from studiorunner_cli.main import main, parser  # noqa: E402
from studiorunner_cli.parameters import UsageError, collect  # noqa: E402
from studiorunner_cli.run import RunOptions, check_run_args, papermill_spellings  # noqa: E402
from studiorunner_cli.verb import options_from  # noqa: E402

PEERS = next((p / "shared" / "peer-suites" / "papermill" for p in REPO.parents
              if (p / "shared" / "peer-suites" / "papermill").is_dir()), None)


def options(*argv: str) -> RunOptions:
    return options_from(parser().parse_args(["run", *argv]), RunOptions)


def write(path: Path, *sources: str, language: str = "python", kernel: str = "python3", tag_first: bool = True) -> Path:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": kernel, "language": language, "display_name": kernel}})
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    if tag_first and nb.cells:
        nb.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nb, path)
    return path


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- issue 20 fault 9: one check, the language's rules, exit 2 before anything starts ---------------


def test_a_python_keyword_is_a_usage_error_before_anything_starts(here, capsys):
    write(here / "nb.ipynb", "x = 1")
    assert main(["run", "nb.ipynb", "-p", "class", "1", "--local"]) == 2
    err = capsys.readouterr().err
    assert "PayloadInvalid: Invalid parameters for this Python notebook: parameter name 'class' is a Python keyword" \
        in err, err


def test_a_unicode_identifier_is_a_python_parameter_as_in_papermill(here):
    write(here / "nb.ipynb", "café = 0")
    plan = check_run_args(options("nb.ipynb", "-p", "café", "1"))
    assert plan.payload["parameters"] == {"café": 1}
    assert plan.notes == []


def test_names_follow_the_notebooks_language(here):
    write(here / "r.ipynb", "my.flag <- FALSE", language="R", kernel="ir")
    assert check_run_args(options("r.ipynb", "-p", "my.flag", "True")).payload["parameters"] == {"my.flag": True}
    write(here / "job.ipynb", "x=1", language="bash", kernel="bash")
    with pytest.raises(UsageError, match="'my.flag' is not a valid bash variable name"):
        check_run_args(options("job.ipynb", "-p", "my.flag", "True"))
    with pytest.raises(UsageError, match="parameter 'opts' is an object"):
        check_run_args(options("job.ipynb", "-y", "opts: {a: 1}"))


def test_each_set_of_a_batch_is_checked_against_the_language(here):
    write(here / "nb.ipynb", "x = 1")
    (here / "sets.json").write_text('[{"x": 1}, {"for": 2}]')
    with pytest.raises(UsageError, match="set 1: Invalid parameters .*'for' is a Python keyword"):
        check_run_args(options("nb.ipynb", "--parameter-sets", "sets.json"))


def test_an_unknown_parameter_is_a_warning_on_stderr_before_the_run_starts(here, capsys):
    write(here / "nb.ipynb", "region = 'eu'")
    plan = check_run_args(options("nb.ipynb", "-p", "region", "us", "-p", "regoin", "us"))
    err = capsys.readouterr().err
    assert err == "studio-runner: warning: Parameter 'regoin' is not defined in the notebook's parameters cell\n"
    assert plan.notes == ["Parameter 'regoin' is not defined in the notebook's parameters cell"]


# -- issue 18 point 3: papermill's spellings ----------------------------------------------------


def test_positional_output_path_is_o_and_waits_as_papermill_does(here):
    parsed = papermill_spellings(options("in.ipynb", "out.ipynb"))
    assert parsed.output == "out.ipynb" and parsed.wait and parsed.notebook == "in.ipynb"
    with pytest.raises(UsageError, match="the output is given twice"):
        papermill_spellings(options("in.ipynb", "out.ipynb", "-o", "other.ipynb"))


def test_papermills_flag_spellings_are_aliases(here):
    (here / "p.yaml").write_text("a: 1\n")
    write(here / "nb.ipynb", "a = 0\nb = 0\nc = 0\nd = 0")
    parsed = options("nb.ipynb", "--parameters_file", "p.yaml", "--parameters_yaml", "b: 2", "--parameters_raw", "c", "3",
                     "-k", "python3", "--execution-timeout", "30", "--start_timeout", "600", "-p", "d", "4")
    plan = check_run_args(parsed)
    assert plan.payload["parameters"] == {"a": 1, "b": 2, "c": "3", "d": 4}
    assert plan.payload["kernel"] == {"name": "python3"}
    assert plan.payload["timeouts"] == {"cell_seconds": 30.0, "start_seconds": 600.0}


def test_yaml_dates_and_timestamps_stay_strings_as_in_papermill(here):
    from papermill.iorw import NoDatesSafeLoader, read_yaml_file

    text = "run_date: 2026-11-22\nat: 2026-11-22T10:00:00Z\nspaced: 2026-11-22 10:00:00\nn: 3\nflag: yes\n"
    (here / "p.yaml").write_text(text)
    import yaml

    ours_file, ours_text = collect(["p.yaml"], [], [], []), collect([], [text], [], [])
    assert ours_file == read_yaml_file(str(here / "p.yaml"))
    assert ours_text == yaml.load(text, Loader=NoDatesSafeLoader)  # noqa: S506
    assert ours_file["run_date"] == "2026-11-22" and ours_file["at"] == "2026-11-22T10:00:00Z"


def test_the_payload_carries_cwd_and_report_mode(here):
    write(here / "nb.ipynb", "x = 1")
    plan = check_run_args(options("nb.ipynb", "--cwd", "data/2026", "--report-mode"))
    assert plan.payload["cwd"] == "data/2026"
    # papermill's --report-mode is our --report: the HTML page without code (issue 17)
    assert plan.payload["output_formats"] == ["notebook", "html"] and plan.payload["html_report"] is True


def test_local_cwd_must_be_a_folder(here):
    write(here / "nb.ipynb", "x = 1")
    with pytest.raises(UsageError, match="--cwd nowhere: no such folder"):
        check_run_args(options("nb.ipynb", "--local", "--cwd", "nowhere"))


def test_prepare_only_writes_the_parameterised_notebook_and_starts_nothing(here):
    write(here / "nb.ipynb", "msg = None", "print(msg)")
    done = subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); from studiorunner_cli.main import main; "
         "code = main(sys.argv[2:]); print(sorted(m for m in ('boto3', 'moto', 'jupyter_server') if m in sys.modules)); "
         "sys.exit(code)", str(REPO), "run", "nb.ipynb", "out.ipynb", "-p", "msg", "Hello", "--prepare-only"],
        cwd=here, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"  # no stack, no AWS, no server
    nb = nbformat.read(here / "out.ipynb", as_version=4)
    assert [c.source for c in nb.cells] == ["msg = None", '# Parameters\nmsg = "Hello"\n', "print(msg)"]
    assert all(c.get("execution_count") is None and not c.get("outputs") for c in nb.cells)
    assert nb.metadata.papermill.parameters == {"msg": "Hello"}


# -- inspect: papermill's --help-notebook -------------------------------------------------------


def _papermill_help(path: Path) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "papermill", "--help-notebook", str(path)],
                          capture_output=True, text=True, timeout=120)
    # papermill prints click's usage line first, then a blank line
    return done.returncode, done.stdout.split("\n", 2)[2]


@pytest.mark.skipif(PEERS is None, reason="../shared/peer-suites is not beside the checkout")
@pytest.mark.parametrize("name", ["complex_parameters.ipynb", "simple_execute.ipynb", "no_parameters.ipynb"])
def test_inspect_prints_what_papermill_help_notebook_prints(name, capsys):
    status, expected = _papermill_help(PEERS / name)
    assert main(["inspect", str(PEERS / name)]) == status
    assert capsys.readouterr().out == expected


def test_inspect_reads_an_r_cell_papermill_cannot(here, capsys):
    write(here / "r.ipynb", 'region <- "eu"  # the sales region\nn = -1\nif (n > 0) x <- 2', language="R", kernel="ir")
    assert main(["inspect", "r.ipynb"]) == 0
    assert capsys.readouterr().out == (
        "Parameters inferred for notebook 'r.ipynb':\n"
        '  region: Unknown type (default "eu")\n' + 34 * " " + "the sales region\n"
        + "  n: Unknown type (default -1)".ljust(34) + "\n"  # papermill's layout, its trailing blanks too
    )


def test_inspect_takes_the_language_over_the_notebooks(here, capsys):
    write(here / "nb.ipynb", "region <- 'eu'")  # saved with Python's metadata
    assert main(["inspect", "nb.ipynb", "-l", "R"]) == 0
    assert "region: Unknown type (default 'eu')" in capsys.readouterr().out


def test_help_notebook_on_run_is_inspect(here, capsys):
    write(here / "nb.ipynb", "alpha = 0.5  # the rate")
    assert main(["run", "nb.ipynb", "--help-notebook"]) == 0
    assert "alpha: Unknown type (default 0.5)" in capsys.readouterr().out


def test_inspect_of_a_missing_notebook_is_a_usage_error(here, capsys):
    assert main(["inspect", "missing.ipynb"]) == 2
    assert "no such notebook: missing.ipynb" in capsys.readouterr().err


def test_run_options_accept_papermills_positional_output(here):
    parsed = options("in.ipynb", "out.ipynb", "-k", "ir")
    assert (parsed.notebook, parsed.output_path, parsed.kernel) == ("in.ipynb", "out.ipynb", "ir")
    json.dumps(parsed.parameters)


def test_the_runs_own_warnings_are_printed_once_at_the_end(capsys):
    """A notebook the CLI could not read first (in S3, in the target's tree): its unknown
    parameters are said when the run ends, each once, those said before it started not again."""
    from studiorunner_cli.run import report
    from studiorunner_cli.runs import RunInfo

    class NoOutputs:
        def output_uri(self, info):
            return None

    info = RunInfo("r", "arn", "SUCCEEDED", None, None, {}, output={"cells_executed": 1, "cells_total": 1, "warnings": [
        "Parameter 'a' is not defined in the notebook's parameters cell",
        "Parameter 'b' is not defined in the notebook's parameters cell"]})
    code = report(options("s3://b/n.ipynb", "--wait"), NoOutputs(), info, None, 1.0,
                  said=["Parameter 'a' is not defined in the notebook's parameters cell"])
    assert code == 0
    assert capsys.readouterr().err == \
        "studio-runner: warning: Parameter 'b' is not defined in the notebook's parameters cell\n"


def test_language_flag_chooses_the_translator_over_the_notebooks_metadata(here):
    """papermill's -l/--language: a notebook saved as Python, run on an R kernel with -k ir -l R."""
    write(here / "nb.ipynb", "my.flag <- FALSE")
    plan = check_run_args(options("nb.ipynb", "-k", "ir", "-l", "R", "-p", "my.flag", "True"))
    assert plan.payload["kernel"] == {"name": "ir", "language": "R"}
    with pytest.raises(UsageError, match="'my.flag' is not a valid Python identifier"):
        check_run_args(options("nb.ipynb", "-p", "my.flag", "True"))
    assert main(["run", "nb.ipynb", "out.ipynb", "-l", "R", "-p", "my.flag", "True", "--prepare-only"]) == 0
    assert nbformat.read(here / "out.ipynb", as_version=4).cells[1].source == "# Parameters\nmy.flag = TRUE\n"
