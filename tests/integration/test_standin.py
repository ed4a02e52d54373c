"""The Studio stand-in behaves like Studio where Studio Runner depends on it.

Real server, real HTTP and WebSockets, boto3 against the stand-in's SageMaker endpoint.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
import requests
import websocket
from botocore.config import Config
from botocore.exceptions import ClientError

from localstudio.standin import StandIn

ID = {"DomainId": "d-localstudio"}
SPACE_APP = {**ID, "SpaceName": "local-space", "AppType": "JupyterLab", "AppName": "default"}


def sagemaker(s: StandIn):
    return boto3.client(
        "sagemaker",
        endpoint_url=s.sagemaker_endpoint,
        region_name=s.identity["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


def session() -> requests.Session:
    sess = requests.Session()
    sess.trust_env = False  # straight to 127.0.0.1, whatever the proxy settings
    return sess


def login(s: StandIn, **kwargs: Any) -> requests.Session:
    """Log in as the Lambdas do: GET the presigned URL and keep the cookie jar."""
    url = sagemaker(s).create_presigned_domain_url(
        DomainId="d-localstudio", UserProfileName="local-user", **kwargs
    )["AuthorizedUrl"]
    sess = session()
    response = sess.get(url, timeout=10)
    assert response.status_code == 200 and response.url.startswith(s.app_url), response.url
    # The login sets no _xsrf; any page Jupyter renders does (as in Studio, REAL-STUDIO L4).
    sess.get(f"{s.jupyter_url}/tree", timeout=10)
    return sess


def xsrf(sess: requests.Session) -> dict[str, str]:
    return {"X-XSRFToken": next(c.value for c in sess.cookies if c.name == "_xsrf")}


def cookie_header(sess: requests.Session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in sess.cookies)


def start_kernel(s: StandIn, sess: requests.Session, **body: Any) -> dict[str, Any]:
    r = sess.post(f"{s.jupyter_url}/api/kernels", json={"name": "python3", **body}, headers=xsrf(sess), timeout=30)
    assert r.status_code == 201, r.text
    return r.json()


def kernel_ws(s: StandIn, sess: requests.Session, kernel_id: str, **kwargs: Any) -> websocket.WebSocket:
    url = s.jupyter_url.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4()}"
    return websocket.create_connection(url, cookie=cookie_header(sess), timeout=10, **kwargs)


def delete_kernel(s: StandIn, sess: requests.Session, kernel_id: str) -> None:
    r = sess.delete(f"{s.jupyter_url}/api/kernels/{kernel_id}", headers=xsrf(sess), timeout=10)
    assert r.status_code == 204, (r.status_code, r.text)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def app_status(s: StandIn, **ident: str) -> str:
    return sagemaker(s).describe_app(**ident)["Status"]


# ---- login, XSRF, Origin ------------------------------------------------------------------


def test_presigned_url_logs_in_once_and_cannot_be_reused(standin_space: StandIn) -> None:
    s = standin_space
    url = sagemaker(s).create_presigned_domain_url(
        DomainId="d-localstudio", UserProfileName="local-user", SpaceName="local-space", ExpiresInSeconds=30
    )["AuthorizedUrl"]
    # On the space's own host (L1), not the API's.
    assert url.startswith(f"{s.app_url}/auth?token=") and s.app_url != s.base_url

    sess = session()
    first = sess.get(url, timeout=10)
    assert first.status_code == 200
    assert first.url == f"{s.jupyter_url}/lab"
    assert [(c.domain, c.path) for c in sess.cookies] == [("127.0.0.3", "/")]  # the login cookie, no _xsrf
    assert sess.get(f"{s.jupyter_url}/api/contents", timeout=10).status_code == 200
    assert "_xsrf" not in [c.name for c in sess.cookies]  # API calls never set it …
    assert sess.get(f"{s.jupyter_url}/tree", timeout=10).status_code == 404
    # … a rendered page does (even a 404), with the base URL as its path (L5)
    assert [(c.domain, c.path) for c in sess.cookies if c.name == "_xsrf"] == [("127.0.0.3", "/jupyterlab/default/")]

    # Used again: HTTP 200 on the console's sign-in page, another host (L3).
    again = session().get(url, timeout=10)
    assert again.status_code == 200 and again.url.startswith(s.signin_url + "/signin")
    assert "Sign-In" in again.text and "text/html" in again.headers["Content-Type"]
    assert session().get(f"{s.jupyter_url}/api/contents", timeout=10).status_code == 403
    # The API host serves no Jupyter, the app's host no SageMaker API.
    assert session().get(f"{s.base_url}/jupyterlab/default/api/status", timeout=10).status_code == 404
    assert session().post(f"{s.app_url}/_aws/sagemaker", timeout=10).status_code == 404

    # Neither the one-time token nor the server token reaches the server's log.
    log = s.log_path.read_text()
    assert url.split("token=", 1)[1] not in log
    assert s.token not in log


def test_cookie_post_needs_the_xsrf_header(standin_space: StandIn) -> None:
    s = standin_space
    sess = login(s, SpaceName="local-space")
    refused = sess.post(f"{s.jupyter_url}/api/contents", json={"type": "notebook"}, timeout=10)
    assert refused.status_code == 403
    made = sess.post(f"{s.jupyter_url}/api/contents", json={"type": "notebook"}, headers=xsrf(sess), timeout=10)
    assert made.status_code == 201
    # Contents paths are relative to root, which is the user's home.
    assert (s.root / made.json()["path"]).exists()


def test_websocket_origin_is_not_checked_as_in_a_space(standin_space: StandIn) -> None:
    # SageMaker Distribution starts Jupyter with --ServerApp.allow_origin='*' (REAL-STUDIO L4).
    s = standin_space
    sess = login(s, SpaceName="local-space")
    kernel = start_kernel(s, sess)
    try:
        for origin in ("https://elsewhere.example", None):
            ws = kernel_ws(s, sess, kernel["id"], **({"origin": origin} if origin else {}))
            assert ws.connected
            ws.close()
    finally:
        delete_kernel(s, sess, kernel["id"])
    assert kernel["id"] not in [k["id"] for k in s.state()["kernels"]]


def test_expired_presigned_url_is_refused(standin_space: StandIn) -> None:
    s = standin_space
    url = sagemaker(s).create_presigned_domain_url(
        DomainId="d-localstudio", UserProfileName="local-user", ExpiresInSeconds=5
    )["AuthorizedUrl"]
    time.sleep(5.2)
    expired = session().get(url, timeout=10)
    assert expired.status_code == 200 and expired.url.startswith(s.signin_url)


def test_sagemaker_api_errors_are_aws_shaped(standin_space: StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    # The way the Lambdas reach it: through AWS_ENDPOINT_URL_SAGEMAKER.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", standin_space.sagemaker_endpoint)
    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    with pytest.raises(ClientError) as e:
        sm.create_presigned_domain_url(DomainId="d-nope", UserProfileName="local-user")
    assert e.value.response["Error"]["Code"] == "ResourceNotFound"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as e:
        sm.create_presigned_domain_url(DomainId="d-localstudio", UserProfileName="local-user", ExpiresInSeconds=301)
    assert e.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as e:
        sm.describe_app(**{**SPACE_APP, "SpaceName": "other-space"})
    assert e.value.response["Error"]["Code"] == "ResourceNotFound"
    with pytest.raises(ClientError) as e:
        sm.create_app(**SPACE_APP)  # it is already InService
    assert e.value.response["Error"]["Code"] == "ResourceInUse"
    assert sm.describe_space(DomainId="d-localstudio", SpaceName="local-space")["Status"] == "InService"
    assert sm.describe_user_profile(DomainId="d-localstudio", UserProfileName="local-user")["Status"] == "InService"
    assert sm.describe_domain(DomainId="d-localstudio")["Status"] == "InService"
    assert [sp["SpaceName"] for sp in sm.list_spaces(DomainIdEquals="d-localstudio")["Spaces"]] == ["local-space"]


def test_terminals_work(standin_space: StandIn) -> None:
    s = standin_space
    sess = login(s)
    r = sess.post(f"{s.jupyter_url}/api/terminals", headers=xsrf(sess), timeout=10)
    assert r.status_code == 200
    name = r.json()["name"]
    assert name in s.state()["terminals"]
    ws = websocket.create_connection(
        s.jupyter_url.replace("http://", "ws://") + f"/terminals/websocket/{name}",
        cookie=cookie_header(sess), timeout=10,
    )
    assert json.loads(ws.recv()) == ["setup", {}]
    ws.close()
    assert sess.delete(f"{s.jupyter_url}/api/terminals/{name}", headers=xsrf(sess), timeout=10).status_code == 204
    assert s.state()["terminals"] == []


# ---- app lifecycle ------------------------------------------------------------------------


def loading(response: requests.Response) -> bool:
    """The page the app's URL answers while the app is not running (A11: HTTP 200 HTML by default)."""
    return response.status_code == 200 and response.headers["Content-Type"].startswith("text/html") \
        and "Loading" in response.text


