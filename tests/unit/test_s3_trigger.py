"""The S3 trigger against moto's S3 and Step Functions: what a user uploading to the inbox sees."""

from __future__ import annotations

import json
import re
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from studiorunner.errors import PayloadInvalid
from studiorunner.s3_trigger import (
    InboxObject,
    TriggerSettings,
    execution_name,
    start_run,
    target_from_key,
)

EVENT = json.loads((Path(__file__).parent.parent / "events" / "s3_object_created.json").read_text())
BUCKET = EVENT["detail"]["bucket"]["name"]
REGION = "eu-west-1"
DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = sfn.create_state_machine(name="runner", definition=DEFINITION,
                                       roleArn="arn:aws:iam::123456789012:role/runner")["stateMachineArn"]
        yield s3, sfn, TriggerSettings(state_machine_arn=arn, inbox_prefix="inbox/")


def _upload(s3, key: str, body: bytes = b"{}") -> InboxObject:
    etag = s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"].strip('"')
    return InboxObject(bucket=BUCKET, key=key, etag=etag, sequencer="00617F08299329D189")


def _inputs(sfn, settings: TriggerSettings) -> list[dict]:
    executions = sfn.list_executions(stateMachineArn=settings.state_machine_arn)["executions"]
    return [json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"]) for e in executions]


def test_notebook_upload_starts_a_run_on_the_target_named_by_the_path(aws):
    s3, sfn, settings = aws
    obj = _upload(s3, "inbox/analytics-space/reports/daily.ipynb")

    result = start_run(obj, settings=settings, s3=s3, stepfunctions=sfn)

    assert result.status == "started"
    assert _inputs(sfn, settings) == [
        {"target": "analytics-space", "notebook_s3": f"s3://{BUCKET}/inbox/analytics-space/reports/daily.ipynb"}]


def test_a_duplicated_event_does_not_start_a_second_run(aws):
    s3, sfn, settings = aws
    obj = _upload(s3, "inbox/analytics-space/daily.ipynb")

    first = start_run(obj, settings=settings, s3=s3, stepfunctions=sfn)
    second = start_run(obj, settings=settings, s3=s3, stepfunctions=sfn)

    assert first.status == "started"
    # While the first run is going, Step Functions answers the same name and input with the
    # same execution; once it has ended, with ExecutionAlreadyExists (next test).
    assert first.status == second.status == "started"
    assert second.execution_arn == first.execution_arn
    assert len(sfn.list_executions(stateMachineArn=settings.state_machine_arn)["executions"]) == 1


def test_a_duplicated_event_after_the_run_ended_is_not_an_error(aws):
    s3, sfn, settings = aws
    obj = _upload(s3, "inbox/analytics-space/daily.ipynb")
    first = start_run(obj, settings=settings, s3=s3, stepfunctions=sfn)
    sfn.stop_execution(executionArn=first.execution_arn)

    second = start_run(obj, settings=settings, s3=s3, stepfunctions=sfn)

    assert second.status == "duplicate" and second.execution_name == first.execution_name
    assert len(sfn.list_executions(stateMachineArn=settings.state_machine_arn)["executions"]) == 1


def test_uploading_the_same_file_again_is_a_new_run(aws):
    s3, sfn, settings = aws
    obj = _upload(s3, "inbox/analytics-space/daily.ipynb")
    again = InboxObject(bucket=obj.bucket, key=obj.key, etag=obj.etag, sequencer="00617F0829932A0000")

    start_run(obj, settings=settings, s3=s3, stepfunctions=sfn)
    start_run(again, settings=settings, s3=s3, stepfunctions=sfn)

    assert len(sfn.list_executions(stateMachineArn=settings.state_machine_arn)["executions"]) == 2


def test_a_json_upload_is_the_payload_and_its_target_wins_over_the_path(aws):
    s3, sfn, settings = aws
    payload = {"target": "legacy", "notebook": "reports/x.ipynb", "parameters": {"alpha": 0.5}}
    obj = _upload(s3, "inbox/analytics-space/run.json", json.dumps(payload).encode())

    assert start_run(obj, settings=settings, s3=s3, stepfunctions=sfn).status == "started"
    assert _inputs(sfn, settings) == [payload]


def test_a_json_upload_without_target_takes_the_path_target(aws):
    s3, sfn, settings = aws
    obj = _upload(s3, "inbox/nb/run.json", json.dumps({"notebook": "a.ipynb"}).encode())

    start_run(obj, settings=settings, s3=s3, stepfunctions=sfn)

    assert _inputs(sfn, settings) == [{"notebook": "a.ipynb", "target": "nb"}]


def test_a_notebook_directly_under_the_inbox_runs_on_the_default_target(aws):
    s3, sfn, settings = aws
    obj = _upload(s3, "inbox/daily.ipynb")

    start_run(obj, settings=settings, s3=s3, stepfunctions=sfn)

    assert _inputs(sfn, settings) == [{"notebook_s3": f"s3://{BUCKET}/inbox/daily.ipynb"}]


@pytest.mark.parametrize("body, message", [(b"not json", "not valid JSON"), (b"[1, 2]", "JSON object")])
def test_a_bad_json_payload_is_refused_with_the_object_named(aws, body, message):
    s3, sfn, settings = aws
    obj = _upload(s3, "inbox/nb/bad.json", body)

    with pytest.raises(PayloadInvalid, match=message) as raised:
        start_run(obj, settings=settings, s3=s3, stepfunctions=sfn)
    assert "inbox/nb/bad.json" in str(raised.value)
    assert sfn.list_executions(stateMachineArn=settings.state_machine_arn)["executions"] == []


@pytest.mark.parametrize("key", ["inbox/nb/notes.txt", "inbox/nb/", "elsewhere/x.ipynb"])
def test_other_objects_are_ignored(aws, key):
    s3, sfn, settings = aws
    result = start_run(InboxObject(bucket=BUCKET, key=key, etag="e"), settings=settings, s3=s3, stepfunctions=sfn)
    assert result.status == "ignored"
    assert sfn.list_executions(stateMachineArn=settings.state_machine_arn)["executions"] == []


def test_execution_names_are_valid_bounded_and_distinct():
    long_key = "inbox/t/" + "ü ñ weird name (copy) [1]" * 10 + ".ipynb"
    a = execution_name(InboxObject(bucket="b", key=long_key, etag="e1"))
    b = execution_name(InboxObject(bucket="b", key=long_key, etag="e2"))
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", a) and re.fullmatch(r"[A-Za-z0-9_-]{1,80}", b)
    assert a != b
    assert execution_name(InboxObject(bucket="b", key=long_key, etag="e1")) == a


def test_event_keys_are_url_decoded_and_the_target_comes_from_the_path():
    obj = InboxObject.from_event_detail(EVENT["detail"])
    assert obj.key == "inbox/analytics-space/reports/daily report.ipynb"
    assert target_from_key(obj.key, "inbox/") == "analytics-space"


def test_handler_starts_a_run_from_an_eventbridge_event(aws, monkeypatch, lambda_context, sample_event):
    s3, sfn, settings = aws
    s3.put_object(Bucket=BUCKET, Key="inbox/analytics-space/reports/daily report.ipynb", Body=b"{}")
    monkeypatch.setenv("STUDIO_RUNNER_STATE_MACHINE_ARN", settings.state_machine_arn)
    monkeypatch.setenv("STUDIO_RUNNER_INBOX_PREFIX", "inbox/")
    monkeypatch.setenv("STUDIO_RUNNER_BUCKET", BUCKET)
    from studiorunner.clients import ClientCache
    from studiorunner.steps import _runtime, s3_trigger

    monkeypatch.setattr(_runtime, "_clients", ClientCache({("s3", None): s3, ("stepfunctions", None): sfn}))
    result = s3_trigger.handler(sample_event("s3_object_created"), lambda_context)

    assert result["status"] == "started"
    assert _inputs(sfn, settings)[0]["notebook_s3"].endswith("reports/daily report.ipynb")


def test_execution_names_read_like_every_run_and_stay_idempotent():
    """<stem>-<event time UTC>-<digest>: a re-delivered event names the same execution."""
    obj = InboxObject.uploaded(bucket="b", key="inbox/t/Daily%20Report.ipynb", etag="e1", sequencer="0061",
                               event_time="2026-11-30T06:00:01Z")
    name = execution_name(obj)
    assert re.fullmatch(r"Daily-Report-20261130T060001Z-[0-9a-f]{8}", name), name
    assert execution_name(InboxObject.uploaded(bucket="b", key="inbox/t/Daily%20Report.ipynb", etag="e1",
                                               sequencer="0061", event_time="2026-11-30T06:00:01Z")) == name
    assert execution_name(InboxObject.uploaded(bucket="b", key="inbox/t/Daily%20Report.ipynb", etag="e2",
                                               sequencer="0062", event_time="2026-11-30T06:00:01Z")) != name
