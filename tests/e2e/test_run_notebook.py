"""A notebook run end to end: the state machine definition CDK deploys, executed by moto's
Step Functions interpreter, its steps calling our handlers, against the Studio stand-in."""

from __future__ import annotations

import json

from e2e_support import write_notebook


def test_success_saves_executed_notebook_and_leaves_nothing_running(local_env):
    env = local_env("studio-space")
    path = write_notebook(env.root, "reports/hello.ipynb",
                          "x = 6 * 7\nprint('answer', x)", "x", "from IPython.display import HTML\nHTML('<b>bold</b>')")
    execution = env.run({"notebook": path})

    assert execution.succeeded, (execution.error, execution.cause)
    result = execution.output
    assert result["status"] == "SUCCEEDED"
    assert result["cells_total"] == 3 and result["cells_executed"] == 3
    assert result["output_notebook"].endswith(f"runs/{result['run_id']}/hello.ipynb")
    nb = env.output(execution)
    assert nb.cells[0].outputs[0].text == "answer 42\n"
    assert nb.cells[1].outputs[0].data["text/plain"] == "42"
    assert nb.cells[1].execution_count == 2
    assert nb.cells[2].outputs[0].data["text/html"] == "<b>bold</b>"
    assert nb.metadata.studio_runner["status"] == "succeeded"
    assert all(c.metadata.papermill["status"] == "completed" for c in nb.cells)
    running = env.running()
    assert running["kernels"] == [] and running["sessions"] == []
    # the space's app was there before the run: the run leaves it alone
    assert len(running["apps"]) == 1
    # StartKernel twice: the first returns the new session's ids into the state, the second
    # sees the kernel answer (issue 9: nothing created may go unrecorded)
    assert execution.invocations == ["studio-runner-prepare", "studio-runner-acquire-slot", "studio-runner-start-target",
                                     "studio-runner-start-kernel", "studio-runner-start-kernel",
                                     "studio-runner-run-cells", "studio-runner-cleanup"]


def test_cell_error_fails_run_saves_output_and_cleans_up(local_env):
    env = local_env("studio-space")
    path = write_notebook(env.root, "bad.ipynb", "print('before')", "1 / 0", "print('never')")
    execution = env.run({"notebook": path})

    assert execution.status == "FAILED"
    assert execution.error == "CellExecutionError"
    assert "ZeroDivisionError" in execution.cause and "division by zero" in execution.cause
    assert "s3://" in execution.cause  # where the output notebook is
    nb = env.output(execution)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].outputs[0].text == "before\n"
    assert code[1].outputs[0].output_type == "error" and code[1].outputs[0].ename == "ZeroDivisionError"
    assert code[2].execution_count is None and code[2].outputs == []
    assert nb.metadata.studio_runner["status"] == "failed"
    assert nb.cells[0].cell_type == "markdown" and "ZeroDivisionError" in nb.cells[0].source  # error banner
    assert env.running()["kernels"] == []


def test_app_slow_to_start_waits_then_succeeds_and_deletes_the_app_it_created(local_env):
    env = local_env("studio-space", app_initially="absent", faults={"app_start_seconds": 3.0})
    path = write_notebook(env.root, "n.ipynb", "print('ok')")
    execution = env.run({"notebook": path})

    assert execution.succeeded, (execution.error, execution.cause)
    assert execution.invocations.count("studio-runner-start-target") >= 2  # the Wait loop went round
    assert any("deleted JupyterLab app" in a for a in execution.output["cleanup"]["actions"])
    assert env.running()["apps"] == []


def test_app_that_fails_to_start_is_target_failed(local_env):
    env = local_env("studio-space", app_initially="absent", faults={"app_fails": True, "app_start_seconds": 0.5})
    path = write_notebook(env.root, "n.ipynb", "print('ok')")
    execution = env.run({"notebook": path})

    assert execution.status == "FAILED"
    assert execution.error == "TargetFailed"
    assert "failed to start" in execution.cause
    assert "studio-runner-run-cells" not in execution.invocations
    assert execution.invocations[-1] == "studio-runner-cleanup"
    assert env.running()["kernels"] == []


def test_missing_notebook_is_notebook_not_found(local_env):
    env = local_env("studio-space")
    execution = env.run({"notebook": "nowhere/missing.ipynb"})
    assert execution.status == "FAILED"
    assert execution.error == "NotebookNotFound"
    assert "nowhere/missing.ipynb" in execution.cause


def test_invalid_payload_fails_before_anything_starts(local_env):
    env = local_env("studio-space")
    before = env.standin.state()
    execution = env.run({"notebook": "a.ipynb", "parmeters": {"x": 1}})
    assert execution.status == "FAILED"
    assert execution.error == "PayloadInvalid"
    assert "'parmeters'" in execution.cause
    assert execution.invocations == ["studio-runner-prepare", "studio-runner-cleanup"]
    after = env.standin.state()
    assert after["kernels"] == before["kernels"] and after["apps"] == before["apps"]