def test_space_app_lifecycle_loading_page_resource_in_use_and_deleted_records(standin_factory) -> None:
    s = standin_factory("studio-space", app_initially="absent", faults={"app_start_seconds": 1.0})
    sm = sagemaker(s)
    with pytest.raises(ClientError) as e:
        sm.describe_app(**SPACE_APP)
    assert e.value.response["Error"]["Code"] == "ResourceNotFound"
    assert loading(session().get(f"{s.jupyter_url}/api/status", timeout=10))
    # Login itself works, but the redirect target is behind the (not yet running) app.
    url = sm.create_presigned_domain_url(DomainId="d-localstudio", UserProfileName="local-user", SpaceName="local-space")["AuthorizedUrl"]
    sess = session()
    assert loading(sess.get(url, timeout=10))

    created = time.monotonic()
    sm.create_app(**SPACE_APP)  # without ResourceSpec: the space's default instance type
    assert sm.describe_app(**SPACE_APP)["ResourceSpec"]["InstanceType"] == \
        sm.describe_space(DomainId="d-localstudio", SpaceName="local-space")["SpaceSettings"]["JupyterLabAppSettings"]["DefaultResourceSpec"]["InstanceType"]
    assert app_status(s, **SPACE_APP) == "Pending"
    assert loading(sess.get(f"{s.jupyter_url}/api/kernels", timeout=10))
    wait_for(lambda: app_status(s, **SPACE_APP) == "InService", 5, "InService")
    assert 0.9 <= time.monotonic() - created <= 5.0
    wait_for(lambda: sess.get(f"{s.jupyter_url}/api/kernels", timeout=10).status_code == 200
             and sess.get(f"{s.jupyter_url}/api/kernels", timeout=10).headers["Content-Type"].startswith("application/json"),
             5, "the proxy to pass requests to Jupyter")
    sess.get(f"{s.jupyter_url}/tree", timeout=10)
    kernel = start_kernel(s, sess)

    sm.delete_app(**SPACE_APP)
    assert app_status(s, **SPACE_APP) == "Deleting"
    wait_for(lambda: app_status(s, **SPACE_APP) == "Deleted", 5, "Deleted")
    assert loading(sess.get(f"{s.jupyter_url}/api/kernels", timeout=10))
    state = s.state()
    assert kernel["id"] not in [k["id"] for k in state["kernels"]]
    assert [a["status"] for a in state["apps"]] == ["Deleted"]  # the record stays (A2)
    assert [a["Status"] for a in sm.list_apps(DomainIdEquals="d-localstudio")["Apps"]] == ["Deleted"]
    with pytest.raises(ClientError) as e:  # deleting it again (A3)
        sm.delete_app(**SPACE_APP)
    assert e.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as e:  # the space's volume is still busy (A4)
        sm.create_app(**SPACE_APP)
    assert e.value.response["Error"]["Code"] == "ResourceInUse" and "storage" in e.value.response["Error"]["Message"]
    s.set_faults(loading_page="503")
    assert sess.get(f"{s.jupyter_url}/api/kernels", timeout=10).status_code == 503


