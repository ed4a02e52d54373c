"""The steps' decisions, fast: run/ with a fake Services (a scripted target, an in-memory store).

No server, no AWS: what Prepare decides, when StartTarget waits or gives up, what Cleanup
removes (only what the run recorded as its own) and the outcome it reports.
"""

from __future__ import annotations

import json
from typing import Any

import nbformat
import pytest

from studiorunner.config import RunnerConfig, TargetConfig
from studiorunner.errors import (
    JupyterHTTPError,
    KernelNotReady,
    LoginFailed,
    NotebookNotFound,
    PayloadInvalid,
    RunTimeout,
    TargetNotAllowed,
    TargetNotReady,
)
from studiorunner.run.classic_kernel import _start_classic_kernel
from studiorunner.run.cleanup import cleanup
from studiorunner.run.context import MIN_BUDGET_SECONDS, StepContext
from studiorunner.run.prepare import prepare
from studiorunner.run.services import SAFETY_MARGIN_SECONDS, Services
from studiorunner.run.start_kernel import _pending, run_session_path
from studiorunner.run.start_target import start_target
from studiorunner.run.state import KernelProgress, RunState
from studiorunner.targets import ReleaseReport, Target, TargetProgress

T0 = 1_800_000_000.0
BUCKET = "out-bucket"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class MemoryStore:
    def __init__(self) -> None:
        self.objects: dict[str, nbformat.NotebookNode] = {}

    def read(self, uri: str) -> nbformat.NotebookNode:
        if uri not in self.objects:
            raise NotebookNotFound(f"{uri} not found", uri=uri)
        return self.objects[uri]

    def write(self, uri: str, nb: nbformat.NotebookNode) -> None:
        self.objects[uri] = nb

    def write_bytes(self, uri: str, data: bytes, **_: Any) -> None:
        self.objects[uri] = data


class _Response:
    def __init__(self, body: Any) -> None:
        self.body = body

    def json(self) -> Any:
        return self.body


class FakeJupyter:
    """The few REST calls Cleanup makes, against an in-memory server (sessions own kernels)."""

    def __init__(self, sessions: dict[str, dict[str, Any]] | None = None) -> None:
        self.sessions = sessions or {}
        self.kernels = {s["kernel"]["id"] for s in self.sessions.values()}
        self.calls: list[str] = []

    def get(self, path: str, **_: Any) -> _Response:
        self.calls.append(f"GET {path}")
        if path == "api/sessions":
            return _Response(list(self.sessions.values()))
        if path == "api/kernels":
            return _Response([{"id": k} for k in sorted(self.kernels)])
        raise AssertionError(f"unexpected GET {path}")

    def delete(self, path: str, **_: Any) -> _Response:
        self.calls.append(f"DELETE {path}")
        kind, _, ident = path.rpartition("/")
        if kind == "api/sessions" and ident in self.sessions:
            self.kernels.discard(self.sessions.pop(ident)["kernel"]["id"])
            return _Response(None)
        if kind == "api/kernels" and ident in self.kernels:
            self.kernels.discard(ident)
            return _Response(None)
        raise JupyterHTTPError(f"DELETE {path} answered 404", status=404)


class FakeTarget(Target):
    """A target whose app is scripted: ``statuses`` are what successive checks see."""

    def __init__(self, config: TargetConfig, *, statuses: list[str], jupyter: FakeJupyter | None,
                 **_: Any) -> None:
        super().__init__(config, sagemaker=object())
        self.statuses, self.jupyter = statuses, jupyter
        self.released: list[tuple[bool, str, int]] = []
        self.logins = 0

    def ensure_started(self, progress: TargetProgress, *, now: float, start_seconds: float) -> TargetProgress:
        progress.begin(now)
        status = self.statuses.pop(0)
        if status == "InService":
            progress.ready(status)
            return progress
        if status == "Deleted":
            progress.created, status = True, "Pending"
        return self._pending(progress, status, now=now, start_seconds=start_seconds)

    def login(self):
        self.logins += 1
        if self.jupyter is None:
            raise LoginFailed("the presigned URL was refused", target=self.config.name)
        return self.jupyter

    def release(self, progress: TargetProgress, policy: str, *, other_kernels: int = 0,
                other_runs: int = 0) -> ReleaseReport:
        self.released.append((progress.created, policy, other_kernels))
        if progress.created and policy != "never" and not other_kernels:
            return ReleaseReport(actions=["deleted the app"])
        return ReleaseReport(kept=["the app"])


