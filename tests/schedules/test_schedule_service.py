"""ScheduleService against moto's EventBridge Scheduler, Step Functions, S3 and SQS: what AWS
is asked for (the group, the role, the retries and dead-letter queue, the target's input),
and every refusal decided before anything is created or changed."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from studiorunner.naming import schedule_run_prefix
from studiorunner.payload import validate_payload
from studiorunner_cli.schedules import (
    ScheduleDefinition,
    ScheduleExists,
    ScheduleInvalid,
    ScheduleNotFound,
    ScheduleService,
    ScheduleSetup,
    StackManaged,
    is_run_of,
)

REGION = "eu-west-1"
GROUP, STACK_GROUP = "sr-schedules", "sr-stack-schedules"


@pytest.fixture
def aws(monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        scheduler = boto3.client("scheduler", region_name=REGION)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="sr-bucket", CreateBucketConfiguration={"LocationConstraint": REGION})
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(RoleName="sr-scheduler", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"Service": "scheduler.amazonaws.com"}}]}))["Role"]
        queue = boto3.client("sqs", region_name=REGION).create_queue(QueueName="sr-dlq")["QueueUrl"]
        dlq = boto3.client("sqs", region_name=REGION).get_queue_attributes(
            QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        machine = sfn.create_state_machine(
            name="sr-runs", roleArn=role["Arn"],
            definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
        for group in (GROUP, STACK_GROUP):
            scheduler.create_schedule_group(Name=group)
        setup = ScheduleSetup(group=GROUP, stack_group=STACK_GROUP, state_machine_arn=machine, role_arn=role["Arn"],
                              dead_letter_arn=dlq, bucket="sr-bucket", retry_attempts=3)
        yield ScheduleService(scheduler=scheduler, stepfunctions=sfn, s3=s3, setup=setup)


def _daily(**changes) -> ScheduleDefinition:
    base = ScheduleDefinition(name="daily", expression="cron(0 6 * * ? *)", timezone="Europe/Paris",
                              payload={"notebook": "reports/daily.ipynb", "parameters": {"region": "eu"}})
    return replace(base, **changes)


def _stack_schedule(service: ScheduleService, name: str = "nightly") -> None:
    """A cdk.json schedule as infra/triggers.py deploys it (in the stack's group)."""
    service.scheduler.create_schedule(
        Name=name, GroupName=STACK_GROUP, ScheduleExpression="cron(0 2 * * ? *)", FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": "arn:aws:scheduler:::aws-sdk:sfn:startExecution", "RoleArn": service.setup.role_arn,
                "Input": json.dumps({"StateMachineArn": service.setup.state_machine_arn,
                                     "Name": f"{name}-<aws.scheduler.execution-id>",
                                     "Input": json.dumps({"notebook": "n.ipynb",
                                                          "schedule": {"name": name, "overlap": "skip"}})})})


def test_create_writes_the_schedule_in_the_stacks_group_with_its_role_retries_and_dead_letter_queue(aws):
    info = aws.create(_daily(overlap="queue", flexible_window_minutes=15, description="the daily report"))

    raw = aws.scheduler.get_schedule(Name="daily", GroupName=GROUP)
    assert raw["ScheduleExpression"] == "cron(0 6 * * ? *)"
    assert raw["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert raw["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
    target = raw["Target"]
    assert target["Arn"] == "arn:aws:scheduler:::aws-sdk:sfn:startExecution"
    assert target["RoleArn"] == aws.setup.role_arn
    assert target["DeadLetterConfig"] == {"Arn": aws.setup.dead_letter_arn}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600}
    # What StartExecution receives: the state machine, the run's name, the run's payload.
    call = json.loads(target["Input"])
    assert call["StateMachineArn"] == aws.setup.state_machine_arn
    assert call["Name"] == schedule_run_prefix("daily") + "<aws.scheduler.execution-id>"
    payload = json.loads(call["Input"])
    assert payload == {"notebook": "reports/daily.ipynb", "parameters": {"region": "eu"},
                       "schedule": {"name": "daily", "overlap": "queue"}}
    validate_payload(payload)  # what the run's Prepare step will accept

    assert info.managed_by == "cli" and info.state == "enabled"
    assert [t.hour for t in info.next_fire_times] == [6, 6, 6]
    assert all(t.utcoffset() in (timedelta(hours=1), timedelta(hours=2)) for t in info.next_fire_times)
    assert info.definition.description == "the daily report"