def test_app_fails_knob_makes_the_app_fail(standin_factory) -> None:
    s = standin_factory("studio-space", app_initially="absent", faults={"app_start_seconds": 0.2, "app_fails": True})
    sm = sagemaker(s)
    sm.create_app(**SPACE_APP)
    app = wait_for(lambda: (d := sm.describe_app(**SPACE_APP))["Status"] == "Failed" and d, 5, "Failed")
    assert "app_fails" in app["FailureReason"]
    assert loading(session().get(f"{s.jupyter_url}/api/status", timeout=10))
    # After the fault is lifted a new CreateApp succeeds.
    s.set_faults(app_fails=False)
    sm.create_app(**SPACE_APP)
    wait_for(lambda: app_status(s, **SPACE_APP) == "InService", 5, "InService")


def test_classic_is_retired_no_app_can_be_created(standin_factory) -> None:
    s = standin_factory("studio-classic")
    sm = sagemaker(s)
    classic = {**ID, "UserProfileName": "local-user", "AppName": "default"}
    assert sm.list_apps(DomainIdEquals="d-localstudio")["Apps"] == []
    for app_type in ("JupyterServer", "KernelGateway"):
        with pytest.raises(ClientError) as e:
            sm.create_app(**classic, AppType=app_type)
        assert e.value.response["Error"]["Code"] == "ValidationException"
        assert e.value.response["Error"]["Message"] == f"Invalid AppType [{app_type}]. This AppType has been deprecated."


