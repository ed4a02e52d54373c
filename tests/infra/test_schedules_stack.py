"""Issue 15 in the template: the schedule groups, the one scheduler role every schedule uses,
the two managed policies (and their scoped PassRole), the outputs the CLI reads; and the
synth that refuses a cdk.json schedule whose payload a run would refuse."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest
from aws_cdk.assertions import Match

from infra.config import ConfigError, load_config
from studiorunner_cli.schedules.setup import OUTPUTS
from tests.infra.conftest import CONTEXT, ROOT


def _resources(synthesized, kind: str) -> dict:
    return synthesized.template.find_resources(kind)


def _logical_id(synthesized, kind: str, pattern: str) -> str:
    found = [name for name in _resources(synthesized, kind) if pattern in name]
    assert len(found) == 1, (pattern, found)
    return found[0]


def test_two_schedule_groups_one_for_people_one_for_cdk_json(synthesized):
    groups = {props["Properties"]["Name"] for props in _resources(synthesized, "AWS::Scheduler::ScheduleGroup").values()}
    assert groups == {"studio-runner-schedules", "studio-runner-stack-schedules"}


def test_one_scheduler_role_that_only_scheduler_of_this_account_assumes(synthesized):
    role = _logical_id(synthesized, "AWS::IAM::Role", "SchedulesRole")
    trust = _resources(synthesized, "AWS::IAM::Role")[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [{"Action": "sts:AssumeRole", "Effect": "Allow",
                      "Principal": {"Service": "scheduler.amazonaws.com"},
                      "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}}]
    statements = [s for policy in _resources(synthesized, "AWS::IAM::Policy").values()
                  if policy["Properties"]["Roles"] == [{"Ref": role}]
                  for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    allowed = {(a, _text(s["Resource"])) for s in statements
               for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    machine = _logical_id(synthesized, "AWS::StepFunctions::StateMachine", "StateMachine")
    queue = _logical_id(synthesized, "AWS::SQS::Queue", "SchedulesDeadLetters")
    assert ("states:StartExecution", _text({"Ref": machine})) in allowed
    assert ("sqs:SendMessage", _text({"Fn::GetAtt": [queue, "Arn"]})) in allowed
    assert all('"*"' not in resource for _, resource in allowed)  # nothing on '*'
    # Every cdk.json schedule uses it (so does every CLI one: studiorunner_cli/schedules/service.py).
    for schedule in _resources(synthesized, "AWS::Scheduler::Schedule").values():
        assert schedule["Properties"]["Target"]["RoleArn"] == {"Fn::GetAtt": [role, "Arn"]}


def _statements(synthesized, pattern: str) -> dict[str, dict]:
    policy = _resources(synthesized, "AWS::IAM::ManagedPolicy")[_logical_id(synthesized, "AWS::IAM::ManagedPolicy", pattern)]
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def _text(value) -> str:
    return json.dumps(value)


def test_the_run_policy_runs_reads_and_reads_schedules_but_changes_none(synthesized):
    statements = _statements(synthesized, "AccessRun")
    actions = {a for s in statements.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"states:StartExecution", "states:DescribeExecution", "states:StopExecution", "states:ListExecutions",
            "cloudformation:DescribeStacks", "s3:PutObject", "s3:GetObject", "scheduler:GetSchedule",
            "scheduler:ListSchedules"} <= actions
    assert not any(a.startswith("scheduler:") and a not in ("scheduler:GetSchedule", "scheduler:ListSchedules")
                   for a in actions)
    assert "iam:PassRole" not in actions
    assert "uploads/*" in _text(statements["Notebooks"]["Resource"])


def test_the_manage_policy_writes_only_the_clis_group_and_passes_only_the_scheduler_role(synthesized):
    statements = _statements(synthesized, "AccessManageSchedules")
    writes = statements["Schedules"]
    assert set(writes["Action"]) == {"scheduler:CreateSchedule", "scheduler:UpdateSchedule",
                                     "scheduler:DeleteSchedule", "scheduler:GetSchedule"}
    resource = _text(writes["Resource"])
    assert resource.endswith(':schedule/studio-runner-schedules/*"]]}')  # never the cdk.json group
    passing = statements["PassTheSchedulerRole"]
    assert passing["Action"] == "iam:PassRole"
    assert passing["Resource"] == {"Fn::GetAtt": [_logical_id(synthesized, "AWS::IAM::Role", "SchedulesRole"), "Arn"]}
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}


def test_the_outputs_the_cli_reads_to_manage_schedules(synthesized):
    outputs = synthesized.template_json["Outputs"]
    assert set(OUTPUTS) <= set(outputs)
    assert outputs["ScheduleRetryAttempts"]["Value"] == "3"
    for key in ("RunPolicyArn", "ManageSchedulesPolicyArn"):
        assert outputs[key]["Value"] == {"Ref": Match.string_like_regexp("Access")} or "Ref" in outputs[key]["Value"]


def _with_schedule_payload(payload) -> dict:
    context = copy.deepcopy(CONTEXT)
    context["schedules"][1]["payload"] = payload
    return context


@pytest.mark.parametrize("payload, problem", [
    ({"notebok": "hourly.ipynb"}, "unknown key 'notebok'"),
    ({"notebook": "hourly.ipynb", "parameters": "x"}, "'parameters' must be an object"),
])
def test_an_invalid_schedule_payload_names_the_schedule_and_the_key(payload, problem):
    with pytest.raises(ConfigError) as raised:
        load_config(_with_schedule_payload(payload))
    assert raised.value.key == "studio_runner.schedules[1].payload"
    assert "schedule 'hourly'" in str(raised.value) and problem in str(raised.value)


@pytest.mark.parametrize("field, value, problem", [
    ("expression", "cron(0 6 * * * *)", "question mark"),
    ("expression", "rate(1 hours)", "1 hour"),
    ("timezone", "Europe/Pariss", "IANA"),
    ("overlap", "sometimes", "skip, queue, allow"),
])
def test_a_bad_expression_time_zone_or_overlap_names_the_schedule(field, value, problem):
    context = copy.deepcopy(CONTEXT)
    context["schedules"][0][field] = value
    with pytest.raises(ConfigError) as raised:
        load_config(context)
    assert raised.value.key == f"studio_runner.schedules[0].{field}"
    assert "schedule 'daily-report'" in str(raised.value) and problem in str(raised.value)


def test_cdk_synth_fails_on_an_invalid_schedule_payload(tmp_path):
    """What `cdk synth` runs (cdk.json "app": app.py, context in CDK_CONTEXT_JSON) stops, naming the key."""
    context = {"studio_runner": _with_schedule_payload({"notebok": "hourly.ipynb"}), "studio_runner:bundle": "false"}
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path / "cdk.out"),
           "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    result = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "studio_runner.schedules[1].payload: schedule 'hourly'" in result.stderr
    assert "unknown key 'notebok'" in result.stderr
    assert not (tmp_path / "cdk.out" / "manifest.json").exists()


def test_a_batch_schedule_is_checked_run_by_run():
    good = _with_schedule_payload({"notebook": "hourly.ipynb", "parameter_sets": [{"a": 1}, {"a": 2}]})
    load_config(good)
    bad = _with_schedule_payload({"notebook": "hourly.ipynb", "parameter_sets": [{"a": 1}, {"a": float("nan")}]})
    with pytest.raises(ConfigError) as raised:
        load_config(bad)
    assert "schedule 'hourly': parameter set 1:" in str(raised.value) and "nan" in str(raised.value)


ACCOUNT = "123456789012"


def _resolved(value, synthesized):
    """A template value as a string: partitions, joins, and GetAtt <role>.Arn as the role's ARN."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [_resolved(v, synthesized) for v in value]
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_resolved(p, synthesized) for p in parts)
    if value.get("Ref") == "AWS::Partition":
        return "aws"
    if "Fn::GetAtt" in value:
        return f"arn:aws:iam::{ACCOUNT}:role/{value['Fn::GetAtt'][0]}"
    if "Ref" in value:
        return f"arn:aws:unresolved:::{value['Ref']}"
    raise AssertionError(value)


