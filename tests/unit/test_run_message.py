"""The message sent when a run ends (studiorunner.report.message / notify / webhook): subject,
body and SNS attributes for a failed, timed-out, aborted and succeeded run, written from the
run's record; a subscriber's filter policy on the attributes (moto's SNS); the webhook
against a local HTTP server that answers, answers 500, or never answers."""

from __future__ import annotations

import json
import socket
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import boto3
import nbformat
import pytest
from moto import mock_aws

from studiorunner.report import message as msgs
from studiorunner.report import notify, webhook

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "report_executed.ipynb"
REGION = "eu-west-1"
ARN = f"arn:aws:states:{REGION}:123456789012:execution:studio-runner-runs:"
T0 = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)
NB_URI = "s3://bucket/runs/{run}/sales.ipynb"


class FakeStepFunctions:
    """DescribeExecution and GetExecutionHistory of one ended execution, as Step Functions answers."""

    def __init__(self, *, name: str, status: str, payload: dict[str, Any], state: dict[str, Any] | None = None,
                 output: dict[str, Any] | None = None, error: str | None = None, cause: str | None = None,
                 seconds: float = 19.0) -> None:
        self.described = {"executionArn": ARN + name, "name": name, "status": status,
                          "input": json.dumps(payload), "startDate": T0, "stopDate": T0 + timedelta(seconds=seconds)}
        if output is not None:
            self.described["output"] = json.dumps(output)
        if error:
            self.described.update(error=error, cause=cause)
        self.state = state

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        return dict(self.described)

    def get_execution_history(self, **_: Any) -> dict[str, Any]:
        events = [{"stateEnteredEventDetails": {"name": "Cleanup", "input": json.dumps(self.state)}}] if self.state else []
        return {"events": events}


class Store:
    def __init__(self, notebooks: dict[str, nbformat.NotebookNode]) -> None:
        self.notebooks = notebooks

    def read(self, uri: str) -> nbformat.NotebookNode:
        if uri not in self.notebooks:
            raise FileNotFoundError(uri)
        return self.notebooks[uri]


PAYLOAD = {"notebook": "reports/sales.ipynb", "target": "analytics", "output_formats": ["notebook", "html"],
           "parameters": {"region": "eu", "api_key": "s3cr3t-value", "db_password": "hunter2", "limit": 5},
           "schedule": {"name": "daily-sales", "overlap": "skip"}}


def _state(run: str, *, outcome: dict[str, Any] | None = None, cells_executed: int = 8) -> dict[str, Any]:
    state = {"run": {"run_id": run, "target": "analytics", "output_uri": NB_URI.format(run=run),
                     "spec": {"notebook": "reports/sales.ipynb", "parameters": PAYLOAD["parameters"]}},
             "cursor": {"cells_executed": cells_executed}}
    if outcome is not None:
        state["outcome"] = outcome
    return state


def _result(run: str, status: str, **extra: Any) -> dict[str, Any]:
    return {"run_id": run, "status": status, "target": "analytics", "output_notebook": NB_URI.format(run=run),
            "output_html": NB_URI.format(run=run).replace(".ipynb", ".html"), "cells_total": 9, "cells_executed": 8,
            "duration_seconds": 19.4, **extra}


def _message(sfn: FakeStepFunctions, notebooks: dict[str, Any] | None = None, **kw: Any) -> msgs.Message:
    return notify.run_message(sfn.described["executionArn"], stepfunctions=sfn, store=Store(notebooks or {}), **kw)


def test_a_failed_run_says_which_cell_raised_what_with_the_traceback_and_where_everything_is():
    run = "daily-sales-d32c5kddcf5bb8c3"
    cause = ("Cell 8 (In [8]) raised ZeroDivisionError: division by zero; output notebook: "
             + NB_URI.format(run=run))
    sfn = FakeStepFunctions(name=run, status="FAILED", payload=PAYLOAD, error="CellExecutionError", cause=cause,
                            state=_state(run, outcome={"status": "FAILED", "error": "CellExecutionError",
                                                       "cause": cause, "result": _result(run, "FAILED")}))
    msg = _message(sfn, {NB_URI.format(run=run): nbformat.read(FIXTURE, as_version=4)})

    assert msg.subject == "Studio Runner: sales.ipynb FAILED on analytics (ZeroDivisionError in In [8])"
    body = msg.body
    assert body.startswith(f"Run {run} failed (FAILED).\n")
    for line in ("Notebook:     reports/sales.ipynb", "Target:       analytics", "Schedule:     daily-sales",
                 "Status:       FAILED", "Duration:     19 s", "Cells run:    8/9", "Failing cell: In [8]",
                 "Error:        CellExecutionError", "  region = eu", "  limit = 5",
                 "ZeroDivisionError: division by zero",
                 f"  notebook: {NB_URI.format(run=run)}",
                 f"  page:     {NB_URI.format(run=run).replace('.ipynb', '.html')}",
                 f"  studio-runner download {run}"):
        assert line in body.splitlines(), (line, body)
    # the last lines of the traceback, without terminal colours
    tail = body[body.index("Traceback (last lines):"):body.index("Outputs:")]
    assert "----> 2 growth = int(df.sales.sum()) / last_quarter" in tail and "\x1b[" not in body
    # secrets masked, by the parameter's name
    assert "s3cr3t-value" not in body and "hunter2" not in body
    assert "  api_key = ****" in body and "  db_password = ****" in body
    assert f"#/v2/executions/details/{ARN}{run}" in body
    assert msg.attributes == {"status": "FAILED", "target": "analytics", "schedule": "daily-sales",
                              "notebook": "reports/sales.ipynb", "run_id": run}