def test_classic_legacy_domain_runs_kernels_on_its_existing_kernel_gateway_app(standin_factory) -> None:
    s = standin_factory("studio-classic", legacy=True)
    assert s.jupyter_url.endswith("/jupyter/default")
    sess = login(s)
    listed = sess.get(f"{s.jupyter_url}/sagemaker/api/apps", timeout=10).json()
    assert isinstance(listed, list) and [a["instance_type"] for a in listed] == ["ml.t3.medium"]
    assert "kernels" not in listed[0] and listed[0]["environment_arn"]  # A8: a bare list
    app_name = listed[0]["app_name"]

    kernel = start_kernel(s, sess, instance_type="ml.t3.medium")
    r = sess.post(f"{s.jupyter_url}/api/sessions", json={"path": "a.ipynb", "type": "notebook", "name": "a.ipynb",
                                                        "kernel": {"id": kernel["id"]}}, headers=xsrf(sess), timeout=10)
    assert r.status_code == 201
    sessions = sess.get(f"{s.jupyter_url}/api/sessions", timeout=10).json()
    assert [x["kernel"]["app_name"] for x in sessions] == [app_name]  # how Studio names a kernel's app

    # Another instance type would need a new KernelGateway app: refused with AWS's reason.
    refused = sess.post(f"{s.jupyter_url}/api/kernels", json={"name": "python3", "instance_type": "ml.m5.large"},
                        headers=xsrf(sess), timeout=10)
    assert refused.status_code == 400 and "deprecated" in refused.json()["message"]

    assert sess.delete(f"{s.jupyter_url}/api/sessions/{r.json()['id']}", headers=xsrf(sess), timeout=10).status_code == 204
    kg = {**ID, "UserProfileName": "local-user", "AppType": "KernelGateway", "AppName": app_name}
    assert app_status(s, **kg) == "InService"  # deleting the kernel leaves the app (still billing)
    assert sess.delete(f"{s.jupyter_url}/sagemaker/api/apps/{app_name}", headers=xsrf(sess), timeout=10).status_code == 204
    wait_for(lambda: app_status(s, **kg) == "Deleted", 5, "Deleted")
    assert sess.get(f"{s.jupyter_url}/sagemaker/api/apps", timeout=10).json() == []


