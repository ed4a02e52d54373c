"""The client library against the Studio stand-in: targets log in with presigned URLs,
the HTTP chokepoint sends XSRF and names errors without secrets, the REST layer maps
statuses to the run's errors and picks kernelspecs."""

from __future__ import annotations

import os
from unittest import mock

import nbformat
import pytest

import localstudio  # noqa: F401
from studiorunner.config import TargetConfig
from studiorunner.errors import JupyterHTTPError, KernelSpecNotFound, NotebookNotFound
from studiorunner.jupyter.rest import JupyterClient
from studiorunner.targets import StudioClassicTarget, StudioSpaceTarget, TargetProgress


@pytest.fixture
def aws_env(standin_space):
    env = {"AWS_ENDPOINT_URL_SAGEMAKER": standin_space.sagemaker_endpoint, "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}
    with mock.patch.dict(os.environ, env):
        yield standin_space


def space_target(standin) -> StudioSpaceTarget:
    ident = standin.identity
    return StudioSpaceTarget(TargetConfig(name="space", type="studio-space", domain_id=ident["domain_id"],
                                          user_profile=ident["user_profile"], space_name=ident["space_name"],
                                          region="us-east-1"))


def test_login_with_presigned_url_keeps_cookies_and_sends_xsrf(aws_env):
    http = space_target(aws_env).login()
    assert http.base_url == aws_env.jupyter_url
    assert http.session.cookies.get("_xsrf")
    # a non-GET goes through because the chokepoint echoes _xsrf as X-XSRFToken …
    model = http.post("api/sessions", json={"path": "x.ipynb", "type": "notebook", "name": "x",
                                            "kernel": {"name": "python3"}}).json()
    http.delete(f"api/sessions/{model['id']}")
    # … and the same cookie-authenticated POST without it is refused by the server
    bare = http.session.post(http.url("api/kernels"), json={"name": "python3"})
    assert bare.status_code == 403


def test_errors_name_path_and_status_but_no_secret(aws_env):
    http = space_target(aws_env).login()
    with pytest.raises(JupyterHTTPError) as info:
        http.get("api/kernels/not-a-kernel")
    message = str(info.value)
    assert "GET api/kernels/not-a-kernel answered 404" in message
    for cookie in http.session.cookies:
        assert cookie.value not in message
    assert aws_env.token not in message


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
    with pytest.raises(KernelSpecNotFound, match=r"'ir'.*available: python3"):
        client.choose_kernel(None, {"name": "ir", "language": "R"})
    with pytest.raises(KernelSpecNotFound, match="'julia-1.9' is not available"):
        client.choose_kernel("julia-1.9", None)


def test_space_app_lifecycle_through_sagemaker_api(standin_factory):
    standin = standin_factory("studio-space", app_initially="absent", faults={"app_start_seconds": 0.5})
    env = {"AWS_ENDPOINT_URL_SAGEMAKER": standin.sagemaker_endpoint, "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}
    with mock.patch.dict(os.environ, env):
        target = space_target(standin)
        progress = target.ensure_started(TargetProgress(), now=1000.0, start_seconds=60)
        assert progress.status == "pending" and progress.created and progress.wait_seconds > 0
        import time

        deadline = time.monotonic() + 10
        while progress.status != "ready" and time.monotonic() < deadline:
            time.sleep(0.2)
            progress = target.ensure_started(progress, now=1001.0, start_seconds=60)
        assert progress.status == "ready" and progress.created
        report = target.release(progress, "if_created")
        assert report.actions == ["deleted JupyterLab app of space"]


def test_classic_target_logs_into_jupyter_default(standin_factory):
    standin = standin_factory("studio-classic")
    ident = standin.identity
    env = {"AWS_ENDPOINT_URL_SAGEMAKER": standin.sagemaker_endpoint, "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}
    with mock.patch.dict(os.environ, env):
        target = StudioClassicTarget(TargetConfig(name="classic", type="studio-classic", domain_id=ident["domain_id"],
                                                  user_profile=ident["user_profile"], region="us-east-1"))
        client = JupyterClient(target.login())
        assert client.http.base_url.endswith("/jupyter/default")
        kernel = client.create_kernel("python3", instance_type="ml.t3.medium")
        assert kernel["app_name"]
        assert any(a["app_name"] == kernel["app_name"] for a in client.list_studio_apps())
        client.delete_kernel(kernel["id"])
        # deleting the kernel leaves the KernelGateway app running (and billing) …
        assert any(a["app_name"] == kernel["app_name"] for a in client.list_studio_apps())
        # … until it is deleted itself
        assert client.delete_studio_app(kernel["app_name"])
        assert all(a["app_name"] != kernel["app_name"] or a.get("status") != "InService" for a in client.list_studio_apps())