def make_services(*, statuses: list[str] | None = None, jupyter: FakeJupyter | None = None,
                  bucket: str = BUCKET) -> tuple[Services, dict[str, FakeTarget]]:
    config = RunnerConfig(
        targets={"lab": TargetConfig.from_dict("lab", {"type": "studio-space", "domain_id": "d-abc",
                                                       "user_profile": "alice", "space_name": "lab"})},
        default_target="lab", bucket=bucket, max_run_seconds=3600,
    )
    made: dict[str, FakeTarget] = {}

    def factory(cfg: TargetConfig, **_: Any) -> FakeTarget:
        made.setdefault(cfg.name, FakeTarget(cfg, statuses=statuses if statuses is not None else ["InService"],
                                             jupyter=jupyter))
        return made[cfg.name]

    return Services(config=config, store=MemoryStore(), target_factory=factory, clock=Clock()), made


def prepared(services: Services, payload: dict[str, Any] | None = None, execution: str = "exec-1") -> dict[str, Any]:
    return {"run": prepare({"payload": payload or {"notebook": "work/report.ipynb"}, "execution": execution},
                           services).to_dict()}


# -- Prepare ----------------------------------------------------------------------------

def test_prepare_decides_the_run_and_its_output_before_anything_starts():
    services, _ = make_services()
    state = prepared(services, {"notebook": "work/report.ipynb", "timeouts": {"run_seconds": 600}},
                     execution="nightly run #3")
    run = state["run"]
    assert run["run_id"] == "nightly-run-3"
    assert run["output_uri"] == f"s3://{BUCKET}/runs/nightly-run-3/report.ipynb"
    assert run["deadline"] == T0 + 600 and run["started_at"] == T0
    assert run["has_notebook"] is True and run["has_commands"] is False  # read by the ASL's Choice states
    assert RunState.from_dict(state).run.spec.notebook == "work/report.ipynb"


@pytest.mark.parametrize("payload, error, words", [
    ({"notebook": "a.ipynb", "kernel": {"instance_type": "ml.m5.large"}}, PayloadInvalid, "only applies to studio-classic"),
    ({"notebook": "a.ipynb", "target": "elsewhere"}, TargetNotAllowed, "'elsewhere' is not configured"),
    ({"notebook_s3": "s3://inbox-bucket/missing.ipynb"}, NotebookNotFound, "missing.ipynb"),
])
def test_prepare_refuses_what_cannot_run(payload, error, words):
    services, made = make_services()
    with pytest.raises(error, match=words):
        prepare({"payload": payload, "execution": "e"}, services)
    assert made == {}  # no target was even looked at


@pytest.mark.parametrize("language, parameters, words", [
    ("python", {"class": 1, "ok": 2}, "parameter name 'class' is a Python keyword"),
    ("bash", {"café": 1}, "parameter name 'café' is not a valid bash variable name"),
    ("javascript", {"x": 1}, "No parameter translator for kernel 'k' or language 'javascript'"),
])
def test_prepare_checks_parameter_names_by_the_s3_notebooks_language(language, parameters, words):
    """Issue 20 fault 9: one check of names, the language's own rules, before anything starts."""
    services, made = make_services()
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "k", "language": language, "display_name": "K"}})
    services.notebooks().write("s3://inbox-bucket/n.ipynb", nb)
    with pytest.raises(PayloadInvalid, match=words):
        prepare({"payload": {"notebook_s3": "s3://inbox-bucket/n.ipynb", "parameters": parameters},
                 "execution": "e"}, services)
    assert made == {}


