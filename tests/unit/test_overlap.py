"""CheckOverlap (issue 15.4): a schedule's fire while an earlier run of that schedule still runs.
Against moto's Step Functions (executions stay RUNNING until stopped)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from studiorunner.run.overlap import check_overlap


@pytest.fixture
def sfn(monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        client = boto3.client("stepfunctions", region_name="eu-west-1")
        arn = client.create_state_machine(
            name="runs", roleArn="arn:aws:iam::123456789012:role/x",
            definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
        yield client, arn


def _start(client, machine: str, name: str) -> tuple[str, datetime]:
    arn = client.start_execution(stateMachineArn=machine, name=name, input="{}")["executionArn"]
    return arn, client.describe_execution(executionArn=arn)["startDate"]


def _state(overlap: str = "skip", name: str = "daily") -> dict:
    return {"payload": {"notebook": "n.ipynb", "schedule": {"name": name, "overlap": overlap}}}


def test_skip_while_an_earlier_run_of_the_schedule_runs(sfn):
    client, machine = sfn
    _start(client, machine, "daily-aaaa")
    _start(client, machine, "daily-report-bbbb")  # another schedule's run: not this one's
    me, started = _start(client, machine, "daily-cccc")
    result = check_overlap(_state(), execution_arn=me, started=started, stepfunctions=client)
    assert result["decision"] == "skip"
    assert result["previous"] == ["daily-aaaa"]
    assert "daily-aaaa" in result["message"] and "still running" in result["message"]


def test_run_when_the_earlier_run_has_ended_or_there_is_none(sfn):
    client, machine = sfn
    earlier, _ = _start(client, machine, "daily-aaaa")
    me, started = _start(client, machine, "daily-cccc")
    client.stop_execution(executionArn=earlier)
    assert check_overlap(_state(), execution_arn=me, started=started, stepfunctions=client)["decision"] == "run"


def test_a_later_run_never_makes_an_earlier_one_give_way(sfn):
    client, machine = sfn
    me, started = _start(client, machine, "daily-aaaa")
    _start(client, machine, "daily-cccc")
    assert check_overlap(_state(), execution_arn=me, started=started - timedelta(seconds=1),
                         stepfunctions=client)["decision"] == "run"


def test_two_fires_in_the_same_instant_one_runs(sfn):
    client, machine = sfn
    first, _ = _start(client, machine, "daily-aaaa")
    second, _ = _start(client, machine, "daily-bbbb")
    when = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
    for item in client.list_executions(stateMachineArn=machine)["executions"]:
        assert item["status"] == "RUNNING"
    # Same start time: the smaller name goes first (patching the dates moto reports).
    listed = client.list_executions(stateMachineArn=machine, statusFilter="RUNNING")
    for item in listed["executions"]:
        item["startDate"] = when

    class Same:
        def list_executions(self, **kwargs):
            return listed

    assert check_overlap(_state(), execution_arn=first, started=when, stepfunctions=Same())["decision"] == "run"
    assert check_overlap(_state(), execution_arn=second, started=when, stepfunctions=Same())["decision"] == "skip"


def test_queue_waits_with_backoff_then_runs(sfn):
    client, machine = sfn
    earlier, _ = _start(client, machine, "daily-aaaa")
    me, started = _start(client, machine, "daily-cccc")
    state = _state("queue")
    first = check_overlap(state, execution_arn=me, started=started, stepfunctions=client)
    assert first["decision"] == "wait" and first["wait_seconds"] == 5 and first["waiting_since"]
    second = check_overlap({**state, "overlap": first}, execution_arn=me, started=started, stepfunctions=client)
    assert second["decision"] == "wait" and second["wait_seconds"] == 10
    assert second["waiting_since"] == first["waiting_since"]
    client.stop_execution(executionArn=earlier)
    third = check_overlap({**state, "overlap": second}, execution_arn=me, started=started, stepfunctions=client)
    assert third["decision"] == "run" and "ended" in third["message"]


@pytest.mark.parametrize("payload", [{"notebook": "n.ipynb"}, {"notebook": "n.ipynb", "schedule": "x"}])
def test_not_a_schedules_run_goes_on_to_prepare(sfn, payload):
    client, machine = sfn
    me, started = _start(client, machine, "daily-cccc")
    assert check_overlap({"payload": payload}, execution_arn=me, started=started,
                         stepfunctions=client)["decision"] == "run"


def test_queue_gives_way_past_timeouts_queue_seconds(sfn):
    client, machine = sfn
    _start(client, machine, "daily-aaaa")
    me, started = _start(client, machine, "daily-cccc")
    state = _state("queue")
    state["payload"]["timeouts"] = {"queue_seconds": 60}
    t0 = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
    first = check_overlap(state, execution_arn=me, started=started, stepfunctions=client, now=t0)
    assert first["decision"] == "wait"
    within = check_overlap({**state, "overlap": first}, execution_arn=me, started=started, stepfunctions=client,
                           now=t0 + timedelta(seconds=59))
    assert within["decision"] == "wait"
    past = check_overlap({**state, "overlap": within}, execution_arn=me, started=started, stepfunctions=client,
                         now=t0 + timedelta(seconds=61))
    assert past["decision"] == "skip" and "queue_seconds=60" in past["message"]


def test_the_step_counts_a_skipped_fire_as_runs_skipped_for_its_target(sfn, capsys, lambda_context, monkeypatch):
    from studiorunner.steps import _runtime
    from studiorunner.steps import check_overlap as step

    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    client, machine = sfn
    _start(client, machine, "daily-aaaa")
    me, started = _start(client, machine, "daily-cccc")
    state = _state()
    state["payload"]["target"] = "lab"
    _runtime.reset_services()
    try:
        result = step.handler({"state": state, "execution": me, "started": started.isoformat()}, lambda_context)
    finally:
        _runtime.reset_services()
    assert result["decision"] == "skip"
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    skipped = [b for b in blobs if "RunsSkipped" in b]
    assert skipped and skipped[0]["RunsSkipped"] == [1.0] and skipped[0]["target"] == "lab"
