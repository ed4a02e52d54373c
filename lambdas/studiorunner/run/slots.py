"""A limit of concurrent runs per target: the semaphore pattern AWS documents for Step Functions.

(aws-samples/aws-stepfunctions-examples, "Controlling concurrency in distributed systems".)
One DynamoDB item per target counts the runs that hold a slot (``running``) and has one
attribute per holder, named by its execution ARN, whose value is when it took the slot.
Taking and giving back a slot are single conditional ``UpdateItem`` calls, so two runs can
never both take the last slot:

- acquire: ``running < limit AND attribute_not_exists(<me>)`` → ``running + 1``, add me;
- release: ``attribute_exists(<me>)`` → ``running - 1``, remove me (so a second release,
  by Cleanup and then ExecutionEnded, changes nothing).

A run that finds its target full does not fail: the state machine waits (``WaitForSlot``)
and asks again, until ``timeouts.queue_seconds`` passes (``TargetBusy``). Before saying
"full", the holders are checked with ``DescribeExecution``: a holder that is no longer
RUNNING (a crash between acquiring and recording it, a lost ExecutionEnded event) has its
slot reclaimed. Like AWS's sample, this is a semaphore, not a queue: waiting runs are not
served in arrival order.

Nothing here knows about Lambda: the step handler (``studiorunner/steps/acquire_slot``) passes in the
execution ARN, and tests use moto's DynamoDB and Step Functions.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from studiorunner.config import TargetConfig
from studiorunner.errors import TargetBusy
from studiorunner.run.services import Services
from studiorunner.run.state import RunRecord

log = logging.getLogger(__name__)

KEY = "target"  # the table's partition key: the target's name
RUNNING = "running"  # how many runs hold a slot
_NOT_HOLDERS = {KEY, RUNNING}
#: The state machine's Wait between two attempts: short at first, then every WAIT_CAP seconds.
#: A low cap keeps a long-waiting run from losing every race to newcomers (no FIFO here).
WAIT_FIRST, WAIT_CAP = 2, 10
#: Holders are checked with DescribeExecution on the first attempt and then every this many
#: (about a minute at the cap): a crashed holder is rare, a waiting run asks often, and
#: DescribeExecution is throttled per account.
RECLAIM_EVERY = 5
WAITING_MESSAGE = "waiting for a slot"


@dataclass
class SlotState:
    """What AcquireSlot records in ``run.slot`` (small, no secrets); ``status`` is
    ``acquired``, ``waiting`` or ``unlimited`` (no limit for this target)."""

    status: str
    owner: str = ""  # the execution ARN that holds / asks for the slot
    limit: int | None = None
    in_use: int = 0  # slots taken when we last looked
    holders: list[str] = field(default_factory=list)  # execution names, for `status`
    attempt: int = 0
    wait_seconds: int = 0
    waiting_since: float | None = None
    waited_seconds: float = 0.0
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> SlotState | None:
        if not raw:
            return None
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


class SlotTable:
    """The semaphore's DynamoDB table (and Step Functions, to check on holders)."""

    def __init__(self, table_name: str, *, dynamodb=None, stepfunctions=None) -> None:
        import boto3  # here, not at import: most steps never touch the table

        self.table_name = table_name
        self.dynamodb = dynamodb or boto3.client("dynamodb")
        self.stepfunctions = stepfunctions or boto3.client("stepfunctions")

    def try_acquire(self, target: str, owner: str, limit: int, now: float) -> bool:
        """Take a slot on ``target`` for ``owner``; True if it holds one now (also when it already did)."""
        try:
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key={KEY: {"S": target}},
                UpdateExpression="SET #running = if_not_exists(#running, :zero) + :one, #owner = :now",
                ConditionExpression="(attribute_not_exists(#running) OR #running < :limit) "
                                    "AND attribute_not_exists(#owner)",
                ExpressionAttributeNames={"#running": RUNNING, "#owner": owner},
                ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"},
                                           ":limit": {"N": str(limit)}, ":now": {"N": repr(float(now))}},
            )
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        # Full, or we hold it already (this invocation is a retry of one that took it).
        return owner in self.holders(target)

    def release(self, target: str, owner: str) -> bool:
        """Give back ``owner``'s slot; False if it held none (released already, or never took one)."""
        try:
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key={KEY: {"S": target}},
                UpdateExpression="SET #running = #running - :one REMOVE #owner",
                ConditionExpression="attribute_exists(#owner)",
                ExpressionAttributeNames={"#running": RUNNING, "#owner": owner},
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def holders(self, target: str) -> dict[str, float]:
        """Execution ARN → when it took its slot (a consistent read)."""
        item = self.dynamodb.get_item(TableName=self.table_name, Key={KEY: {"S": target}},
                                      ConsistentRead=True).get("Item") or {}
        return {name: float(value["N"]) for name, value in item.items() if name not in _NOT_HOLDERS}

    def reclaim(self, target: str) -> list[str]:
        """Release the slots whose holding execution is no longer running; return those holders."""
        reclaimed = []
        for owner in self.holders(target):
            status = self._execution_status(owner)
            if status != "RUNNING" and self.release(target, owner):
                log.warning("reclaimed the slot on %s held by %s (execution %s)", target, owner, status)
                reclaimed.append(owner)
        return reclaimed

    def _execution_status(self, arn: str) -> str:
        try:
            return self.stepfunctions.describe_execution(executionArn=arn)["status"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("ExecutionDoesNotExist", "InvalidArn"):
                return "GONE"
            raise


def _execution_name(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


def acquire_slot(state: dict[str, Any], services: Services, *, execution_arn: str) -> dict[str, Any]:
    """AcquireSlot: take a slot on the run's target, or say how long to wait; the new ``slot``.

    Once the slot is taken, ``waited_seconds`` is how long the run queued: its deadline is
    counted from then (``RunState.deadline``), since ``timeouts.queue_seconds`` bounds the queue.
    """
    run = RunRecord.from_dict(state["run"])
    target: TargetConfig = services.config.target(run.target)
    limit = target.max_concurrent_runs
    table = services.slot_table() if limit else None
    if table is None:
        return SlotState(status="unlimited", owner=execution_arn).to_dict()
    now = services.clock()
    previous = SlotState.from_dict(state.get("slot"))
    waiting_since = previous.waiting_since if previous and previous.waiting_since else now
    attempt = previous.attempt + 1 if previous else 0

    acquired = table.try_acquire(target.name, execution_arn, limit, now)
    if not acquired and attempt % RECLAIM_EVERY == 0 and table.reclaim(target.name):
        acquired = table.try_acquire(target.name, execution_arn, limit, now)
    holders = table.holders(target.name)
    slot = SlotState(status="acquired" if acquired else "waiting", owner=execution_arn, limit=limit,
                     in_use=len(holders), holders=sorted(_execution_name(h) for h in holders),
                     attempt=attempt, waiting_since=waiting_since, waited_seconds=round(now - waiting_since, 3))
    if acquired:
        slot.message = f"holds a slot on {target.name} ({len(holders)} of {limit} in use)"
        return slot.to_dict()

    queue_seconds = run.spec.timeouts.queue_seconds
    if queue_seconds and now - waiting_since > queue_seconds:
        raise TargetBusy(
            f"Target {target.name!r} had no free slot for {now - waiting_since:.0f} s "
            f"(timeouts.queue_seconds={queue_seconds:g}; max_concurrent_runs={limit}; "
            f"held by {', '.join(slot.holders) or 'nobody'})",
            target=target.name, limit=limit, holders=slot.holders)
    slot.wait_seconds = int(min(WAIT_CAP, WAIT_FIRST * 2 ** min(attempt, 8)))
    slot.message = (f"{WAITING_MESSAGE} on {target.name} ({len(holders)} of {limit} in use, "
                    f"waiting {slot.waited_seconds:.0f} s)")
    return slot.to_dict()


def release_slot(state: dict[str, Any], services: Services, *, execution_arn: str | None = None) -> str | None:
    """Give back the run's slot, if it may hold one; a line for the cleanup report, or None.

    ``execution_arn`` defaults to the owner AcquireSlot recorded. Never raises: a slot that
    could not be given back is reclaimed by the next run that finds the target full (its
    holder is no longer running).
    """
    run = state.get("run") or {}
    owner = execution_arn or (state.get("slot") or {}).get("owner")
    if not run.get("target") or not owner:
        return None
    try:
        target = services.config.target(run["target"])
        table = services.slot_table() if target.max_concurrent_runs else None
        if table is not None and table.release(target.name, owner):
            return f"released the run's slot on target {target.name}"
    except Exception as exc:  # noqa: BLE001 - the slot is reclaimed later; cleanup must go on
        log.warning("could not release the slot on %s: %s: %s", run.get("target"), type(exc).__name__, exc)
    return None