def test_prepare_checks_names_in_the_payloads_kernel_language():
    services, _ = make_services()
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "P"}})
    services.notebooks().write("s3://inbox-bucket/n.ipynb", nb)
    payload = {"notebook_s3": "s3://inbox-bucket/n.ipynb", "parameters": {"my.var": 1}, "kernel": {"language": "R"}}
    assert prepare({"payload": payload, "execution": "e"}, services).spec.kernel_language == "R"
    with pytest.raises(PayloadInvalid, match="'my.var' is not a valid Python identifier"):
        prepare({"payload": {**payload, "kernel": {}}, "execution": "e"}, services)


def test_prepare_takes_a_unicode_python_name_papermill_takes():
    services, _ = make_services()
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}})
    services.notebooks().write("s3://inbox-bucket/n.ipynb", nb)
    run = prepare({"payload": {"notebook_s3": "s3://inbox-bucket/n.ipynb", "parameters": {"café": 1}},
                   "execution": "e"}, services)
    assert run.spec.parameters == {"café": 1}


def test_prepare_needs_an_output_bucket():
    services, _ = make_services(bucket="")
    with pytest.raises(PayloadInvalid, match="no output bucket"):
        prepared(services)


# -- the step prologue ------------------------------------------------------------------

def test_a_step_past_the_runs_deadline_stops_with_run_timeout():
    services, made = make_services()
    state = prepared(services, {"notebook": "a.ipynb", "timeouts": {"run_seconds": 60}})
    services.clock.now = T0 + 61
    with pytest.raises(RunTimeout, match="run_seconds=60"):
        start_target(StepContext.begin(state, services))
    assert made == {}


def test_the_budget_keeps_the_safety_margin_and_never_passes_the_deadline():
    services, _ = make_services()
    state = prepared(services, {"notebook": "a.ipynb", "timeouts": {"run_seconds": 100}})
    services.clock.now = T0 + 30
    ctx = StepContext.begin(state, services)
    assert ctx.budget(900) == 70  # the run's deadline comes first
    assert ctx.budget(60) == 60 - SAFETY_MARGIN_SECONDS
    assert ctx.budget(5) == MIN_BUDGET_SECONDS


# -- StartTarget ------------------------------------------------------------------------

def test_start_target_starts_once_then_waits_with_backoff_until_ready():
    services, made = make_services(statuses=["Deleted", "Pending", "InService"])
    state = prepared(services)
    waits = []
    while True:
        state["target"] = start_target(StepContext.begin(state, services)).to_dict()
        if state["target"]["status"] == "ready":
            break
        waits.append(state["target"]["wait_seconds"])
        services.clock.now += state["target"]["wait_seconds"]
    assert waits == [5, 7]
    assert state["target"]["created"] is True and state["target"]["started_at"] == T0


def test_start_target_gives_up_after_start_seconds():
    services, _ = make_services(statuses=["Pending", "Pending"])
    state = prepared(services, {"notebook": "a.ipynb", "timeouts": {"start_seconds": 30}})
    state["target"] = start_target(StepContext.begin(state, services)).to_dict()
    services.clock.now += 31
    with pytest.raises(TargetNotReady, match="still Pending after 30 s"):
        start_target(StepContext.begin(state, services))


# -- StartKernel ------------------------------------------------------------------------

def test_the_runs_session_path_is_its_own_beside_the_notebook():
    assert run_session_path("work/report.ipynb", "run-1") == "work/.studio-runner-run-1-report.ipynb"
    assert run_session_path("report.ipynb", "run-1") == ".studio-runner-run-1-report.ipynb"
    assert run_session_path("a/b/report.ipynb", "r2") != run_session_path("a/b/report.ipynb", "r1")


def test_a_kernel_that_never_answers_ends_with_kernel_not_ready():
    services, _ = make_services()
    state = prepared(services, {"notebook": "a.ipynb", "timeouts": {"start_seconds": 20}})
    ctx = StepContext.begin(state, services)
    kernel = KernelProgress(name="python3")
    kernel.begin(ctx.now)
    assert _pending(kernel, "not answering", ctx).wait_seconds == 2
    services.clock.now += 21
    with pytest.raises(KernelNotReady, match="not ready after 20 s"):
        _pending(kernel, "not answering", StepContext.begin(state, services))