@pytest.mark.parametrize("extra, said", [
    ({"next_attempt": "sales-x-attempt2"}, ["Retried: the next attempt runs as sales-x-attempt2",
                                            "  studio-runner watch sales-x-attempt2"]),
    ({"held_until": "2026-12-04 08:00:00 UTC"}, [
        "Its kernel is held until 2026-12-04 08:00:00 UTC (or until resumed): fix the cell, then",
        "  studio-runner resume sales-x --notebook FIXED.ipynb"]),
])
def test_a_retried_or_held_run_says_what_comes_next(extra, said):
    """Issue 19.4: the message of a failed run that is retried or held says so, and what to type."""
    run = "sales-x"
    sfn = FakeStepFunctions(name=run, status="FAILED", payload=PAYLOAD, error="KernelDied", cause="the kernel died",
                            state=_state(run, outcome={"status": "FAILED", "error": "KernelDied",
                                                       "cause": "the kernel died",
                                                       "result": _result(run, "FAILED", **extra)}))
    lines = _message(sfn).body.splitlines()
    for line in said:
        assert line in lines, (line, lines)


def test_a_timed_out_run_says_so_and_how_far_it_got():
    run = "sales-20261204-060000-aaaa"
    payload = {k: v for k, v in PAYLOAD.items() if k != "schedule"}
    # The execution's own deadline: no Cleanup result; ExecutionEnded cleans up in parallel.
    sfn = FakeStepFunctions(name=run, status="TIMED_OUT", payload=payload, state=_state(run), seconds=86400,
                            error="States.Timeout", cause="The execution's TimeoutSeconds passed")
    nb = nbformat.read(FIXTURE, as_version=4)
    for cell in nb.cells:  # as the last save left it: no failed cell, 5 of 9 run
        cell.metadata.get("papermill", {})["status"] = "completed"
    nb.metadata.studio_runner.update(cells_executed=5, error=None, status="running")
    msg = _message(sfn, {NB_URI.format(run=run): nb})

    assert msg.subject == "Studio Runner: sales.ipynb TIMED_OUT on analytics (States.Timeout)"
    assert f"Run {run} timed out (TIMED_OUT)." in msg.body
    assert "Duration:  24 h 00 min" in msg.body and "Cells run: 5/9" in msg.body
    assert "Cause: The execution's TimeoutSeconds passed" in msg.body
    assert "Schedule" not in msg.body and "schedule" not in msg.attributes
    assert f"studio-runner download {run}" in msg.body


def test_an_aborted_run_before_its_notebook_was_written_still_gets_one_message():
    run = "sales-20261204-060000-bbbb"
    sfn = FakeStepFunctions(name=run, status="ABORTED", payload={"notebook": "reports/sales.ipynb"}, state=None,
                            seconds=3, error="Stopped", cause="stopped by alice")
    msg = _message(sfn)
    assert msg.subject == "Studio Runner: sales.ipynb ABORTED (Stopped)"
    assert f"Run {run} was aborted (ABORTED)." in msg.body
    assert "Target:   (the default target)" in msg.body and "Duration: 3 s" in msg.body
    assert "  notebook: (none written)" in msg.body and "Cause: stopped by alice" in msg.body
    assert msg.attributes == {"status": "ABORTED", "notebook": "reports/sales.ipynb", "run_id": run}
    # a deployment names its default target: the message and the attributes say which it was
    named = _message(sfn, default_target="analytics-space")
    assert "Target:   analytics-space" in named.body and named.attributes["target"] == "analytics-space"


def test_a_succeeded_run_has_no_error_and_names_its_outputs():
    run = "daily-sales-e1"
    sfn = FakeStepFunctions(name=run, status="SUCCEEDED", payload=PAYLOAD, output=_result(run, "SUCCEEDED",
                                                                                           cells_executed=9))
    msg = _message(sfn)
    assert msg.subject == "Studio Runner: sales.ipynb SUCCEEDED on analytics"
    assert f"Run {run} succeeded (SUCCEEDED)." in msg.body and "Cells run:" in msg.body and "9/9" in msg.body
    assert "Error" not in msg.body and "Cause" not in msg.body and "Traceback" not in msg.body
    assert "page:" in msg.body and msg.attributes["status"] == "SUCCEEDED"


def test_the_subject_is_what_sns_accepts_however_long_or_foreign_the_names():
    record = msgs.RunRecord(run_id="r", status="FAILED", notebook="rapports/ventes-été-" + "x" * 150 + ".ipynb",
                            target="équipe", ename="KeyError")
    subject = msgs.subject(record)
    assert len(subject) <= 100 and subject.isascii() and "\n" not in subject


