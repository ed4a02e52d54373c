"""An execution stopped mid-run never reaches Cleanup: the ExecutionEnded handler cleans up."""

from __future__ import annotations

import time

from e2e_support import write_notebook


def _wait_for(predicate, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_aborted_execution_is_cleaned_up(local_env, lambda_context, sample_event):
    from studiorunner.steps import execution_ended

    # a short RunCells budget: moto acts on stop_execution between states, as soon as RunCells returns
    env = local_env("studio-space", app_initially="absent", faults={"app_start_seconds": 0.5}, run_cells_budget=2)
    path = write_notebook(env.root, "long.ipynb", "import time\nprint('started', flush=True)\ntime.sleep(60)")
    arn = env.stack.start({"notebook": path})
    assert _wait_for(lambda: any(k["execution_state"] == "busy" for k in env.standin.state()["kernels"]))

    env.stack.sfn.stop_execution(executionArn=arn, error="Operator", cause="stopped by hand")
    assert _wait_for(lambda: env.stack.sfn.describe_execution(executionArn=arn)["status"] == "ABORTED", timeout=10)
    assert env.running()["kernels"], "the kernel keeps running after the abort"

    event = sample_event("execution_status_aborted")
    event["detail"]["executionArn"] = arn
    result = execution_ended.handler(event, lambda_context)

    assert result["cleaned"] is True
    assert any("kernel" in a for a in result["cleanup"]["actions"])
    assert any("deleted JupyterLab app" in a for a in result["cleanup"]["actions"])
    assert _wait_for(lambda: env.running()["kernels"] == [] and env.running()["apps"] == [], timeout=10)


def test_finished_execution_needs_no_cleanup(local_env, lambda_context, sample_event):
    from studiorunner.steps import execution_ended

    env = local_env("studio-space")
    execution = env.run({"notebook": write_notebook(env.root, "n.ipynb", "1")})
    assert execution.succeeded
    event = sample_event("execution_status_aborted")
    event["detail"].update(executionArn=execution.arn, status="TIMED_OUT")
    result = execution_ended.handler(event, lambda_context)
    assert result["cleaned"] is False