def test_list_shows_the_stacks_schedules_as_managed_by_the_stack(aws):
    _stack_schedule(aws)
    aws.create(_daily())
    rows = {i.name: i for i in aws.list()}
    assert rows["nightly"].managed_by == "stack" and rows["daily"].managed_by == "cli"
    assert len(rows["nightly"].next_fire_times) == 3
    assert rows["nightly"].definition.payload == {"notebook": "n.ipynb"}


@pytest.mark.parametrize("verb", ["update", "pause", "resume", "delete"])
def test_a_stack_schedule_is_refused_by_every_change(aws, verb):
    _stack_schedule(aws)
    before = aws.scheduler.get_schedule(Name="nightly", GroupName=STACK_GROUP)
    with pytest.raises(StackManaged, match="belongs to the stack"):
        if verb == "update":
            aws.update(replace(aws.definition("nightly"), expression="rate(1 hour)"))
        else:
            getattr(aws, verb)("nightly")
    after = aws.scheduler.get_schedule(Name="nightly", GroupName=STACK_GROUP)
    assert after["ScheduleExpression"] == before["ScheduleExpression"] and after["State"] == "ENABLED"


def test_a_stack_schedule_can_be_run_now(aws):
    _stack_schedule(aws)
    run_id = aws.run_now("nightly")
    assert is_run_of(run_id, "nightly")
    desc = aws.sfn.describe_execution(executionArn=aws.setup.state_machine_arn.replace(
        ":stateMachine:", ":execution:") + ":" + run_id)
    assert json.loads(desc["input"])["schedule"]["name"] == "nightly"


@pytest.mark.parametrize("definition, message", [
    (_daily(expression="cron(0 6 * * * *)"), "question mark"),
    (_daily(expression="cron(0 6 * *)"), "six fields"),
    (_daily(expression="rate(5 minute)"), "5 minutes"),
    (_daily(expression="at(2020-01-01T06:00:00)"), "in the past"),
    (_daily(timezone="Europe/Pariss"), "IANA time zone"),
    (_daily(payload={"notebok": "x.ipynb"}), "PayloadInvalid: .*unknown key 'notebok'"),
    (_daily(payload={"notebook": "x.ipynb", "parameters": "x"}), "PayloadInvalid: .*'parameters' must be an object"),
    (_daily(start=datetime(2031, 1, 2, tzinfo=UTC), end=datetime(2031, 1, 1, tzinfo=UTC)), "not after the start"),
    (_daily(name="bad name"), "schedule name"),
    (_daily(flexible_window_minutes=0), "flexible window"),
    (_daily(description="x" * 513), "512"),
    (_daily(end=datetime(2020, 1, 1, tzinfo=UTC)), "in the past"),
    (_daily(payload={"notebook": "x.ipynb", "parameter_sets": [{"a": 1}, {"a": float("nan")}]}),
     "PayloadInvalid: parameter set 1: .*nan"),
    (_daily(payload={"notebook": "x.ipynb", "parameter_sets": "x"}), "a batch needs"),
    (_daily(payload={"notebook": "x.ipynb", "schedule": {"name": "other"}}), "schedule's own"),
])
def test_bad_input_is_refused_before_anything_is_created(aws, definition, message):
    with pytest.raises(ScheduleInvalid, match=message):
        aws.create(definition)
    assert aws.scheduler.list_schedules()["Schedules"] == []
    assert aws.s3.list_objects_v2(Bucket="sr-bucket").get("KeyCount", 0) == 0


def test_a_name_clash_is_refused_with_the_clis_and_the_stacks_schedules(aws, tmp_path):
    _stack_schedule(aws)
    aws.create(_daily())
    notebook = tmp_path / "n.ipynb"
    notebook.write_text("{}")
    for name in ("daily", "nightly"):
        with pytest.raises(ScheduleExists):
            aws.create(_daily(name=name, payload={}), upload=notebook)
    assert aws.s3.list_objects_v2(Bucket="sr-bucket").get("KeyCount", 0) == 0  # nothing uploaded either