@pytest.mark.parametrize("name", ["api_key", "API_KEY", "token", "github_token", "password", "db_passwd",
                                  "aws_secret_access_key", "private_key", "client_secret", "auth_header",
                                  "credentials", "key"])
def test_secret_looking_parameter_names_are_masked(name):
    assert msgs.masked({name: "v", "region": "eu", "monkey": 1}) == {name: "****", "region": "eu", "monkey": 1}


@mock_aws
def test_attributes_let_a_team_get_only_its_schedules_failures_with_an_sns_filter_policy():
    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="studio-runner-runs")["TopicArn"]
    queues = {}
    for team, policy in (("sales-team", {"schedule": ["daily-sales"], "status": ["FAILED", "TIMED_OUT", "ABORTED"]}),
                         ("everyone", None)):
        url = sqs.create_queue(QueueName=team)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes = {"RawMessageDelivery": "true"}
        if policy:
            attributes["FilterPolicy"] = json.dumps(policy)
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes=attributes)
        queues[team] = url
    for name, status, schedule in (("a", "FAILED", "daily-sales"), ("b", "SUCCEEDED", "daily-sales"),
                                   ("c", "FAILED", "hourly-ops"), ("d", "ABORTED", None)):
        record = msgs.RunRecord(run_id=name, status=status, notebook="n.ipynb", target="t", schedule=schedule)
        notify.publish(sns, topic, msgs.message(record))

    def received(team: str) -> list[str]:
        got = sqs.receive_message(QueueUrl=queues[team], MaxNumberOfMessages=10)
        return sorted(m["Body"].split()[1] for m in got.get("Messages", []))

    assert received("sales-team") == ["a"]
    assert received("everyone") == ["a", "b", "c", "d"]


# -- the webhook ------------------------------------------------------------------------------

class _Hook(BaseHTTPRequestHandler):
    answer = 200
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 — http.server's name
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(self.answer)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook_server():
    servers = []

    def start(answer: int) -> tuple[str, list[dict[str, Any]]]:
        handler = type("Hook", (_Hook,), {"answer": answer, "received": []})
        server = HTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/services/T000/B000/XXXX", handler.received

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def silent_server():
    """Accepts the connection and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    listener.close()


def _failed_message() -> msgs.Message:
    return msgs.message(msgs.RunRecord(run_id="r-1", status="FAILED", notebook="reports/sales.ipynb", target="t",
                                       ename="ZeroDivisionError", evalue="division by zero", failing_cell="In [8]"))


def test_the_webhook_gets_slack_compatible_json(hook_server):
    url, received = hook_server(200)
    msg = _failed_message()
    assert webhook.post(url, webhook.slack_payload(msg.subject, msg.body, msg.attributes)) == 200
    [payload] = received
    assert payload["text"].startswith(":x: Studio Runner: sales.ipynb FAILED on t (ZeroDivisionError in In [8])")
    assert "studio-runner download r-1" in payload["text"]
    assert payload["blocks"][0]["text"]["type"] == "mrkdwn"


def test_a_webhook_answering_500_fails_the_delivery_without_naming_its_url(hook_server):
    url, received = hook_server(500)
    with pytest.raises(webhook.WebhookFailed, match="answered HTTP 500") as info:
        webhook.post(url, {"text": "x"})
    assert "XXXX" not in str(info.value) and "127.0.0.1" not in str(info.value) and len(received) == 1


def test_a_webhook_that_never_answers_fails_after_the_deadline(silent_server):
    with pytest.raises(webhook.WebhookFailed, match="did not answer within 0.5 s"):
        webhook.post(silent_server, {"text": "x"}, timeout=0.5)


@mock_aws
def test_the_webhook_handler_reads_the_url_from_secrets_manager_and_fails_so_lambda_retries(
        hook_server, monkeypatch, lambda_context):
    from studiorunner.steps import _runtime
    from studiorunner.steps import webhook as handler_module

    url, received = hook_server(500)
    secret = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="studio-runner/webhook", SecretString=json.dumps({"url": url}))["ARN"]
    monkeypatch.setenv(handler_module.SECRET_ENV, secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setattr(handler_module, "_url", None)
    _runtime.reset_services()
    msg = _failed_message()
    event = {"Records": [{"EventSource": "aws:sns", "Sns": {
        "Subject": msg.subject, "Message": msg.body,
        "MessageAttributes": {k: {"Type": "String", "Value": v} for k, v in msg.attributes.items()}}}]}
    with pytest.raises(webhook.WebhookFailed):
        handler_module.handler(event, lambda_context)
    assert len(received) == 1 and received[0]["text"].startswith(":x: Studio Runner")

    ok_url, ok_received = hook_server(200)
    monkeypatch.setattr(handler_module, "_url", ok_url)
    assert handler_module.handler(event, lambda_context) == {"posted": 1}
    assert len(ok_received) == 1
