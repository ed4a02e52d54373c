"""The per-target semaphore (run/slots.py) against moto's DynamoDB and Step Functions."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from studiorunner.config import RunnerConfig
from studiorunner.errors import TargetBusy
from studiorunner.payload import validate_payload
from studiorunner.run.services import Services
from studiorunner.run.slots import SlotTable, acquire_slot, release_slot
from studiorunner.run.state import RunRecord, RunState

REGION = "us-east-1"
TABLE = "slots"
SPACE = {"type": "studio-space", "domain_id": "d-abc", "user_profile": "alice", "space_name": "s"}


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "target", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "target", "AttributeType": "S"}])
        sfn = boto3.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="m", roleArn="arn:aws:iam::123456789012:role/r",
            definition=json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": True}}}),
        )["stateMachineArn"]
        yield sfn, machine


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def services(clock: Clock, **targets) -> Services:
    config = RunnerConfig.from_env({"STUDIO_RUNNER_TARGETS": json.dumps(targets or {"space": SPACE}),
                                    "STUDIO_RUNNER_BUCKET": "b", "STUDIO_RUNNER_SLOTS_TABLE": TABLE})
    return Services(config=config, clock=clock)


def run_for(target: str = "space", **payload) -> dict:
    """A state as AcquireSlot first sees it (Prepare's run record)."""
    spec = validate_payload({"notebook": "n.ipynb", "target": target, **payload})
    run = RunRecord(run_id="r", target=target, target_type="studio-space", spec=spec, started_at=1000.0,
                    deadline=1000.0 + spec.timeouts.run_seconds if spec.timeouts.run_seconds else None)
    return {"run": run.to_dict()}


def acquire(state: dict, svc: Services, arn: str) -> dict:
    """AcquireSlot as the state machine calls it: the result lands in $.slot."""
    return {**state, "slot": acquire_slot(state, svc, execution_arn=arn).to_dict()}


def running_execution(sfn, machine) -> str:
    return sfn.start_execution(stateMachineArn=machine)["executionArn"]


def test_a_space_defaults_to_one_slot_and_the_second_run_waits(aws):
    sfn, machine = aws
    clock = Clock()
    first, second = running_execution(sfn, machine), running_execution(sfn, machine)
    held = acquire(run_for(), services(clock), first)
    waiting = acquire(run_for(), services(clock), second)

    assert held["slot"]["status"] == "acquired" and held["slot"]["limit"] == 1
    assert waiting["slot"]["status"] == "waiting"
    assert waiting["slot"]["message"].startswith("waiting for a slot on space (1 of 1 in use")
    assert waiting["slot"]["holders"] == [first.rsplit(":", 1)[-1]]
    assert waiting["slot"]["wait_seconds"] > 0


def test_acquiring_again_is_idempotent_and_release_twice_is_harmless(aws):
    sfn, machine = aws
    arn = running_execution(sfn, machine)
    table = SlotTable(TABLE)
    assert table.try_acquire("space", arn, 1, 1.0)
    assert table.try_acquire("space", arn, 1, 2.0), "a retried AcquireSlot must see the slot it already holds"
    assert table.holders("space") == {arn: 1.0}
    assert table.release("space", arn) is True
    assert table.release("space", arn) is False  # Cleanup, then ExecutionEnded
    item = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"target": {"S": "space"}})["Item"]
    assert item["running"] == {"N": "0"}


def test_limit_of_two_admits_two(aws):
    sfn, machine = aws
    clock = Clock()
    svc = services(clock, space={**SPACE, "max_concurrent_runs": 2})
    states = [acquire(run_for(), svc, running_execution(sfn, machine))["slot"]["status"]
              for _ in range(3)]
    assert states == ["acquired", "acquired", "waiting"]


def test_a_holder_no_longer_running_is_reclaimed(aws):
    sfn, machine = aws
    clock = Clock()
    dead = running_execution(sfn, machine)
    acquire(run_for(), services(clock), dead)
    sfn.stop_execution(executionArn=dead)
    nxt = acquire(run_for(), services(clock), running_execution(sfn, machine))
    assert nxt["slot"]["status"] == "acquired"
    assert dead not in SlotTable(TABLE).holders("space")


def test_queue_seconds_then_target_busy_and_waiting_time_is_not_run_time(aws):
    sfn, machine = aws
    clock = Clock()
    holder = running_execution(sfn, machine)
    acquire(run_for(), services(clock), holder)
    me = running_execution(sfn, machine)
    run = run_for(timeouts={"queue_seconds": 60, "run_seconds": 100})
    run = acquire(run, services(clock), me)
    clock.now += 30
    run = acquire(run, services(clock), me)
    assert run["slot"]["status"] == "waiting" and run["slot"]["waited_seconds"] == 30

    release_slot(run_for(), services(clock), execution_arn=holder)
    clock.now += 10
    run = acquire(run, services(clock), me)
    assert run["slot"]["status"] == "acquired"
    assert RunState.from_dict(run).deadline == 1000.0 + 100 + 40, "the run's own deadline starts when it gets its slot"

    other = running_execution(sfn, machine)
    late = acquire(run_for(timeouts={"queue_seconds": 60}), services(clock), other)
    clock.now += 61
    with pytest.raises(TargetBusy) as raised:
        acquire(late, services(clock), other)
    assert "Target 'space' had no free slot for 61 s" in str(raised.value)
    assert me.rsplit(":", 1)[-1] in str(raised.value)