def _evaluator(synthesized, pattern: str):
    """moto's IAM policy evaluator (what its IAM enforcement runs) over the synthesized policy."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    policy = _resources(synthesized, "AWS::IAM::ManagedPolicy")[_logical_id(synthesized, "AWS::IAM::ManagedPolicy",
                                                                              pattern)]
    document = policy["Properties"]["PolicyDocument"]
    statements = [{**s, "Resource": _resolved(s["Resource"], synthesized)} for s in document["Statement"]]
    evaluator = IAMPolicy(json.dumps({"Version": "2012-10-17", "Statement": statements}))

    def allows(action: str, resource: str, **context: str) -> bool:
        found = evaluator.is_action_permitted(action, resource, incoming_condition_values=context or None)
        return found == PermissionResult.PERMITTED
    return allows


def test_pass_role_is_allowed_only_for_the_scheduler_role_and_only_to_scheduler(synthesized):
    manage = _evaluator(synthesized, "AccessManageSchedules")
    run = _evaluator(synthesized, "AccessRun")
    role = f"arn:aws:iam::{ACCOUNT}:role/{_logical_id(synthesized, 'AWS::IAM::Role', 'SchedulesRole')}"
    other_role = f"arn:aws:iam::{ACCOUNT}:role/Admin"
    cli = f"arn:aws:scheduler:eu-west-1:{ACCOUNT}:schedule/studio-runner-schedules/daily"
    stack = f"arn:aws:scheduler:eu-west-1:{ACCOUNT}:schedule/studio-runner-stack-schedules/daily-report"

    assert manage("iam:PassRole", role, **{"iam:PassedToService": "scheduler.amazonaws.com"})
    assert not manage("iam:PassRole", role, **{"iam:PassedToService": "lambda.amazonaws.com"})
    assert not manage("iam:PassRole", other_role, **{"iam:PassedToService": "scheduler.amazonaws.com"})
    for action in ("scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule"):
        assert manage(action, cli)
        assert not manage(action, stack)  # the cdk.json schedules stay the stack's
        assert not run(action, cli)
    assert not run("iam:PassRole", role, **{"iam:PassedToService": "scheduler.amazonaws.com"})
    assert run("scheduler:GetSchedule", stack) and run("scheduler:GetSchedule", cli)