def test_unknown_schedule(aws):
    for verb in ("get", "pause", "resume", "delete", "run_now", "definition"):
        with pytest.raises(ScheduleNotFound, match="no schedule named 'nope'"):
            getattr(aws, verb)("nope")


def test_pause_resume_update_delete(aws):
    aws.create(_daily())
    assert aws.pause("daily").state == "paused"
    assert aws.scheduler.get_schedule(Name="daily", GroupName=GROUP)["State"] == "DISABLED"
    assert aws.get("daily").next_fire_times == []
    assert aws.resume("daily").state == "enabled"

    updated = aws.update(replace(aws.definition("daily"), expression="rate(2 hours)", overlap="allow"))
    assert updated.definition.expression == "rate(2 hours)"
    assert updated.definition.payload == _daily().payload  # kept
    target_payload = json.loads(json.loads(
        aws.scheduler.get_schedule(Name="daily", GroupName=GROUP)["Target"]["Input"])["Input"])
    assert target_payload["schedule"] == {"name": "daily", "overlap": "allow"}

    aws.delete("daily")
    assert aws.list() == []


def test_a_local_notebook_is_uploaded_once_and_runs_read_that_copy(aws, tmp_path):
    notebook = tmp_path / "report.ipynb"
    notebook.write_text('{"cells": []}')
    info = aws.create(_daily(payload={}), upload=notebook)
    assert info.definition.payload["notebook_s3"] == "s3://sr-bucket/uploads/schedules/daily/report.ipynb"
    assert "uploaded when the schedule was created" in info.notebook_source
    body = aws.s3.get_object(Bucket="sr-bucket", Key="uploads/schedules/daily/report.ipynb")["Body"].read()
    assert body == b'{"cells": []}'
    assert "read at each run" in aws.create(_daily(name="remote")).notebook_source


def test_run_now_and_the_schedules_runs(aws):
    aws.create(_daily())
    aws.create(_daily(name="daily-report"))
    first = aws.run_now("daily")
    other = aws.run_now("daily-report")
    assert first.startswith("daily-") and other.startswith("daily-report-")
    assert [r.run_id for r in aws.runs("daily")] == [first]  # not daily-report's
    assert aws.get("daily").last_run.run_id == first


def test_list_shows_a_skipped_fire_as_skipped(aws):
    aws.create(_daily())
    arn = aws.sfn.start_execution(stateMachineArn=aws.setup.state_machine_arn, name="daily-0123abcd", input="{}")
    # As the state machine's Skipped state ends it (moto's Pass machine cannot tell): patch the answer.
    real = aws.sfn.describe_execution

    def describe(**kwargs):
        answer = real(**kwargs)
        if kwargs["executionArn"] == arn["executionArn"]:
            answer = {**answer, "status": "SUCCEEDED", "output": json.dumps({"status": "SKIPPED"})}
        return answer

    listed = aws.sfn.list_executions

    def list_executions(**kwargs):
        page = listed(**kwargs)
        for item in page["executions"]:
            item["status"] = "SUCCEEDED"
        return page

    aws.sfn.describe_execution, aws.sfn.list_executions = describe, list_executions
    assert aws.list()[0].last_run.status == "SKIPPED"
    assert aws.runs("daily")[0].status == "SKIPPED"


def test_a_stack_that_cannot_be_read_is_a_service_failure_exit_1(monkeypatch, capsys):
    from studiorunner_cli.main import main

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        code = main(["schedule", "list", "--stack", "NoSuchStack", "--region", REGION])
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot read stack 'NoSuchStack'" in err and len(err.strip().splitlines()) == 1