def test_unlimited_targets_touch_no_table(aws):
    clock = Clock()
    jupyter = {"type": "jupyter", "url": "http://127.0.0.1:8888"}
    svc = services(clock, lab=jupyter)
    run = acquire(run_for("lab"), svc, "arn:aws:states:us-east-1:1:execution:m:x")
    assert run["slot"]["status"] == "unlimited"
    assert svc.slots is None
    assert release_slot(run, svc) is None


def test_release_never_raises(aws, monkeypatch):
    clock = Clock()
    svc = services(clock)
    svc.slots = SlotTable("no-such-table")
    assert release_slot({**run_for(), "slot": {"owner": "arn:x"}}, svc) is None


def test_queue_seconds_must_be_positive():
    with pytest.raises(Exception, match="timeouts.queue_seconds"):
        validate_payload({"notebook": "n.ipynb", "timeouts": {"queue_seconds": 0}})


def test_max_concurrent_runs_defaults_and_checks():
    from studiorunner.config import TargetConfig, TargetConfigError

    assert TargetConfig.from_dict("s", SPACE).max_concurrent_runs == 1
    assert TargetConfig.from_dict("j", {"type": "jupyter", "url": "http://h"}).max_concurrent_runs is None
    assert TargetConfig.from_dict("s", {**SPACE, "max_concurrent_runs": None}).max_concurrent_runs is None
    assert TargetConfig.from_dict("s", {**SPACE, "max_concurrent_runs": 3}).to_dict()["max_concurrent_runs"] == 3
    for bad in (0, -1, "2", True, 1.5):
        with pytest.raises(TargetConfigError, match="max_concurrent_runs"):
            TargetConfig.from_dict("s", {**SPACE, "max_concurrent_runs": bad})


def test_holders_are_checked_on_the_first_attempt_and_then_every_few(aws):
    from studiorunner.run.slots import RECLAIM_EVERY

    sfn, machine = aws
    clock = Clock()
    holder = running_execution(sfn, machine)
    acquire(run_for(), services(clock), holder)
    me = running_execution(sfn, machine)
    state = acquire(run_for(), services(clock), me)
    assert state["slot"]["status"] == "waiting"
    sfn.stop_execution(executionArn=holder)  # a holder that ends without releasing (a lost event)
    for _ in range(RECLAIM_EVERY - 1):
        state = acquire(state, services(clock), me)
        assert state["slot"]["status"] == "waiting"
    state = acquire(state, services(clock), me)
    assert state["slot"]["status"] == "acquired" and state["slot"]["attempt"] == RECLAIM_EVERY


def test_runs_waiting_for_a_slot_count_as_users_of_the_app_until_they_take_one_or_go(aws):
    from studiorunner.run.slots import WAITER_FRESH_SECONDS, others_using

    sfn, machine = aws
    clock = Clock()
    svc = services(clock)
    a, b, c = (running_execution(sfn, machine) for _ in range(3))
    state_a = acquire(run_for(), svc, a)
    state_b = acquire(run_for(), svc, b)  # waits (one slot on a space)
    assert state_b["slot"]["status"] == "waiting"

    assert others_using("space", a, svc) == (0, 1)  # A's cleanup: B will use the app next

    release_slot(state_a, svc)
    state_b = acquire(state_b, svc, b)  # B takes the slot: a holder now, no longer a waiter
    assert state_b["slot"]["status"] == "acquired"
    assert others_using("space", a, svc) == (1, 0)
    assert others_using("space", b, svc) == (0, 0)  # B is the last run out

    state_c = acquire(run_for(), svc, c)  # C waits, then vanishes without a word (aborted)
    assert others_using("space", b, svc) == (0, 1)
    clock.now += WAITER_FRESH_SECONDS + 1
    assert others_using("space", b, svc) == (0, 0)

    release_slot(state_c, svc)  # a waiting run's cleanup forgets it at once
    assert SlotTable(TABLE).waiters("space")[0] == {}


def test_two_holders_cleaning_up_together_never_both_keep_the_app(aws):
    from studiorunner.run.slots import others_using

    sfn, machine = aws
    clock = Clock()
    svc = services(clock, space={**SPACE, "max_concurrent_runs": 2})
    a, b = running_execution(sfn, machine), running_execution(sfn, machine)
    state_a, state_b = acquire(run_for(), svc, a), acquire(run_for(), svc, b)
    assert state_a["slot"]["status"] == state_b["slot"]["status"] == "acquired"

    # Both count before either gives its slot back: the second to count sees the first leaving.
    first, second = others_using("space", a, svc), others_using("space", b, svc)
    assert first == (1, 0) and second == (0, 0)
    release_slot(state_a, svc)
    release_slot(state_b, svc)
    assert SlotTable(TABLE).waiters("space") == ({}, set())
