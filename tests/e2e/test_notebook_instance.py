"""Classic SageMaker notebook instances as a target (issue 5)."""

from __future__ import annotations

from e2e_support import write_notebook


def _instance(env) -> dict:
    (instance,) = env.standin.state()["notebook_instances"]
    return instance


def test_stopped_instance_is_started_used_and_stopped_again(local_env):
    env = local_env("notebook-instance", instance_initially="Stopped", faults={"instance_start_seconds": 2.0})
    assert _instance(env)["status"] == "Stopped"
    path = write_notebook(env.root, "n.ipynb", "print('on the instance')")
    execution = env.run({"commands": ["echo from the terminal"], "notebook": path})

    assert execution.succeeded, (execution.error, execution.cause)
    assert execution.invocations.count("studio-runner-start-target") >= 2  # waited while Pending
    assert env.output(execution).cells[0].outputs[0].text == "on the instance\n"
    assert any("stopped notebook instance" in a for a in execution.output["cleanup"]["actions"])
    assert _instance(env)["status"] in ("Stopping", "Stopped")


def test_running_instance_is_left_running(local_env):
    env = local_env("notebook-instance", instance_initially="InService")
    execution = env.run({"notebook": write_notebook(env.root, "n.ipynb", "1 + 1")})
    assert execution.succeeded, (execution.error, execution.cause)
    assert _instance(env)["status"] == "InService"
    assert env.running()["kernels"] == []


def test_instance_that_fails_to_start_is_target_failed(local_env):
    env = local_env("notebook-instance", instance_initially="Stopped", faults={"app_fails": True})
    execution = env.run({"notebook": write_notebook(env.root, "n.ipynb", "1")})
    assert execution.error == "TargetFailed"
