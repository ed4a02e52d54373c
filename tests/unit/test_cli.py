"""``studio-runner`` against AWS, with moto's Step Functions (its interpreter runs a stand-in
definition) and S3; CloudFormation's ``describe_stacks`` is stubbed with botocore's Stubber
(moto's CloudFormation needs openapi_spec_validator, not in requirements-dev)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import UTC
from pathlib import Path

import boto3
import nbformat
import pytest
from botocore.stub import Stubber
from moto import mock_aws

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from studiorunner_cli.main import main  # noqa: E402

REGION = "eu-west-1"
BUCKET = "studio-runner-out"
RUN_ID = "report-20261130T120000Z-abc123"
# Stands in for the real state machine: a result, a named failure, or a long wait.
DEFINITION = {
    "StartAt": "Mode",
    "States": {
        "Mode": {"Type": "Choice", "Choices": [
            {"Variable": "$.parameters.mode", "IsPresent": True, "Next": "ByMode"}], "Default": "Done"},
        "ByMode": {"Type": "Choice", "Choices": [
            {"Variable": "$.parameters.mode", "StringEquals": "fail", "Next": "Failed"},
            {"Variable": "$.parameters.mode", "StringEquals": "wait", "Next": "Wait"},
            {"Variable": "$.parameters.mode", "StringEquals": "queue", "Next": "AcquireSlot"}], "Default": "Done"},
        # as AcquireSlot leaves the state when the target's slots are all taken
        "AcquireSlot": {"Type": "Pass", "ResultPath": "$.slot", "Next": "WaitForSlot", "Result": {
            "status": "waiting", "message": "waiting for a slot on lab (2 of 2 in use, waiting 4 s)"}},
        "WaitForSlot": {"Type": "Wait", "Seconds": 120, "Next": "Done"},
        "Wait": {"Type": "Wait", "Seconds": 120, "Next": "Done"},
        "Failed": {"Type": "Fail", "Error": "CellExecutionError",
                   "Cause": "Cell 1 (In [2]) raised ZeroDivisionError: division by zero; executed notebook: s3://x/runs/y/report.ipynb"},
        "Done": {"Type": "Pass", "Parameters": {"run_id.$": "$$.Execution.Name", "status": "succeeded",
                                                "cells_total": 2, "cells_executed": 2}, "End": True},
    },
}


class _Session:
    """boto3.Session as the CLI uses it: moto clients, and CloudFormation stubbed with the stack's outputs."""

    def __init__(self, outputs: dict[str, str]) -> None:
        self.outputs = outputs

    def client(self, service: str):
        client = boto3.client(service, region_name=REGION)
        if service == "cloudformation":
            stub = Stubber(client)
            stub.add_response("describe_stacks", {"Stacks": [{
                "StackName": "StudioRunner", "CreationTime": "2026-11-30T00:00:00Z", "StackStatus": "CREATE_COMPLETE",
                "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()]}]},
                {"StackName": "StudioRunner"})
            stub.activate()
        return client


@pytest.fixture
def aws(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = sfn.create_state_machine(name="StudioRunnerStateMachine", definition=json.dumps(DEFINITION),
                                       roleArn="arn:aws:iam::123456789012:role/r")["stateMachineArn"]
        outputs = {"StateMachineArn": arn, "BucketName": BUCKET}
        monkeypatch.setattr(boto3, "Session", lambda **kw: _Session(outputs))
        work = tmp_path / "work"
        (work / "reports").mkdir(parents=True)
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
        nbformat.write(nb, work / "reports" / "report.ipynb")
        monkeypatch.chdir(work)
        yield sfn, s3, arn


def _fixed_name(monkeypatch, name=RUN_ID):
    import studiorunner.naming

    monkeypatch.setattr(studiorunner.naming, "run_name", lambda *a, **k: name)


def _executed(s3, run_id=RUN_ID, outputs=("hello\n",)):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('hello')", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text=t) for t in outputs])])
    nb.cells[0].metadata["papermill"] = {"status": "completed", "duration": 0.5}
    s3.put_object(Bucket=BUCKET, Key=f"runs/{run_id}/report.ipynb", Body=nbformat.writes(nb).encode())


def test_run_prints_the_run_id_and_uploads_the_notebook_with_papermill_typed_parameters(aws, capsys):
    sfn, s3, arn = aws
    before = sorted(p.name for p in Path.cwd().iterdir())
    code = main(["run", "reports/report.ipynb", "-p", "n", "3", "-p", "ratio", "0.5", "-p", "on", "True",
                 "-p", "nothing", "None", "-p", "when", "2026-11-22", "-r", "raw", "3", "--target", "analytics"])
    out = capsys.readouterr().out.strip()

    assert code == 0
    assert re.fullmatch(r"report-\d{8}T\d{6}Z-[0-9a-f]{6}", out), out
    desc = sfn.describe_execution(executionArn=arn.replace(":stateMachine:", ":execution:") + ":" + out)
    payload = json.loads(desc["input"])
    assert payload["parameters"] == {"n": 3, "ratio": 0.5, "on": True, "nothing": None, "when": "2026-11-22", "raw": "3"}
    assert payload["target"] == "analytics"
    assert payload["notebook_s3"] == f"s3://{BUCKET}/uploads/{out}/report.ipynb"
    body = s3.get_object(Bucket=BUCKET, Key=f"uploads/{out}/report.ipynb")["Body"].read()
    assert body == (Path("reports") / "report.ipynb").read_bytes()
    assert sorted(p.name for p in Path.cwd().iterdir()) == before  # nothing left in the user's folder


def test_run_wait_follows_and_writes_into_an_output_folder(aws, monkeypatch, capsys):
    sfn, s3, _ = aws
    _fixed_name(monkeypatch)
    _executed(s3)
    s3.put_object(Bucket=BUCKET, Key=f"runs/{RUN_ID}/commands.log", Body=b"$ pip list\nok\n")
    code = main(["run", "reports/report.ipynb", "--wait", "-o", "out/"])
    out, err = capsys.readouterr()

    assert code == 0, out + err
    assert "SUCCEEDED" in out and "2/2 cells executed" in out
    assert nbformat.read(Path("out/report.ipynb"), as_version=4).cells[0].outputs[0]["text"] == "hello\n"
    assert Path("out/commands.log").read_text() == "$ pip list\nok\n"
    assert "| ok" in out  # the commands' output is shown


def test_run_html_asks_for_the_page_and_run_and_download_write_it_beside_the_notebook(aws, monkeypatch, capsys,
                                                                                         tmp_path):
    sfn, s3, arn = aws
    _fixed_name(monkeypatch)
    _executed(s3)
    s3.put_object(Bucket=BUCKET, Key=f"runs/{RUN_ID}/report.html", Body=b"<html>the page</html>")
    code = main(["run", "reports/report.ipynb", "--html", "--wait", "-o", "out/"])
    out, err = capsys.readouterr()

    assert code == 0, out + err
    payload = json.loads(sfn.describe_execution(
        executionArn=arn.replace(":stateMachine:", ":execution:") + ":" + RUN_ID)["input"])
    assert payload["output_formats"] == ["notebook", "html"]
    assert Path("out/report.html").read_bytes() == b"<html>the page</html>"
    assert main(["download", RUN_ID, "-o", str(tmp_path / "dl.ipynb")]) == 0
    assert (tmp_path / "dl.html").read_bytes() == b"<html>the page</html>"


def test_run_report_asks_for_the_page_without_code(aws, monkeypatch, capsys):
    sfn, s3, arn = aws
    _fixed_name(monkeypatch)
    _executed(s3)
    assert main(["run", "reports/report.ipynb", "--report"]) == 0, capsys.readouterr()
    payload = json.loads(sfn.describe_execution(
        executionArn=arn.replace(":stateMachine:", ":execution:") + ":" + RUN_ID)["input"])
    assert payload["output_formats"] == ["notebook", "html"] and payload["html_report"] is True


def test_failed_run_exits_1_and_says_why_once(aws, monkeypatch, capsys):
    _fixed_name(monkeypatch)
    code = main(["run", "reports/report.ipynb", "--wait", "-p", "mode", "fail"])
    captured = capsys.readouterr()

    assert code == 1
    assert captured.err.count("CellExecutionError: Cell 1 (In [2]) raised ZeroDivisionError") == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    assert "FAILED" in captured.err


def test_status_list_logs_download_and_stop(aws, monkeypatch, capsys, tmp_path):
    sfn, s3, arn = aws
    _fixed_name(monkeypatch)
    assert main(["run", "reports/report.ipynb", "-p", "mode", "wait", "-p", "region", "eu"]) == 0
    _fixed_name(monkeypatch, "other-20261130T120001Z-def456")
    assert main(["run", "reports/report.ipynb"]) == 0
    capsys.readouterr()
    _executed(s3, outputs=("first line\n", "second line\n"))
    s3.put_object(Bucket=BUCKET, Key=f"runs/{RUN_ID}/progress.json", Body=json.dumps({
        "state": "running", "cells_total": 4, "cells_finished": 1, "cells_failed": 0,
        "current": {"cell": 2, "started_at": "2026-11-30T12:00:05+00:00", "lines": ["working"]}, "finished": []}).encode())

    assert main(["status", RUN_ID]) == 0
    out = capsys.readouterr().out
    assert "RUNNING" in out and "1/4 cells finished" in out and "Cell 3 running" in out and 'region="eu"' in out

    assert main(["list", "--status", "running"]) == 0
    out = capsys.readouterr().out
    assert RUN_ID in out and "other-" not in out
    # the notebook's name and the file it was uploaded from, not the bucket's URI
    assert "report.ipynb" in out and str(Path.cwd() / "reports" / "report.ipynb") in out and "s3://" not in out
    assert main(["list", "--since", "1h", "--notebook", "report"]) == 0
    assert main(["list", "--since", "2999-01-01"]) == 0
    captured = capsys.readouterr()
    assert RUN_ID in captured.out and "no runs" in captured.err
    # --notebook filters (it used to let every run through): by name, by path, by the local file
    for wanted in ("other", "other.ipynb", "elsewhere/report.ipynb"):
        assert main(["list", "--notebook", wanted]) == 0
        captured = capsys.readouterr()
        assert RUN_ID not in captured.out and "no runs" in captured.err, wanted
    for wanted in ("report", "report.ipynb", "reports/report.ipynb", "./reports/report.ipynb"):
        assert main(["list", "--notebook", wanted]) == 0
        assert RUN_ID in capsys.readouterr().out, wanted

    assert main(["logs", RUN_ID]) == 0
    out = capsys.readouterr().out
    assert "── Cell 1 [completed, 0.50s]" in out and "first line\nsecond line\n" in out

    assert main(["download", RUN_ID, "-o", str(tmp_path / "dl.ipynb")]) == 0
    assert nbformat.read(tmp_path / "dl.ipynb", as_version=4).cells[0].source == "print('hello')"

    assert main(["stop", RUN_ID]) == 0
    assert _status_soon(sfn, arn.replace(":stateMachine:", ":execution:") + ":" + RUN_ID) == "ABORTED"
    assert main(["stop", RUN_ID]) == 1  # not running any more
    assert main(["status", "no-such-run"]) == 1
    assert "no run 'no-such-run'" in capsys.readouterr().err


def test_status_and_watch_say_a_run_is_waiting_for_a_slot(aws, monkeypatch, capsys):
    sfn, _, arn = aws
    _fixed_name(monkeypatch)
    assert main(["run", "reports/report.ipynb", "-p", "mode", "queue"]) == 0
    capsys.readouterr()
    execution = arn.replace(":stateMachine:", ":execution:") + ":" + RUN_ID
    deadline = time.monotonic() + 10
    while not any(e.get("stateEnteredEventDetails", {}).get("name") == "WaitForSlot"
                  for e in sfn.get_execution_history(executionArn=execution)["events"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)

    assert main(["status", RUN_ID]) == 0
    out = capsys.readouterr().out
    assert "now          waiting for a slot on lab (2 of 2 in use, waiting 4 s)" in out, out

    from studiorunner_cli.display import ProgressPrinter, follow
    from studiorunner_cli.runs import Runs

    runs = Runs(sfn, boto3.client("s3", region_name=REGION), state_machine_arn=arn, bucket=BUCKET)
    printer, polls = ProgressPrinter(), iter(range(2))
    monkeypatch.setattr(time, "sleep", lambda s: next(polls))  # two polls, then StopIteration ends the watch
    with pytest.raises(StopIteration):
        follow(runs, RUN_ID, printer, poll=0)
    assert capsys.readouterr().out.count("… waiting for a slot on lab") == 1  # said once, not per poll
    sfn.stop_execution(executionArn=execution)


@pytest.mark.parametrize("step, state, said", [
    ("WaitForTarget", {"target": {"status": "pending", "detail": "Pending"}}, "starting the target (Pending)"),
    ("StartKernel", {"kernel": {"status": "ready"}}, "starting a kernel"),
    ("WaitForSlot", {}, "waiting for a slot"),
    ("RunCommands", {}, "running shell commands"),
    ("Cleanup", {}, "cleaning up"),
])
def test_each_state_of_the_state_machine_has_words_for_people(step, state, said):
    from studiorunner_cli.runs import _STEP_OF, phase_text

    assert phase_text(step, state) == said
    definition = json.loads((REPO / "lambdas" / "studiorunner" / "statemachine" / "runner.asl.json").read_text())
    assert set(definition["States"]) <= set(_STEP_OF)  # a new state gets words too


def _status_soon(sfn, execution_arn: str) -> str:
    """The status once moto's interpreter thread has taken the stop in (real Step Functions
    reports ABORTED at once; moto's Wait state wakes up a moment later)."""
    deadline = time.monotonic() + 10
    while (status := sfn.describe_execution(executionArn=execution_arn)["status"]) == "RUNNING" \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    return status


def test_usage_errors_exit_2_before_anything_starts(tmp_path):
    """Decided without AWS, boto3, a server or moto: each case in one interpreter, which must not import them."""
    (tmp_path / "nb.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "forty-two.json").write_text('{"notebook": 42}')
    cases = [
        ["run", "missing.ipynb"],
        ["run", "nb.ipynb", "--no-such-flag"],
        ["run", "nb.ipynb", "--input", "bad.json"],
        ["run", "--input", "unreadable.json"],
        ["run", "nb.ipynb", "--input", "forty-two.json"],
        ["run", "--input", "forty-two.json"],
        ["run", "nb.ipynb", "--local", "--stack", "Other"],
        ["run", "nb.ipynb", "-o", "out.ipynb"],
        ["run", "nb.ipynb", "--jupyter", "http://127.0.0.1:1/"],
        ["run", "nb.ipynb", "-p", "bad name", "1"],
        ["run", "nb.ipynb", "-p", "class", "1"],  # the notebook's language decides (issue 20 fault 9)
        ["run", "nb.ipynb", "-f", "missing.yaml"],
        ["run", "nb.ipynb", "-p", "x"],
        ["list", "--since", "yesterday"],
        ["bogus-verb"],
    ]
    script = (
        "import json, sys, time\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from studiorunner_cli.main import main\n"
        "results = []\n"
        f"for argv in {cases!r}:\n"
        "    t = time.perf_counter()\n"
        "    try:\n"
        "        code = main(argv)\n"
        "    except SystemExit as e:\n"
        "        code = e.code\n"
        "    results.append((argv, code, time.perf_counter() - t))\n"
        "heavy = [m for m in ('boto3', 'moto', 'jupyter_server', 'localstudio', 'nbformat') if m in sys.modules]\n"
        "print(json.dumps({'results': results, 'heavy': heavy}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for argv, code, _seconds in report["results"]:
        assert code == 2, (argv, done.stderr)
    assert report["heavy"] == [], "usage errors must be decided before AWS or a server is touched"
    assert "PayloadInvalid" in done.stderr and "'notebook' must be a path ending in .ipynb" in done.stderr
    assert "Traceback" not in done.stderr


def test_parameters_as_papermill_takes_them(tmp_path):
    from studiorunner_cli.parameters import UsageError, collect, resolve_type

    assert [resolve_type(v) for v in ("True", "False", "None", "7", "-2", "1e3", "0.5", "true", "x y")] == \
        [True, False, None, 7, -2, 1000.0, 0.5, "true", "x y"]
    (tmp_path / "p.yaml").write_text("alpha: 0.1\nname: base\nitems: [1, 2]\n")
    params = collect([str(tmp_path / "p.yaml")], ["name: from-y"], [["alpha", "0.2"]], [["raw", "0.3"]])
    assert params == {"alpha": 0.2, "name": "from-y", "items": [1, 2], "raw": "0.3"}
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(UsageError, match="mapping"):
        collect([str(tmp_path / "list.yaml")], [], [], [])


def test_run_names_are_readable_and_fit_step_functions():
    from datetime import datetime

    from studiorunner.naming import is_valid_name, run_name

    when = datetime(2026, 11, 30, 17, 45, 1, tzinfo=UTC)
    assert run_name("reports/daily.ipynb", when=when, suffix="a1b2c3") == "daily-20261130T174501Z-a1b2c3"
    assert run_name("s3://b/inbox/x/Q3 report (final).ipynb", when=when, suffix="a1b2c3") == \
        "Q3-report-final-20261130T174501Z-a1b2c3"
    long = run_name("d/" + "x" * 200 + ".ipynb", when=when)
    assert len(long) == 80 and long.endswith(long[-24:]) and is_valid_name(long)
    assert run_name("ünïcødé.ipynb", when=when, suffix="ff").startswith("n-c-d-2026") or is_valid_name(
        run_name("ünïcødé.ipynb", when=when, suffix="ff"))
    assert run_name(None, when=when, suffix="ff", default_stem="commands") == "commands-20261130T174501Z-ff"
    assert run_name("reports/daily.ipynb") != run_name("reports/daily.ipynb")


def test_progress_is_throttled_yet_never_stale():
    """1,000 cells in a burst cost a handful of writes; the cell that starts just after a write
    and then runs long is what the file says within the interval, with its latest lines."""
    import time as _time

    from nbformat.v4 import new_code_cell, new_output

    from studiorunner.progress import ProgressReporter, last_lines

    writes: list[dict] = []
    reporter = ProgressReporter(lambda uri, data: writes.append(json.loads(data)), "s3://b/runs/r/progress.json",
                                run_id="r", cells_total=1001, min_interval=0.3, refresh_seconds=0.3)
    cell = new_code_cell("x = 1")
    for index in range(1000):
        reporter.cell_started(index, cell)
        reporter.cell_finished(index, cell, "completed")
    long_cell = new_code_cell("long")
    reporter.cell_started(1000, long_cell)
    assert len(writes) <= 3, len(writes)
    _time.sleep(1.0)
    assert writes[-1]["current"]["cell"] == 1000 and writes[-1]["cells_finished"] == 1000
    assert [f["n"] for f in writes[-1]["finished"]] == list(range(901, 1001))  # the last 100, numbered
    long_cell.outputs.append(new_output("stream", name="stdout", text="step 1\nstep 2\n"))
    _time.sleep(1.0)
    assert writes[-1]["current"]["lines"] == ["step 1", "step 2"]
    reporter.finish("running")
    count = len(writes)
    _time.sleep(0.8)
    assert len(writes) == count, "no write after finish: the timer must not outlive the invocation"
    assert last_lines(new_code_cell("e", outputs=[new_output("error", ename="ValueError", evalue="boom", traceback=[])])) == ["ValueError: boom"]


def test_one_cli_localstudio_is_a_library_under_it(tmp_path):
    """``studio-runner`` is the one command: ``localstudio`` never imports the CLI and has no
    command of its own (``python -m localstudio`` is gone; the stand-in's server process stays)."""
    script = (
        "import sys\n"
        f"sys.path[:0] = [{str(REPO)!r}, {str(REPO / 'lambdas')!r}]\n"
        "import localstudio, localstudio.local_stack, localstudio.standin, localstudio.standin.server\n"
        "print([m for m in sys.modules if m.startswith('studiorunner_cli')])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    gone = subprocess.run([sys.executable, "-m", "localstudio", "run", "x.ipynb"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert gone.returncode != 0 and "No module named localstudio.__main__" in gone.stderr


def test_a_verb_is_a_module_and_one_line_with_typed_options(monkeypatch, capsys):
    """A new verb: a ``Verb`` (flags, an options dataclass, a function) and one line in VERBS;
    the function gets its typed options, never argparse's Namespace."""
    from dataclasses import dataclass, field

    from studiorunner_cli import main as cli_main
    from studiorunner_cli.verb import Verb, Where, add_where

    @dataclass(frozen=True)
    class HelloOptions:
        name: str
        times: int = 1
        where: Where = field(default_factory=Where)

    seen = []

    def arguments(parser):
        parser.add_argument("name")
        parser.add_argument("--times", type=int, default=1)
        add_where(parser)

    def hello(options: HelloOptions) -> int:
        seen.append(options)
        return 0

    monkeypatch.setattr(cli_main, "VERBS", (*cli_main.VERBS, Verb("hello", "say hello", arguments, HelloOptions, hello)))
    assert cli_main.main(["hello", "you", "--times", "3", "--local"]) == 0
    assert seen == [HelloOptions(name="you", times=3, where=Where(local=True))]
    with pytest.raises(SystemExit) as exited:
        cli_main.main(["hello", "you", "--times", "x"])
    assert exited.value.code == 2


def test_run_options_are_typed_from_the_command_line():
    from studiorunner_cli.main import parser
    from studiorunner_cli.run import RunOptions
    from studiorunner_cli.verb import Where, options_from

    args = parser().parse_args(["run", "nb.ipynb", "-p", "a", "1", "-p", "b", "x", "--command", "ls", "--wait",
                                "--stack", "S", "--cell-timeout", "5"])
    options = options_from(args, RunOptions)
    assert options.parameters == (("a", "1"), ("b", "x")) and options.commands == ("ls",)
    assert options.wait and options.cell_timeout == 5.0 and options.notebook == "nb.ipynb"
    assert options.where == Where(local=False, stack="S")


@pytest.mark.parametrize("output, said", [
    ("reports/report.ipynb/out.ipynb", "reports/report.ipynb is a file, not a folder"),
    ("reports/report.ipynb/sub/", "reports/report.ipynb is a file, not a folder"),
    ("/sys/studio-runner-out/x.ipynb", "cannot write in /sys"),
])
def test_an_unwritable_output_is_a_usage_error_before_the_run_starts(aws, capsys, output, said):
    """Issue 20 fault 5: the run used to execute in full, then die on a bare OSError."""
    sfn, _, arn = aws
    code = main(["run", "reports/report.ipynb", "--wait", "-o", output])
    err = capsys.readouterr().err
    assert code == 2, err
    assert said in err and "Traceback" not in err
    assert sfn.list_executions(stateMachineArn=arn)["executions"] == []  # nothing started


def test_an_output_that_fails_after_the_run_never_drops_the_notebook(aws, monkeypatch, capsys):
    """-o passed the check, then could not be written when the run ended: say so, exit 1, and
    say where the executed notebook is (AWS: still in the bucket)."""
    import studiorunner_cli.display as display

    sfn, s3, _ = aws
    _fixed_name(monkeypatch)
    _executed(s3)
    real_follow = display.follow

    def follow(*args, **kwargs):
        Path("out").write_text("now a file")  # the folder -o names can no longer be made
        return real_follow(*args, **kwargs)

    monkeypatch.setattr(display, "follow", follow)
    code = main(["run", "reports/report.ipynb", "--wait", "-o", "out/sub/report-out.ipynb"])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert "SUCCEEDED" in out
    assert "cannot write -o out/sub/report-out.ipynb" in err
    assert f"stays at s3://{BUCKET}/runs/{RUN_ID}/report.ipynb" in err


# -- recovery (issue 19): run --retries/--hold, rerun ------------------------------------------

def _ended(sfn, arn, name):
    execution = arn.replace(":stateMachine:", ":execution:") + ":" + name
    deadline = time.monotonic() + 10  # moto's interpreter runs the execution in a thread of its own
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.05)


def _input_of(sfn, arn, name):
    return json.loads(sfn.describe_execution(executionArn=arn.replace(":stateMachine:", ":execution:") + ":" + name)["input"])


def test_run_retries_and_hold_become_the_payloads_recovery_keys(aws, capsys):
    sfn, _, arn = aws
    code = main(["run", "reports/report.ipynb", "--retries", "2", "--retry-interval", "5m", "--hold", "2h"])
    out = capsys.readouterr().out.strip()
    assert code == 0
    payload = _input_of(sfn, arn, out)
    assert payload["retry"] == {"attempts": 2, "interval_seconds": 300.0}
    assert payload["on_failure"] == {"hold_kernel_seconds": 7200.0}


@pytest.mark.parametrize("args, said", [
    (["--hold", "two hours"], "--hold takes a duration"),
    (["--hold", "13h"], "'on_failure.hold_kernel_seconds' must be a number from 0 to 43200"),
    (["--retries", "11"], "'retry.attempts' must be a whole number from 0 to 10"),
])
def test_bad_recovery_flags_are_usage_errors_before_anything_starts(aws, capsys, args, said):
    sfn, _, arn = aws
    assert main(["run", "reports/report.ipynb", *args]) == 2
    assert said in capsys.readouterr().err
    assert sfn.list_executions(stateMachineArn=arn)["executions"] == []


def test_rerun_starts_the_same_payload_with_a_parameter_changed_named_after_its_source(aws, capsys):
    sfn, _, arn = aws
    first = {"notebook": "reports/report.ipynb", "parameters": {"n": 1, "day": "mon"}, "target": "analytics",
             "attempt": {"number": 2, "first_run": "report-x"}, "resume": {"run_id": "report-y"}}
    sfn.start_execution(stateMachineArn=arn, name=RUN_ID, input=json.dumps(first))
    _ended(sfn, arn, RUN_ID)
    assert main(["rerun", RUN_ID, "-p", "n", "2"]) == 0
    _ended(sfn, arn, f"{RUN_ID}-rerun1")
    assert main(["rerun", f"{RUN_ID}-rerun1"]) == 0  # a rerun of a rerun is named after the first source
    names = capsys.readouterr().out.split()
    assert names == [f"{RUN_ID}-rerun1", f"{RUN_ID}-rerun2"]
    again = _input_of(sfn, arn, names[0])
    assert again == {"notebook": "reports/report.ipynb", "parameters": {"n": 2, "day": "mon"}, "target": "analytics"}
    assert _input_of(sfn, arn, names[1])["parameters"] == {"n": 2, "day": "mon"}


def test_rerun_of_a_running_or_unknown_run_says_why_and_starts_nothing(aws, capsys):
    sfn, _, arn = aws
    sfn.start_execution(stateMachineArn=arn, name=RUN_ID, input=json.dumps(
        {"notebook": "reports/report.ipynb", "parameters": {"mode": "wait"}}))
    assert main(["rerun", RUN_ID]) == 1
    assert "still running" in capsys.readouterr().err
    assert main(["rerun", "nope-20261130T120000Z-000000"]) == 1
    assert "no run 'nope-20261130T120000Z-000000'" in capsys.readouterr().err
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1
    sfn.stop_execution(executionArn=arn.replace(":stateMachine:", ":execution:") + ":" + RUN_ID)


def test_resume_of_a_run_that_was_not_held_says_so_and_starts_nothing(aws, capsys):
    sfn, _, arn = aws
    sfn.start_execution(stateMachineArn=arn, name=RUN_ID, input=json.dumps(
        {"notebook": "reports/report.ipynb", "parameters": {"mode": "fail"}}))
    _ended(sfn, arn, RUN_ID)
    assert main(["resume", RUN_ID]) == 1
    assert f"run {RUN_ID}'s kernel is not held (run it with --hold" in capsys.readouterr().err
    assert main(["resume", RUN_ID, "--from", "0"]) == 2
    assert main(["resume", RUN_ID, "--notebook", "missing.ipynb"]) == 2
    assert "no such notebook: missing.ipynb" in capsys.readouterr().err
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1