class FakeClassic:
    """Studio Classic's kernel POST: it blocks (here: times out) while the server starts the kernel.

    Classic is retired (REAL-STUDIO A7): kernels only go onto KernelGateway apps that still run,
    and ``sagemaker/api/apps`` is a bare list with no kernels in it (A8).
    """

    def __init__(self) -> None:
        self.kernels = [{"id": "k-person", "name": "python3"}]
        self.apps = [{"app_name": "kg-person", "instance_type": "ml.t3.medium", "status": "InService"}]
        self.posts: list[str | None] = []

    def list_kernels(self):
        return list(self.kernels)

    def list_studio_apps(self):
        return list(self.apps)

    def create_kernel(self, name, *, instance_type=None, timeout=30.0):
        self.posts.append(instance_type)
        # The server goes on starting the kernel after our request gave up.
        self.kernels.append({"id": "k-run", "name": name})
        raise JupyterHTTPError("POST api/kernels timed out", timeout=True)


def test_a_classic_kernel_post_that_times_out_is_adopted_never_posted_twice():
    services, _ = make_services()
    ctx = StepContext.begin(prepared(services), services)
    jupyter, kernel = FakeClassic(), KernelProgress(name="python3")
    _start_classic_kernel(jupyter, kernel, ctx)
    assert (kernel.posted, kernel.id) == (True, None)  # pending: the state machine waits
    kernel = KernelProgress.from_dict(kernel.to_dict())  # across the Wait, through the state
    _start_classic_kernel(jupyter, kernel, ctx)
    assert jupyter.posts == ["ml.t3.medium"]  # once, onto the app that still runs
    assert kernel.id == "k-run"  # the run's kernel, never the person's k-person
    assert not kernel.app_created  # the app was there before the run: never the run's to delete


# -- Cleanup ----------------------------------------------------------------------------

def _session(sid: str, path: str, kernel: str) -> dict[str, Any]:
    return {"id": sid, "path": path, "kernel": {"id": kernel}}


def test_cleanup_of_a_run_that_started_nothing_logs_in_nowhere():
    services, made = make_services(jupyter=None)  # a login would fail
    state = {**prepared(services), "target": {"status": "pending", "created": False},
             "error": {"Error": "TargetNotReady", "Cause": '{"errorMessage": "still Pending"}'}}
    outcome = cleanup(state, services).to_dict()
    assert outcome["error"] == "TargetNotReady" and "cleanup also failed" not in outcome["cause"]
    assert made == {} or (made["lab"].logins, made["lab"].released) == (0, [])


def test_cleanup_removes_the_runs_session_by_its_id_and_leaves_the_persons():
    person = _session("s-person", "work/report.ipynb", "k-person")
    ours = _session("s-run", "work/.studio-runner-exec-1-report.ipynb", "k-run")
    jupyter = FakeJupyter({"s-person": person, "s-run": ours})
    services, _ = make_services(jupyter=jupyter)
    state = {**prepared(services), "target": {"status": "ready"},
             "kernel": {"status": "ready", "id": "k-run", "session_id": "s-run", "session_path": ours["path"]}}
    outcome = cleanup(state, services).to_dict()
    assert outcome["status"] == "SUCCEEDED"
    assert list(jupyter.sessions) == ["s-person"] and jupyter.kernels == {"k-person"}
    assert outcome["result"]["cleanup"]["actions"] == ["deleted session and its kernel"]


def test_cleanup_finds_a_session_whose_id_never_reached_the_state_by_the_runs_own_path():
    # StartKernel created the session, then failed before returning: only its path is known.
    person = _session("s-person", "work/report.ipynb", "k-person")
    ours = _session("s-run", "work/.studio-runner-exec-1-report.ipynb", "k-run")
    jupyter = FakeJupyter({"s-person": person, "s-run": ours})
    services, _ = make_services(jupyter=jupyter)
    state = {**prepared(services), "target": {"status": "ready"},
             "kernel": {"status": "pending", "name": "python3", "path": "work/report.ipynb",
                        "session_path": ours["path"]},
             "error": {"Error": "KernelDied", "Cause": '{"errorMessage": "probe failed"}'}}
    outcome = cleanup(state, services).to_dict()
    assert outcome["error"] == "KernelDied"
    assert list(jupyter.sessions) == ["s-person"] and jupyter.kernels == {"k-person"}
    assert "DELETE api/sessions/s-person" not in jupyter.calls


