"""The run message written from a real run's record: a notebook run through the local state
machine (moto's Step Functions, the stand-in's kernel) fails, then Notify reads that
execution's description, its history and its executed notebook, and publishes to an SNS
topic (moto) whose SQS subscriber receives the message and its attributes."""

from __future__ import annotations

import json

import boto3

from localstudio.local_stack import REGION
from studiorunner.report import notify
from studiorunner.steps import notify as notify_step
from tests.e2e.e2e_support import write_notebook


def test_a_failed_runs_message_comes_from_its_record(local_env, monkeypatch, lambda_context):
    env = local_env("studio-space")
    path = write_notebook(env.root, "quarterly.ipynb", "print('start')", "def f():\n    return 1 / 0\nf()",
                          "print('never')")
    execution = env.run({"notebook": path, "parameters": {"region": "eu", "api_token": "tok-123"},
                         "output_formats": ["notebook", "html"]})
    assert execution.error == "CellExecutionError"

    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="studio-runner-runs")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    monkeypatch.setenv(notify.TOPIC_ENV, topic)
    event = {"version": "0", "id": "e-1", "detail-type": "Step Functions Execution Status Change",
             "source": "aws.states", "account": "123456789012", "time": "2026-12-05T00:00:00Z", "region": REGION,
             "resources": [execution.arn], "detail": {"executionArn": execution.arn, "status": "FAILED"}}
    sent = notify_step.handler(event, lambda_context)
    assert sent["sent"] is True

    [received] = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    envelope = json.loads(received["Body"])
    run_id = execution.arn.rsplit(":", 1)[-1]
    executed = env.output(execution)
    record = executed.metadata.studio_runner
    [failing] = [c for c in executed.cells if c.metadata.get("papermill", {}).get("status") == "failed"]
    cell = f"In [{failing.execution_count}]"
    assert envelope["Subject"] == "Studio Runner: quarterly.ipynb FAILED on " \
        f"{envelope['MessageAttributes']['target']['Value']} (ZeroDivisionError in {cell})"
    body = envelope["Message"]
    assert f"Run {run_id} failed (FAILED)." in body
    # the notebook's counts (the execution's result says 0: RunCells failed before handing on its cursor)
    assert record["cells_executed"] > 0
    assert f"Cells run:    {record['cells_executed']}/{record['cells_total']}" in body
    assert f"Failing cell: {cell}" in body and "Error:        CellExecutionError" in body
    assert "ZeroDivisionError: division by zero" in body
    tail = body[body.index("Traceback (last lines):"):body.index("Outputs:")]
    assert "return 1 / 0" in tail and "\x1b[" not in tail  # the traceback's last lines, no colours
    assert "  region = eu" in body and "  api_token = ****" in body and "tok-123" not in body
    notebook_uri = record["output_uri"]
    assert f"  notebook: {notebook_uri}" in body and f"  page:     {notebook_uri[:-6]}.html" in body
    assert f"  studio-runner download {run_id}" in body
    assert {k: v["Value"] for k, v in envelope["MessageAttributes"].items()} == {
        "status": "FAILED", "target": envelope["MessageAttributes"]["target"]["Value"],
        "notebook": path, "run_id": run_id}