def test_notebook_instance_start_and_stop(standin_factory) -> None:
    s = standin_factory("notebook-instance", instance_initially="Stopped", faults={"instance_start_seconds": 0.5})
    assert s.jupyter_url == s.app_url
    sm = sagemaker(s)
    name = {"NotebookInstanceName": "local-instance"}
    assert sm.describe_notebook_instance(**name)["NotebookInstanceStatus"] == "Stopped"
    assert loading(session().get(f"{s.jupyter_url}/api/status", timeout=10))
    assert s.state()["notebook_instances"] == [{"name": "local-instance", "status": "Stopped"}]
    with pytest.raises(ClientError) as e:
        sm.stop_notebook_instance(**name)
    assert e.value.response["Error"]["Code"] == "ValidationException"

    sm.start_notebook_instance(**name)
    assert sm.describe_notebook_instance(**name)["NotebookInstanceStatus"] == "Pending"
    wait_for(lambda: sm.describe_notebook_instance(**name)["NotebookInstanceStatus"] == "InService", 5, "InService")
    url = sm.create_presigned_notebook_instance_url(**name)["AuthorizedUrl"]
    sess = session()
    assert sess.get(url, timeout=10).status_code == 200
    sess.get(f"{s.jupyter_url}/tree", timeout=10)
    kernel = start_kernel(s, sess)

    sm.stop_notebook_instance(**name)
    assert sm.describe_notebook_instance(**name)["NotebookInstanceStatus"] == "Stopping"
    wait_for(lambda: sm.describe_notebook_instance(**name)["NotebookInstanceStatus"] == "Stopped", 5, "Stopped")
    state = s.state()
    assert kernel["id"] not in [k["id"] for k in state["kernels"]]
    assert state["notebook_instances"][0]["status"] == "Stopped"

    s.set_faults(instance_platform_retired=True)  # A9: a retired platform cannot start again
    with pytest.raises(ClientError) as e:
        sm.start_notebook_instance(**name)
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert "no longer be created or started" in e.value.response["Error"]["Message"]


def test_jupyter_flavor_uses_token_auth_without_xsrf(standin_factory) -> None:
    s = standin_factory("jupyter")
    auth = {"Authorization": f"token {s.token}"}
    assert session().get(f"{s.jupyter_url}/api/kernels", timeout=10).status_code == 403
    r = session().post(f"{s.jupyter_url}/api/kernels", json={"name": "python3"}, headers=auth, timeout=30)
    assert r.status_code == 201
    assert [k["id"] for k in s.state()["kernels"]] == [r.json()["id"]]


# ---- fault knobs ----------------------------------------------------------------------------


def test_http_errors_knob_answers_the_next_matching_requests(standin_space: StandIn) -> None:
    s = standin_space
    sess = login(s)
    s.set_faults(http_errors=[{"method": "GET", "path_regex": r"/api/kernels$", "status": 502, "count": 2}])
    try:
        assert sess.post(f"{s.jupyter_url}/api/contents", json={"type": "file"}, headers=xsrf(sess), timeout=10).status_code == 201
        statuses = [sess.get(f"{s.jupyter_url}/api/kernels", timeout=10).status_code for _ in range(3)]
        assert statuses == [502, 502, 200]
    finally:
        s.set_faults(http_errors=[])
    with pytest.raises(ValueError):
        s.set_faults(no_such_knob=1)


def test_drop_websockets_knob_closes_kernel_sockets(standin_space: StandIn) -> None:
    s = standin_space
    sess = login(s)
    kernel = start_kernel(s, sess)
    s.set_faults(drop_websockets_after_seconds=0.5)
    try:
        ws = kernel_ws(s, sess, kernel["id"])
        opened = time.monotonic()
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            while True:
                ws.recv()  # kernel_info / status traffic, then the server's close
        assert 0.4 <= time.monotonic() - opened <= 5.0
    finally:
        s.set_faults(drop_websockets_after_seconds=None)
        delete_kernel(s, sess, kernel["id"])