def _deployed_stack(service: ScheduleService) -> None:
    """A stack named SR whose outputs are those infra/stack.py writes, pointing at the moto resources."""
    setup = service.setup
    outputs = {"StateMachineArn": setup.state_machine_arn, "BucketName": setup.bucket,
               "ScheduleGroupName": setup.group, "StackScheduleGroupName": setup.stack_group,
               "SchedulerRoleArn": setup.role_arn, "ScheduleDeadLetterQueueArn": setup.dead_letter_arn,
               "ScheduleRetryAttempts": "3", "MaxRunSeconds": "3600"}
    template = {"Resources": {"Anything": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {key: {"Value": value} for key, value in outputs.items()}}
    boto3.client("cloudformation", region_name=REGION).create_stack(StackName="SR", TemplateBody=json.dumps(template))


def test_the_cli_against_a_deployed_stack(aws, capsys, tmp_path):
    from studiorunner_cli.main import main

    _deployed_stack(aws)
    _stack_schedule(aws)
    where = ["--stack", "SR", "--region", REGION]
    notebook = tmp_path / "report.ipynb"
    notebook.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    assert main(["schedule", "create", "daily", str(notebook), "--cron", "0 6 * * ? *", "-p", "n", "3", *where]) == 0
    raw = aws.scheduler.get_schedule(Name="daily", GroupName=GROUP)
    payload = json.loads(json.loads(raw["Target"]["Input"])["Input"])
    assert payload == {"notebook_s3": "s3://sr-bucket/uploads/schedules/daily/report.ipynb", "parameters": {"n": 3},
                       "schedule": {"name": "daily", "overlap": "skip"}}
    capsys.readouterr()
    assert main(["schedule", "list", *where]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["nightly", "daily"]
    assert main(["schedule", "delete", "nightly", *where]) == 2
    assert "belongs to the stack" in capsys.readouterr().err
    # A run whose timeouts.run_seconds is over the stack's limit (MaxRunSeconds) is refused too.
    (tmp_path / "p.json").write_text(json.dumps({"notebook": "n.ipynb", "timeouts": {"run_seconds": 7200}}))
    assert main(["schedule", "create", "long", "--input", str(tmp_path / "p.json"), "--rate", "1 day", *where]) == 2
    assert "stops every run after 3600" in capsys.readouterr().err


def test_a_start_that_has_passed_is_not_sent_again_on_pause(aws):
    """Scheduler refuses a StartDate more than 5 minutes ago, on UpdateSchedule too."""
    soon = datetime.now(UTC) + timedelta(minutes=2)
    aws.create(_daily(start=soon))
    assert abs(aws.scheduler.get_schedule(Name="daily", GroupName=GROUP)["StartDate"] - soon) < timedelta(seconds=1)
    assert aws._request(_daily(start=soon))["StartDate"] == soon
    assert "StartDate" not in aws._request(_daily(start=datetime.now(UTC) - timedelta(hours=1)))


def test_update_with_a_new_local_notebook_uploads_it_and_keeps_the_rest(aws, tmp_path):
    aws.create(_daily(overlap="queue"))
    notebook = tmp_path / "v2.ipynb"
    notebook.write_text('{"cells": ["v2"]}')
    current = aws.definition("daily")
    updated = aws.update(replace(current, payload={k: v for k, v in current.payload.items() if k != "notebook"}),
                         upload=notebook)
    assert updated.definition.payload == {"notebook_s3": "s3://sr-bucket/uploads/schedules/daily/v2.ipynb",
                                          "parameters": {"region": "eu"}}
    assert updated.definition.overlap == "queue" and updated.definition.timezone == "Europe/Paris"
    body = aws.s3.get_object(Bucket="sr-bucket", Key="uploads/schedules/daily/v2.ipynb")["Body"].read()
    assert body == b'{"cells": ["v2"]}'


def test_an_invalid_update_changes_nothing(aws):
    aws.create(_daily())
    before = aws.scheduler.get_schedule(Name="daily", GroupName=GROUP)
    with pytest.raises(ScheduleInvalid):
        aws.update(replace(aws.definition("daily"), payload={"notebook": "x.ipynb", "parameters": "x"}))
    after = aws.scheduler.get_schedule(Name="daily", GroupName=GROUP)
    assert after["Target"] == before["Target"] and after["LastModificationDate"] == before["LastModificationDate"]


def test_a_batch_schedule_is_created_and_its_target_carries_the_batch(aws):
    aws.create(_daily(payload={"notebook": "n.ipynb", "parameter_sets": [{"region": "eu"}, {"region": "us"}]}))
    raw = aws.scheduler.get_schedule(Name="daily", GroupName=GROUP)
    payload = json.loads(json.loads(raw["Target"]["Input"])["Input"])
    assert payload["parameter_sets"] == [{"region": "eu"}, {"region": "us"}]
    assert payload["schedule"] == {"name": "daily", "overlap": "skip"}