def test_cleanup_that_cannot_log_in_to_remove_a_kernel_says_so():
    services, made = make_services(jupyter=None)
    state = {**prepared(services), "target": {"status": "ready", "created": True},
             "kernel": {"status": "ready", "id": "k-run", "session_id": "s-run"}, "cursor": {"done": True}}
    outcome = cleanup(state, services).to_dict()
    assert outcome["error"] == "CleanupFailed"
    assert "could not log in to remove the kernel" in outcome["cause"]
    assert made["lab"].released == [(True, "if_created", 0)]  # the app is still released


def test_cleanup_keeps_an_app_other_kernels_still_use():
    person = _session("s-person", "other.ipynb", "k-person")
    jupyter = FakeJupyter({"s-person": person, "s-run": _session("s-run", ".studio-runner-exec-1-a.ipynb", "k-run")})
    services, made = make_services(jupyter=jupyter)
    state = {**prepared(services), "target": {"status": "ready", "created": True},
             "kernel": {"status": "ready", "id": "k-run", "session_id": "s-run"}}
    outcome = cleanup(state, services).to_dict()
    assert made["lab"].released == [(True, "if_created", 1)]
    assert outcome["result"]["cleanup"]["kept"] == ["the app"]


def test_the_cause_names_the_output_notebook():
    services, _ = make_services()
    services.store.write(f"s3://{BUCKET}/runs/exec-1/report.ipynb", nbformat.v4.new_notebook())
    state = {**prepared(services), "error": {"Error": "CellExecutionError",
                                             "Cause": '{"errorMessage": "Cell 2 raised ValueError: boom"}'}}
    outcome = cleanup(state, services).to_dict()
    assert outcome["cause"] == ("Cell 2 raised ValueError: boom; output notebook: "
                                f"s3://{BUCKET}/runs/exec-1/report.ipynb")


def test_a_failed_commands_cause_names_the_command_log():
    # RunCommands no longer rebuilds the error to append the log's location: Cleanup says it.
    services, _ = make_services()
    state = {**prepared(services, {"commands": ["false"]}),
             "error": {"Error": "CommandFailed", "Cause": '{"errorMessage": "Command 1 exited with status 1"}'}}
    outcome = cleanup(state, services).to_dict()
    assert outcome["error"] == "CommandFailed"
    assert outcome["cause"] == f"Command 1 exited with status 1; command log: s3://{BUCKET}/runs/exec-1/commands.log"


def _run_with_html(services: Services, error: dict[str, str] | None = None, **payload: Any) -> dict[str, Any]:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('<b>hi</b>')", execution_count=1, outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="<b>hi</b>\n")])])
    services.store.write(f"s3://{BUCKET}/runs/exec-1/report.ipynb", nb)
    state = prepared(services, {"notebook": "work/report.ipynb", "output_formats": ["notebook", "html"], **payload})
    return cleanup({**state, **({"error": error} if error else {})}, services).to_dict()


def test_cleanup_writes_the_html_page_beside_the_notebook_once_it_is_final():
    services, _ = make_services()
    outcome = _run_with_html(services, {"Error": "ExecutionAborted", "Cause": "The execution ended ABORTED"})
    html_uri = f"s3://{BUCKET}/runs/exec-1/report.html"
    assert outcome["error"] == "ExecutionAborted"
    assert outcome["result"]["output_html"] == html_uri and "warnings" not in outcome["result"]
    page = services.store.objects[html_uri].decode()
    assert "&lt;b&gt;hi&lt;/b&gt;" in page
    assert "ExecutionAborted" in page  # marked failed in the notebook first, so the page says so too


def test_html_report_renders_the_page_without_code():
    services, _ = make_services()
    outcome = _run_with_html(services, html_report=True)
    page = services.store.objects[outcome["result"]["output_html"]].decode()
    assert "&lt;b&gt;hi&lt;/b&gt;" in page and 'class="jp-CodeMirrorEditor' not in page