def test_kill_kernel_kills_the_process_and_jupyter_reports_it(standin_space: StandIn) -> None:
    s = standin_space
    sess = login(s)
    kernel = start_kernel(s, sess)
    try:
        ws = kernel_ws(s, sess, kernel["id"])
        pid = next(k["pid"] for k in s.state()["kernels"] if k["id"] == kernel["id"])
        s.kill_kernel(kernel["id"])
        deadline = time.monotonic() + 8
        seen = None
        while time.monotonic() < deadline and seen is None:
            msg = json.loads(ws.recv())
            if msg.get("channel") == "iopub" and msg["msg_type"] == "status":
                if msg["content"]["execution_state"] in ("restarting", "dead"):
                    seen = msg["content"]["execution_state"]
        ws.close()
        assert seen == "restarting"

        def restarted() -> bool:
            model = next(k for k in s.state()["kernels"] if k["id"] == kernel["id"])
            return model["pid"] != pid and model["ready"]

        # Wait until the restart is over: jupyter_client answers 500 to a DELETE that
        # arrives mid-restart (and the kernel stays), as a real server would.
        wait_for(restarted, 10, "the restarted kernel to be ready")
    finally:
        delete_kernel(s, sess, kernel["id"])


def test_a_notebook_cannot_read_the_servers_token(standin_space: StandIn) -> None:
    """Issue 9: the token was in the server's /proc/<pid>/environ and its runtime dir."""
    from studiorunner.jupyter.connection import KernelChannel
    from studiorunner.jupyter.kernel_protocol import execute_request, new_session_id

    s = standin_space
    sess = login(s)
    kernel = start_kernel(s, sess)
    code = (
        "import os, glob\n"
        "found = [open(f'/proc/{os.getppid()}/environ', 'rb').read().decode(errors='replace'), repr(dict(os.environ))]\n"
        "for d in {os.environ.get('JUPYTER_RUNTIME_DIR', ''), os.path.dirname(os.environ.get('JUPYTER_CONFIG_DIR', ''))} - {''}:\n"
        "    for f in glob.glob(d + '/**', recursive=True):\n"
        "        try: found.append(open(f, errors='replace').read())\n"
        "        except OSError: pass\n"
        "print('\\n'.join(found))"
    )
    try:
        url = s.jupyter_url.replace("http://", "ws://") + f"/api/kernels/{kernel['id']}/channels?session_id={uuid.uuid4()}"
        out = []
        with KernelChannel.open(url, headers={"Cookie": cookie_header(sess)}, timeout=30) as channel:
            request = execute_request(code, session=new_session_id())
            channel.send(request)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                msg = channel.recv(5)
                if not msg or msg.get("parent_header", {}).get("msg_id") != request["header"]["msg_id"]:
                    continue
                if msg["msg_type"] == "stream":
                    out.append(msg["content"]["text"])
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    break
        text = "".join(out)
        assert "JUPYTER_RUNTIME_DIR" in text  # it did read the environment and the files
        assert s.token not in text
    finally:
        delete_kernel(s, sess, kernel["id"])


def test_state_shows_nothing_left_running_after_cleanup(standin_space: StandIn) -> None:
    s = standin_space
    state = s.state()
    assert state["kernels"] == [] and state["sessions"] == [] and state["terminals"] == []
    assert [(a["app_type"], a["status"]) for a in state["apps"]] == [("JupyterLab", "InService")]


def test_the_standin_loads_no_server_extension_but_the_terminals(standin_factory, tmp_path) -> None:
    """JupyterLab, jupyter-lsp or jupyter-scheduler installed beside jupyter_server (as
    `studio-runner[jupyterlab]` installs them) stay off in the stand-in: jupyter-lsp would
    write ``.npm/_logs`` into the served folder (its HOME), which must stay the user's."""
    home = tmp_path / "clean-home"
    home.mkdir()
    s = standin_factory(root=home)
    sess = login(s)
    for extension_path in ("lab/api/settings", "scheduler/jobs", "lsp/status"):
        assert sess.get(f"{s.jupyter_url}/{extension_path}", timeout=10).status_code == 404, extension_path
    assert sess.get(f"{s.jupyter_url}/api/terminals", timeout=10).status_code == 200
    assert sorted(p.name for p in home.iterdir()) == []
