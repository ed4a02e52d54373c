"""The client library against the Studio stand-in, which answers as real Studio does
(REAL-STUDIO.md): presigned login on the space's own host, a bad URL ending in HTTP 200 on
a sign-in page elsewhere, ``_xsrf`` only from a rendered page, a loading page while an
app starts, the SageMaker API's errors. Also against a plain ``jupyter server`` started
as in a space (no token)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from http.cookiejar import Cookie
from pathlib import Path
from unittest import mock

import nbformat
import pytest
import requests

import localstudio  # noqa: F401
from studiorunner.config import TargetConfig
from studiorunner.errors import (
    JupyterHTTPError,
    KernelSpecNotFound,
    LoginFailed,
    NotebookNotFound,
    TargetFailed,
    TargetNotReady,
)
from studiorunner.jupyter import http as http_module
from studiorunner.jupyter.rest import JupyterClient
from studiorunner.targets import TargetProgress
from studiorunner.targets.jupyter import JupyterTarget
from studiorunner.targets.notebook_instance import NotebookInstanceTarget
from studiorunner.targets.studio import StudioClassicTarget, StudioSpaceTarget


def aws(standin):
    return mock.patch.dict(os.environ, {"AWS_ENDPOINT_URL_SAGEMAKER": standin.sagemaker_endpoint,
                                        "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                                        "AWS_DEFAULT_REGION": "us-east-1"})


@pytest.fixture
def aws_env(standin_space):
    with aws(standin_space):
        yield standin_space


def space_target(standin, **extra) -> StudioSpaceTarget:
    ident = standin.identity
    return StudioSpaceTarget(TargetConfig(name="space", type="studio-space", domain_id=ident["domain_id"],
                                          user_profile=ident["user_profile"], space_name=ident["space_name"],
                                          region="us-east-1", **extra))


def classic_target(standin) -> StudioClassicTarget:
    ident = standin.identity
    return StudioClassicTarget(TargetConfig(name="classic", type="studio-classic", domain_id=ident["domain_id"],
                                            user_profile=ident["user_profile"], region="us-east-1"))


def until(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


# ---- login ------------------------------------------------------------------------------


def test_login_obtains_xsrf_from_a_rendered_page_when_the_login_set_none(aws_env):
    http = space_target(aws_env).login()
    assert http.base_url == aws_env.jupyter_url
    assert http.xsrf_cookie() is None  # the login (and api/status) set none, as in Studio
    model = http.post("api/sessions", json={"path": "x.ipynb", "type": "notebook", "name": "x",
                                            "kernel": {"name": "python3"}}).json()
    http.delete(f"api/sessions/{model['id']}")
    xsrf = [c for c in http.session.cookies if c.name == "_xsrf"]
    assert [(c.domain, c.path) for c in xsrf] == [("127.0.0.3", "/jupyterlab/default/")]
    # … and the same cookie-authenticated POST without it is refused by the server
    assert http.session.post(http.url("api/kernels"), json={"name": "python3"}).status_code == 403


def test_two_xsrf_cookies_do_not_crash_the_client(aws_env):
    http = space_target(aws_env).login()
    right = http.ensure_xsrf()
    # More _xsrf cookies, set by other hosts (the API's, the sign-in page's).
    for domain, path, value in (("127.0.0.1", "/", "api-host"), ("127.0.0.2", "/jupyterlab/default/", "signin-host")):
        http.session.cookies.set_cookie(Cookie(0, "_xsrf", value, None, False, domain, False, False, path, True,
                                               False, None, False, None, None, {}))
    with pytest.raises(requests.cookies.CookieConflictError):
        http.session.cookies.get("_xsrf")  # what the client used to do
    assert http.xsrf_cookie() == right
    model = http.post("api/sessions", json={"path": "y.ipynb", "type": "notebook", "name": "y",
                                            "kernel": {"name": "python3"}}).json()
    http.delete(f"api/sessions/{model['id']}")
    ws = http.websocket("api/kernels/x/channels")
    assert ws.headers["Cookie"].count("_xsrf=") == 1 and f"_xsrf={right}" in ws.headers["Cookie"]


def test_a_reused_presigned_url_ends_on_the_sign_in_page_and_is_login_failed(aws_env):
    target = space_target(aws_env)
    url = target._presigned_url()
    from studiorunner.targets.login import presigned_login

    presigned_login(url, "space", base_path=target.base_path)
    with pytest.raises(LoginFailed) as info:
        presigned_login(url, "space", base_path=target.base_path)
    message = str(info.value)
    assert aws_env.signin_url in message and "another host" in message
    assert "expired" in message and "IAM" in message
    assert url.split("token=")[1] not in message


def test_errors_name_path_and_status_but_no_secret(aws_env):
    http = space_target(aws_env).login()
    with pytest.raises(JupyterHTTPError) as info:
        http.get("api/kernels/not-a-kernel")
    message = str(info.value)
    assert "GET api/kernels/not-a-kernel answered 404" in message
    for cookie in http.session.cookies:
        assert cookie.value not in message
    assert aws_env.token not in message


def test_no_log_level_prints_the_presigned_token(aws_env, caplog):
    urls = []
    target = space_target(aws_env)
    original = target._presigned_url

    def spy() -> str:
        urls.append(original())
        return urls[-1]

    target._presigned_url = spy
    # Other tests in the same process may have quietened these loggers: every level, here.
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="urllib3"), \
            caplog.at_level(logging.DEBUG, logger="botocore"):
        logging.getLogger().setLevel(logging.DEBUG)
        target.login()
    token = urls[0].split("token=")[1]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "/auth?token=<redacted>" in text  # urllib3 logged the request line …
    assert token not in text  # … without the token


# ---- REST ---------------------------------------------------------------------------------


def test_notebooks_read_write_and_not_found(aws_env):
    client = JupyterClient(space_target(aws_env).login())
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    client.write_notebook("deep/er/n.ipynb", nb)  # parents are created
    assert client.read_notebook("deep/er/n.ipynb").cells[0].source == "1 + 1"
    with pytest.raises(NotebookNotFound, match="missing.ipynb"):
        client.read_notebook("missing.ipynb")


def test_kernelspec_fallbacks_against_the_real_server(aws_env):
    client = JupyterClient(space_target(aws_env).login())
    assert client.choose_kernel(None, {"name": "python3", "language": "python"}).warning is None
    other_image = "python3__SAGEMAKER_INTERNAL__arn:aws:sagemaker:eu-west-1:470317259841:image/sagemaker-distribution-cpu"
    choice = client.choose_kernel(None, {"name": other_image, "language": "python"})
    assert choice.name == "python3" and "not found" in choice.warning
    choice = client.choose_kernel(None, {"name": "conda-env-py", "display_name": "Python 3 (ipykernel)", "language": "python"})
    assert choice.name == "python3" and choice.warning
    # A language no kernel here speaks (R and bash kernels are installed for the language tests).
    with pytest.raises(KernelSpecNotFound, match=r"'ihaskell'.*available: .*python3"):
        client.choose_kernel(None, {"name": "ihaskell", "language": "haskell"})
    with pytest.raises(KernelSpecNotFound, match="'julia-1.9' is not available"):
        client.choose_kernel("julia-1.9", None)


def test_a_burst_of_503s_is_ridden_out_within_the_retry_budget(aws_env, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(http_module, "_sleep", slept.append)
    http = space_target(aws_env).login()
    aws_env.set_faults(http_errors=[{"method": "GET", "path_regex": r"/api/contents$", "status": 503, "count": 6}])
    try:
        assert http.get("api/contents").status_code == 200
        assert slept == [1.0] * 6  # the stand-in's Retry-After: 1
        aws_env.set_faults(http_errors=[{"method": "GET", "path_regex": r"/api/contents$", "status": 502, "count": 1000}])
        slept.clear()
        with pytest.raises(JupyterHTTPError, match="answered 502"):
            http.get("api/contents")
        assert slept[:6] == [0.5, 1, 2, 4, 8, 8] and 20 <= sum(slept) <= http_module.RETRY_SECONDS
    finally:
        aws_env.set_faults(http_errors=[])


# ---- app lifecycle ---------------------------------------------------------------------------


def test_space_app_lifecycle_as_the_sagemaker_api_behaves(standin_factory):
    s = standin_factory("studio-space", app_initially="absent", faults={"app_start_seconds": 0.5})
    with aws(s):
        target = space_target(s)
        progress = target.ensure_started(TargetProgress(), now=1000.0, start_seconds=60)
        assert progress.status == "pending" and progress.created and progress.wait_seconds > 0
        assert (progress.instance_type, progress.instance_type_source) == ("ml.t3.medium", "space default")
        with pytest.raises(JupyterHTTPError) as info:  # the loading page: HTML, a named error
            JupyterClient(target.login.__func__ and __import__("studiorunner.targets.login", fromlist=["x"])
                          .presigned_login(target._presigned_url(), "space", base_path=target.base_path)).list_kernels()
        assert info.value.facts["html"] is True
        progress = until(lambda: (p := target.ensure_started(progress, now=1001.0, start_seconds=60)).status == "ready" and p)
        assert progress.created and "InService" in progress.detail
        assert target.release(progress, "if_created").actions == ["deleted JupyterLab app of space"]
        until(lambda: target._describe_app()["Status"] == "Deleted")
        # the record stays, Deleted; deleting again answers ValidationException: gone, not a failure
        assert target.release(progress, "if_created").actions == ["JupyterLab app of space was already gone"]
        # right after the delete the space's storage is busy: ResourceInUse, pending, then created
        again = target.ensure_started(TargetProgress(), now=2000.0, start_seconds=60)
        assert again.status == "pending" and not again.created and "ResourceInUse" in again.detail
        again = until(lambda: (p := target.ensure_started(again, now=2001.0, start_seconds=60)).created and p)
        assert again.status == "pending"


def test_instance_type_from_the_target_config_first(standin_factory):
    s = standin_factory("studio-space", app_initially="absent")
    with aws(s):
        progress = space_target(s, instance_type="ml.m5.large").ensure_started(TargetProgress(), now=1.0, start_seconds=60)
    assert (progress.instance_type, progress.instance_type_source) == ("ml.m5.large", "target config")
    assert "ml.m5.large (target config)" in progress.detail
    assert [a["instance_type"] for a in s.state()["apps"]] == ["ml.m5.large"]


def test_an_app_that_vanished_is_target_failed_not_a_crash(standin_factory):
    s = standin_factory("studio-space")
    with aws(s):
        target = space_target(s)
        client = JupyterClient(target.login())
        assert s.idle_shutdown()
        with pytest.raises(JupyterHTTPError) as info:
            client.list_kernels()
        assert info.value.facts["html"]
        failed = target.lost_error()
        assert isinstance(failed, TargetFailed) and "idle shutdown" in str(failed)
        with pytest.raises(TargetFailed, match="stopped while the run was using it"):
            target.login()


def test_an_app_in_service_behind_a_loading_page_is_not_ready_yet(standin_factory):
    s = standin_factory("studio-space", faults={"proxy_ready_seconds": 3600})
    s.set_faults(proxy_ready_seconds=0)
    with aws(s):
        target = space_target(s)
        target.ensure_started(TargetProgress(), now=1.0, start_seconds=60)
        s.idle_shutdown()
        until(lambda: target._describe_app()["Status"] == "Deleted")
        s.set_faults(proxy_ready_seconds=3600, storage_busy_seconds=0, app_start_seconds=0.1)
        progress = target.ensure_started(TargetProgress(), now=1.0, start_seconds=60)
        until(lambda: target._describe_app()["Status"] == "InService")
        with pytest.raises(TargetNotReady):
            target.login()
        progress = target.ensure_started(progress, now=2.0, start_seconds=60)
        assert progress.status == "pending" and "not answering yet" in progress.detail


def test_classic_is_retired_and_only_a_legacy_domain_runs(standin_factory):
    s = standin_factory("studio-classic")
    with aws(s), pytest.raises(TargetFailed, match="no longer creates Studio Classic apps"):
        classic_target(s).ensure_started(TargetProgress(), now=1.0, start_seconds=60)

    legacy = standin_factory("studio-classic", legacy=True)
    with aws(legacy):
        target = classic_target(legacy)
        assert target.ensure_started(TargetProgress(), now=1.0, start_seconds=60).status == "ready"
        client = JupyterClient(target.login())
        assert client.http.base_url.endswith("/jupyter/default")
        apps = client.list_studio_apps()
        assert [a["instance_type"] for a in apps] == ["ml.t3.medium"] and "kernels" not in apps[0]
        with pytest.raises(JupyterHTTPError, match="deprecated"):
            client.create_kernel("python3", instance_type="ml.m5.large")
        kernel = client.create_kernel("python3", instance_type="ml.t3.medium")
        session = client.create_session("k.ipynb", kernel_id=kernel["id"])
        assert session["kernel"]["app_name"] == apps[0]["app_name"] == client.kernel_app_name(kernel["id"])
        client.delete_session(session["id"])
        assert target.release(TargetProgress(created=True), "always").actions == []


def test_notebook_instance_on_a_retired_platform_is_target_failed_with_aws_reason(standin_factory):
    s = standin_factory("notebook-instance", instance_initially="Stopped", faults={"instance_platform_retired": True})
    with aws(s):
        target = NotebookInstanceTarget(TargetConfig(name="nb", type="notebook-instance",
                                                     instance_name="local-instance", region="us-east-1"))
        with pytest.raises(TargetFailed, match="notebook-al2-v1.*no longer be created or started"):
            target.ensure_started(TargetProgress(), now=1.0, start_seconds=60)


# ---- a plain jupyter server, started as SageMaker Distribution starts it in a space ------


@pytest.fixture
def plain_jupyter(tmp_path: Path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    for sub in ("config", "data", "runtime"):
        (tmp_path / sub).mkdir()
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_DATA_DIR=str(tmp_path / "data"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), HOME=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--ServerApp.token=", "--ServerApp.password=",
         "--ServerApp.base_url=/jupyterlab/default", "--ServerApp.allow_origin=*", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--ServerApp.open_browser=False",
         "--ServerApp.allow_root=True", f"--ServerApp.root_dir={tmp_path}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/jupyterlab/default"
    try:
        until(lambda: _answers(url), 30)
        yield url, tmp_path
    finally:
        proc.terminate()
        proc.wait(15)


def _answers(url: str) -> bool:
    try:
        return requests.get(url + "/api/status", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_jupyter_target_against_a_plain_jupyter_server_without_token(plain_jupyter, monkeypatch):
    from studiorunner.jupyter.connection import KernelChannel
    from studiorunner.jupyter.kernel_protocol import kernel_info_request, new_session_id

    url, root = plain_jupyter
    monkeypatch.delenv("STUDIO_RUNNER_JUPYTER_TOKEN", raising=False)
    target = JupyterTarget(TargetConfig(name="mine", type="jupyter", url=url))
    client = JupyterClient(target.login())
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    client.write_notebook("plain/n.ipynb", nb)  # PUT: needs _xsrf, from a rendered page
    assert (root / "plain" / "n.ipynb").exists()
    session = client.create_session("plain/n.ipynb", kernel_name="python3")
    ws = client.channels(session["kernel"]["id"], new_session_id())
    with KernelChannel.open(ws.url, headers=ws.headers, timeout=30) as channel:
        request = kernel_info_request(session=new_session_id())
        channel.send(request)
        until(lambda: (m := channel.recv(5)) and m.get("msg_type") == "kernel_info_reply", 30)
    assert client.delete_session(session["id"])
    assert client.list_sessions() == [] and client.list_kernels() == []


# ---- an unreachable `jupyter` target is JupyterUnavailable, a refusal LoginFailed (issue 21.4) ----


@pytest.mark.parametrize("url", ["refused", "http://no-such-host.invalid:8888/jupyterlab/default"])
def test_an_unreachable_jupyter_server_is_jupyter_unavailable_not_login_failed(url, monkeypatch):
    from studiorunner.errors import JupyterUnavailable

    if url == "refused":
        with socket.socket() as sock:  # a port nobody listens on: the connection is refused
            sock.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/jupyterlab/default"
    monkeypatch.setattr(http_module, "_sleep", lambda seconds: None)
    monkeypatch.delenv("STUDIO_RUNNER_JUPYTER_TOKEN", raising=False)
    target = JupyterTarget(TargetConfig(name="lab", type="jupyter", url=url))

    with pytest.raises(JupyterUnavailable) as caught:
        target.login()
    assert "'lab'" in str(caught.value) and "could not be reached" in str(caught.value)
    assert not isinstance(caught.value, LoginFailed)


def test_a_jupyter_server_that_answers_and_refuses_the_token_is_login_failed(standin_factory, monkeypatch):
    standin = standin_factory("jupyter")
    monkeypatch.setenv("STUDIO_RUNNER_JUPYTER_TOKEN", "not-" + standin.token)
    target = JupyterTarget(TargetConfig(name="lab", type="jupyter", url=standin.jupyter_url))

    with pytest.raises(LoginFailed) as caught:
        target.login()
    assert caught.value.facts["status"] in (401, 403) and "refused the token" in str(caught.value)
    assert standin.token not in str(caught.value)


def test_the_state_machine_retries_a_step_that_found_jupyter_unavailable() -> None:
    import json

    from localstudio.local_stack import definition

    states = json.loads(definition())["States"]
    for name in ("StartTarget", "StartKernel"):
        assert any("JupyterUnavailable" in r["ErrorEquals"] for r in states[name]["Retry"]), name