def test_with_a_render_function_cleanup_asks_it_for_the_page_and_a_failure_is_a_warning(monkeypatch):
    import io

    from botocore.config import Config

    from studiorunner.report import render

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    config = render.invoke_client()._client_config  # one attempt, waiting out RenderPage's whole run
    assert config.read_timeout > render.RENDER_TIMEOUT_SECONDS and config.retries["total_max_attempts"] == 1
    assert isinstance(config, Config)

    calls = []

    class FakeLambda:
        def invoke(self, **kwargs):
            calls.append(kwargs)
            return {"FunctionError": "Unhandled", "Payload": io.BytesIO(
                b'{"errorType": "MemoryError", "errorMessage": "quoting the notebook: secret"}')}

    monkeypatch.setenv(render.RENDER_FUNCTION_ENV, "studio-runner-render-page")
    monkeypatch.setattr(render, "invoke_client", FakeLambda)
    services, _ = make_services()
    outcome = _run_with_html(services, html_report=True)
    [call] = calls
    assert call["FunctionName"] == "studio-runner-render-page" and call["InvocationType"] == "RequestResponse"
    assert json.loads(call["Payload"]) == {"notebook_uri": f"s3://{BUCKET}/runs/exec-1/report.ipynb",
                                           "html_uri": f"s3://{BUCKET}/runs/exec-1/report.html", "report": True}
    assert outcome["status"] == "SUCCEEDED" and "output_html" not in outcome["result"]
    assert outcome["result"]["warnings"] == [
        f"could not render the executed notebook as HTML to s3://{BUCKET}/runs/exec-1/report.html: "
        "PageNotRendered: studio-runner-render-page failed: MemoryError"]


def test_a_page_that_cannot_be_rendered_is_a_warning_never_a_cleanup_failure(monkeypatch):
    from studiorunner.report import page

    def broken(nb, **_):
        raise RecursionError("too deep")

    monkeypatch.setattr(page, "render_page", broken)
    services, _ = make_services()
    outcome = _run_with_html(services)
    assert outcome["status"] == "SUCCEEDED"
    assert "output_html" not in outcome["result"]
    assert outcome["result"]["warnings"] == [
        f"could not render the executed notebook as HTML to s3://{BUCKET}/runs/exec-1/report.html: RecursionError"]
    assert f"s3://{BUCKET}/runs/exec-1/report.html" not in services.store.objects
    assert outcome["result"]["output_notebook"] == f"s3://{BUCKET}/runs/exec-1/report.ipynb"


def test_without_html_in_output_formats_no_page_is_written():
    services, _ = make_services()
    services.store.write(f"s3://{BUCKET}/runs/exec-1/report.ipynb", nbformat.v4.new_notebook())
    outcome = cleanup(prepared(services), services).to_dict()
    assert "output_html" not in outcome["result"] and list(services.store.objects) == [
        f"s3://{BUCKET}/runs/exec-1/report.ipynb"]


def test_a_page_that_cannot_be_written_is_a_warning_naming_where_and_why(monkeypatch):
    from botocore.exceptions import ClientError

    services, _ = make_services()

    def denied(uri, data, **_):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no PutObject"}}, "PutObject")

    monkeypatch.setattr(services.store, "write_bytes", denied)
    outcome = _run_with_html(services)
    assert outcome["status"] == "SUCCEEDED" and "output_html" not in outcome["result"]
    [warning] = outcome["result"]["warnings"]
    assert warning.startswith(
        f"could not render the executed notebook as HTML to s3://{BUCKET}/runs/exec-1/report.html: ClientError")
    assert "AccessDenied" in warning


@pytest.mark.parametrize("kernel_info, python", [
    ({"language_info": {"name": "python", "version": "3.13"}}, True),
    ({"language_info": {"name": "bash"}}, False),  # bash_kernel: the journal's Python would run as commands
    ({"language_info": {"name": "R"}}, False),
    ({}, False),
])
def test_the_journal_starts_only_in_a_python_kernel(kernel_info, python):
    from studiorunner.run.start_kernel import _runs_python

    assert _runs_python({"content": kernel_info}) is python  # the kernel_info_reply message
