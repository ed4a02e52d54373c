"""Runs through the local state machine against the default stand-in, which answers as
real SageMaker does (REAL-STUDIO.md): one test per behaviour a deployed run meets."""

from __future__ import annotations

import time

from e2e_support import assert_nothing_running, write_notebook


def _ok(execution):
    assert execution.succeeded, (execution.error, execution.cause)
    return execution


def test_a_presigned_url_spent_before_use_is_login_failed(local_env):
    env = local_env("studio-space")
    env.standin.set_faults(login_refusals=1000)  # every URL ends on the sign-in page
    path = write_notebook(env.root, "n.ipynb", "print('never')")
    execution = env.run({"notebook": path})
    assert execution.error == "LoginFailed", (execution.error, execution.cause)
    assert env.standin.signin_url in execution.cause and "expired" in execution.cause
    assert "token=" not in execution.cause
    assert_nothing_running(env)


def test_xsrf_missing_after_login_is_obtained_and_the_run_works(local_env):
    # The default stand-in's login sets no _xsrf (only a rendered page does): the
    # client must fetch one before its first POST, or every run fails with a 403.
    env = local_env("studio-space")
    path = write_notebook(env.root, "n.ipynb", "print('xsrf ok')")
    execution = _ok(env.run({"notebook": path}))
    assert env.output(execution).cells[0].outputs[0].text == "xsrf ok\n"
    assert_nothing_running(env)


def test_loading_page_after_in_service_is_waited_out(local_env):
    # DescribeApp says InService while the space's URL still answers a 200 HTML loading page.
    env = local_env("studio-space", app_initially="absent",
                    faults={"app_start_seconds": 0.3, "proxy_ready_seconds": 3.0})
    path = write_notebook(env.root, "n.ipynb", "print('after loading')")
    execution = _ok(env.run({"notebook": path}))
    assert env.output(execution).cells[0].outputs[0].text == "after loading\n"
    assert execution.invocations.count("studio-runner-start-target") >= 3
    assert "deleted JupyterLab app of local" in execution.output["cleanup"]["actions"]


def test_loading_page_as_503_is_waited_out_too(local_env):
    env = local_env("studio-space", app_initially="absent",
                    faults={"app_start_seconds": 0.3, "proxy_ready_seconds": 2.0, "loading_page": "503"})
    path = write_notebook(env.root, "n.ipynb", "print('503 variant')")
    execution = _ok(env.run({"notebook": path}))
    assert env.output(execution).cells[0].outputs[0].text == "503 variant\n"


def test_create_app_resource_in_use_right_after_a_stop_is_retried(local_env):
    # long enough that the run reaches CreateApp inside it even on a loaded machine
    env = local_env("studio-space", faults={"storage_busy_seconds": 8.0})
    env.standin.idle_shutdown()  # someone stopped the space just now
    deadline = time.monotonic() + 10
    while env.standin.state()["apps"][-1]["status"] != "Deleted" and time.monotonic() < deadline:
        time.sleep(0.05)
    path = write_notebook(env.root, "n.ipynb", "print('after ResourceInUse')")
    execution = _ok(env.run({"notebook": path}))
    assert env.output(execution).cells[0].outputs[0].text == "after ResourceInUse\n"
    assert "CreateApp: ResourceInUse" in env.standin.state()["api_errors"]
    assert [a["status"] for a in env.standin.state()["apps"]] == ["Deleted", "Deleting"] or \
        [a["status"] for a in env.standin.state()["apps"]] == ["Deleted", "Deleted"]


def test_app_vanishing_mid_run_is_target_failed_and_delete_app_validation_is_gone(local_env):
    env = local_env("studio-space", app_initially="absent", faults={"app_start_seconds": 0.3})
    path = write_notebook(env.root, "n.ipynb", "import time; time.sleep(60)")
    shut = []

    def idle_shutdown_once_busy() -> None:
        if not shut and any(k["execution_state"] == "busy" for k in env.standin.state()["kernels"]):
            shut.append(env.standin.idle_shutdown())

    execution = env.stack.run({"notebook": path}, timeout=120, on_poll=idle_shutdown_once_busy)
    assert shut == [True]
    assert execution.error == "TargetFailed", (execution.error, execution.cause)
    assert "idle shutdown" in execution.cause
    assert "cleanup also failed" not in execution.cause, execution.cause
    # Cleanup's DeleteApp met the ValidationException of an app already gone, and took it as gone.
    assert "DeleteApp: ValidationException" in env.standin.state()["api_errors"]
    assert_nothing_running(env)


def test_studio_classic_that_would_need_a_new_app_fails_at_once(local_env):
    env = local_env("studio-classic")
    path = write_notebook(env.root, "n.ipynb", "print('never')")
    execution = env.run({"notebook": path})
    assert execution.error == "TargetFailed", (execution.error, execution.cause)
    assert "retired" in execution.cause and "studio-space" in execution.cause
    assert execution.invocations.count("studio-runner-start-target") == 1  # at once, no waiting
    assert "studio-runner-start-kernel" not in execution.invocations
    assert env.standin.state()["apps"] == []


def test_studio_classic_legacy_domain_refuses_a_kernel_gateway_it_would_have_to_create(local_env):
    env = local_env("studio-classic", legacy=True)
    path = write_notebook(env.root, "n.ipynb", "print('never')")
    execution = env.run({"notebook": path, "kernel": {"instance_type": "ml.m5.large"}})
    assert execution.error == "TargetFailed", (execution.error, execution.cause)
    assert "KernelGateway" in execution.cause and "ml.t3.medium" in execution.cause
    assert_nothing_running(env)


def test_notebook_instance_on_a_retired_platform_is_target_failed_with_aws_reason(local_env):
    env = local_env("notebook-instance", instance_initially="Stopped", faults={"instance_platform_retired": True})
    path = write_notebook(env.root, "n.ipynb", "print('never')")
    execution = env.run({"notebook": path})
    assert execution.error == "TargetFailed", (execution.error, execution.cause)
    assert "notebook-al2-v1" in execution.cause and "no longer be created or started" in execution.cause
