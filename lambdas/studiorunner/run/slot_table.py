"""The concurrency slots' DynamoDB table (the semaphore of ``run/slots.py``): take, give back,
list and reclaim a target's slots. Knows nothing of the run or its state."""

from __future__ import annotations

import logging
from typing import Any

import boto3
from botocore.exceptions import ClientError

log = logging.getLogger(__name__)

KEY = "target"  # the table's partition key: the target's name
RUNNING = "running"  # how many runs hold a slot
_NOT_HOLDERS = {KEY, RUNNING}
WAITERS_SUFFIX = "#waiting"  # the waiters' item: f"{target}{WAITERS_SUFFIX}"
#: In the waiters' item, a holder in its cleanup (see ``slots.others_using``).
LEAVING_PREFIX = "leaving:"


class SlotTable:
    """The semaphore's DynamoDB table (and Step Functions, to check on holders)."""

    def __init__(self, table_name: str, *, dynamodb: Any = None, stepfunctions: Any = None) -> None:
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

    def note_waiting(self, target: str, owner: str, now: float) -> None:
        """Record that ``owner`` waits for a slot on ``target`` (as of ``now``)."""
        self._set_in_waiters(target, owner, now)

    def note_leaving(self, target: str, owner: str, now: float) -> None:
        """Record that ``owner``, a holder, is in its cleanup (it counts as gone for the others)."""
        self._set_in_waiters(target, LEAVING_PREFIX + owner, now)

    def _set_in_waiters(self, target: str, name: str, now: float) -> None:
        self.dynamodb.update_item(
            TableName=self.table_name, Key={KEY: {"S": target + WAITERS_SUFFIX}},
            UpdateExpression="SET #name = :now", ExpressionAttributeNames={"#name": name},
            ExpressionAttributeValues={":now": {"N": repr(float(now))}})

    def forget_waiting(self, target: str, owner: str) -> None:
        """``owner`` waits (or leaves) no more: it took a slot, or it ended."""
        self.dynamodb.update_item(
            TableName=self.table_name, Key={KEY: {"S": target + WAITERS_SUFFIX}},
            UpdateExpression="REMOVE #owner, #leaving",
            ExpressionAttributeNames={"#owner": owner, "#leaving": LEAVING_PREFIX + owner})

    def waiters(self, target: str) -> tuple[dict[str, float], set[str]]:
        """(execution ARN → when it last asked for a slot on ``target``, holders in their cleanup)."""
        item = self.dynamodb.get_item(TableName=self.table_name, Key={KEY: {"S": target + WAITERS_SUFFIX}},
                                      ConsistentRead=True).get("Item") or {}
        waiting = {name: float(value["N"]) for name, value in item.items()
                   if name != KEY and not name.startswith(LEAVING_PREFIX)}
        return waiting, {name[len(LEAVING_PREFIX):] for name in item if name.startswith(LEAVING_PREFIX)}

    def transfer(self, target: str, owner: str, new_owner: str, now: float) -> bool:
        """Hand ``owner``'s slot to ``new_owner`` in one conditional update (a resume takes its
        held run's slot); False when ``owner`` holds none."""
        try:
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key={KEY: {"S": target}},
                UpdateExpression="SET #new = :now REMOVE #old",
                ConditionExpression="attribute_exists(#old) AND attribute_not_exists(#new)",
                ExpressionAttributeNames={"#old": owner, "#new": new_owner},
                ExpressionAttributeValues={":now": {"N": repr(float(now))}},
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