def test_unknown_target_is_target_not_allowed(local_env):
    env = local_env("studio-space")
    execution = env.run({"notebook": "a.ipynb", "target": "someone-elses-space"})
    assert execution.error == "TargetNotAllowed"
    assert execution.invocations == ["studio-runner-prepare", "studio-runner-cleanup"]


def test_classic_legacy_domain_runs_on_its_existing_kernel_gateway_app_and_keeps_it(local_env):
    # Studio Classic is retired: only a domain whose apps still run can be used, and an
    # app this run did not start (none can be started any more) is kept.
    env = local_env("studio-classic", legacy=True)
    path = write_notebook(env.root, "n.ipynb", "print('classic')")
    execution = env.run({"notebook": path, "kernel": {"instance_type": "ml.t3.medium"}})

    assert execution.succeeded, (execution.error, execution.cause)
    assert env.output(execution).cells[0].outputs[0].text == "classic\n"
    assert any("KernelGateway" in k and "not started by this run" in k for k in execution.output["cleanup"]["kept"])
    state = env.standin.state()
    assert [a["app_type"] for a in state["apps"] if a["status"] == "InService"] == ["JupyterServer", "KernelGateway"]
    assert state["kernels"] == []


def test_plain_jupyter_target_with_token_from_secrets_manager(local_env):
    env = local_env("jupyter")
    path = write_notebook(env.root, "n.ipynb", "print('token auth')")
    execution = env.run({"notebook": path})
    assert execution.succeeded, (execution.error, execution.cause)
    assert env.output(execution).cells[0].outputs[0].text == "token auth\n"


def test_notebook_from_s3_is_uploaded_and_run(local_env):
    import nbformat

    env = local_env("studio-space")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('from s3')")])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    uri = env.stack.put_object("incoming/report.ipynb", nbformat.writes(nb).encode())
    execution = env.run({"notebook_s3": uri})
    assert execution.succeeded, (execution.error, execution.cause)
    assert env.output(execution).cells[0].outputs[0].text == "from s3\n"


def test_missing_s3_notebook_fails_in_prepare(local_env):
    env = local_env("studio-space")
    execution = env.run({"notebook_s3": "s3://studio-runner-local/none/such.ipynb"})
    assert execution.error == "NotebookNotFound"
    assert execution.invocations == ["studio-runner-prepare", "studio-runner-cleanup"]


def test_no_secret_in_state_history_or_output(local_env):
    env = local_env("studio-space")
    path = write_notebook(env.root, "n.ipynb", "print(1)")
    execution = env.run({"notebook": path})
    assert execution.succeeded
    history = json.dumps(env.stack.sfn.get_execution_history(executionArn=execution.arn)["events"], default=str)
    for secret_marker in ("token=", "AuthorizedUrl", "_xsrf", "Cookie", env.standin.token):
        assert secret_marker not in history


def test_write_back_puts_executed_notebook_beside_the_source(local_env):
    import nbformat

    env = local_env("studio-space")
    path = write_notebook(env.root, "reports/daily.ipynb", "print('written back')")
    execution = env.run({"notebook": path, "write_back": True})
    assert execution.succeeded, (execution.error, execution.cause)
    written = nbformat.read(env.root / "reports" / "daily.output.ipynb", as_version=4)
    assert written.cells[0].outputs[0].text == "written back\n"
    assert written.metadata.studio_runner["status"] == "succeeded"


def test_a_cell_longer_than_one_run_cells_invocation_keeps_all_its_output(local_env):
    env = local_env("studio-space", run_cells_budget=2)
    path = write_notebook(env.root, "long.ipynb",
                          "import time\nfor i in range(6):\n    print('tick', i, flush=True)\n    time.sleep(1)",
                          "print('after')")
    execution = env.run({"notebook": path})
    assert execution.succeeded, (execution.error, execution.cause)
    assert execution.invocations.count("studio-runner-run-cells") >= 3
    nb = env.output(execution)
    assert "".join(o.text for o in nb.cells[0].outputs if o.output_type == "stream") == \
        "".join(f"tick {i}\n" for i in range(6))
    assert nb.cells[1].outputs[0].text == "after\n"


def test_html_output_of_a_failed_run_shows_the_outputs_and_the_error(local_env):
    env = local_env("studio-space")
    path = write_notebook(env.root, "paged.ipynb", "print('<before>')", "raise KeyError('missing-key')",
                          "print('never')")
    execution = env.run({"notebook": path, "output_formats": ["notebook", "html"]})

    assert execution.error == "CellExecutionError"
    notebook_uri = env.output(execution).metadata.studio_runner["output_uri"]
    html_uri = notebook_uri.replace(".ipynb", ".html")
    page = env.stack.read_output(html_uri).decode()
    bucket, key = html_uri[len("s3://"):].split("/", 1)
    assert env.stack.s3.head_object(Bucket=bucket, Key=key)["ContentType"] == "text/html; charset=utf-8"
    assert "&lt;before&gt;" in page  # the first cell's output, escaped
    assert "KeyError" in page and "missing-key" in page and "celltag_sr-cell-failed" in page
    assert "\x1b[" not in page and 'class="ansi-red-fg"' in page  # the traceback's colours as HTML
    assert "<script" not in page
    assert env.running()["kernels"] == []
