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

Runs waiting for a slot are users of the target's app too (issue 21.1): an app start costs
minutes, so the last run out must not stop the app while the next wave waits. A waiting run
notes each attempt in a second item (``<target>#waiting``: execution ARN → when it last
asked); taking a slot removes the note. :func:`others_using` counts, for Cleanup, the other
holders and the waiters heard from lately (a waiter that vanished without a word — aborted
while waiting — stops counting after ``WAITER_FRESH_SECONDS``).

Nothing here knows about Lambda: the step handler (``studiorunner/steps/acquire_slot``) passes in the
execution ARN, and tests use moto's DynamoDB and Step Functions.
"""

from __future__ import annotations

import logging
from typing import Any

from studiorunner.config import TargetConfig
from studiorunner.errors import TargetBusy
from studiorunner.run.services import Services
from studiorunner.run.slot_table import SlotTable
from studiorunner.run.state import RunRecord, SlotState

__all__ = ["SlotState", "SlotTable", "acquire_slot", "others_using", "release_slot"]

log = logging.getLogger(__name__)

#: The state machine's Wait between two attempts: short at first, then every WAIT_CAP seconds.
#: A low cap keeps a long-waiting run from losing every race to newcomers (no FIFO here).
WAIT_FIRST, WAIT_CAP = 2, 10
#: Holders are checked with DescribeExecution on the first attempt and then every this many
#: (about a minute at the cap): a crashed holder is rare, a waiting run asks often, and
#: DescribeExecution is throttled per account.
RECLAIM_EVERY = 5
WAITING_MESSAGE = "waiting for a slot"
#: A waiter asks at least every WAIT_CAP seconds (plus its Lambda's time); one not heard from
#: for this long is gone (aborted, timed out) and no longer keeps an app up.
WAITER_FRESH_SECONDS = 60.0


def _execution_name(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


def acquire_slot(state: dict[str, Any], services: Services, *, execution_arn: str) -> SlotState:
    """AcquireSlot: take a slot on the run's target, or say how long to wait; the new ``slot``.

    Once the slot is taken, ``waited_seconds`` is how long the run queued: its deadline is
    counted from then (``RunState.deadline``), since ``timeouts.queue_seconds`` bounds the queue.
    """
    run = RunRecord.from_dict(state["run"])
    target: TargetConfig = services.config.target(run.target)
    limit = target.max_concurrent_runs
    table = services.slot_table() if limit else None
    if table is None or limit is None:
        return SlotState(status="unlimited", owner=execution_arn)
    now = services.clock()
    previous = SlotState.from_dict(state.get("slot"))
    waiting_since = previous.waiting_since if previous and previous.waiting_since else now
    attempt = previous.attempt + 1 if previous else 0

    held_slot = (run.resume or {}).get("slot_owner")
    # A resume carries on in its held run's kernel: it takes that run's slot, never queues for one.
    acquired = isinstance(held_slot, str) and bool(held_slot) and \
        table.transfer(target.name, held_slot, execution_arn, now)
    acquired = acquired or table.try_acquire(target.name, execution_arn, limit, now)
    if not acquired and attempt % RECLAIM_EVERY == 0 and table.reclaim(target.name):
        acquired = table.try_acquire(target.name, execution_arn, limit, now)
    if acquired:
        if previous is not None and previous.status == "waiting":
            table.forget_waiting(target.name, execution_arn)
    else:
        table.note_waiting(target.name, execution_arn, now)  # a user of the app already (others_using)
    holders = table.holders(target.name)
    slot = SlotState(status="acquired" if acquired else "waiting", owner=execution_arn, limit=limit,
                     in_use=len(holders), holders=sorted(_execution_name(h) for h in holders),
                     attempt=attempt, waiting_since=waiting_since, waited_seconds=round(now - waiting_since, 3))
    if acquired:
        slot.message = f"holds a slot on {target.name} ({len(holders)} of {limit} in use)"
        return slot

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
    return slot


def others_using(target_name: str, owner: str | None, services: Services) -> tuple[int, int]:
    """(other runs holding a slot on the target, runs waiting for one), for Cleanup's "last run
    out": both will use the target's app. ``owner`` is the asking run's execution ARN. (0, 0)
    for a target without a limit or when the table cannot be read (the app is then stopped as
    before: kernels still count).

    The asking run first marks itself leaving, and holders marked leaving do not count: two runs
    ending together would otherwise each see the other holding and both keep the app; this
    way at least the second to count sees the first gone.
    """
    try:
        target = services.config.target(target_name)
        table = services.slot_table() if target.max_concurrent_runs else None
        if table is None:
            return 0, 0
        now = services.clock()
        if owner:
            table.note_leaving(target.name, owner, now)
        waiting, leaving = table.waiters(target.name)
        holders = [h for h in table.holders(target.name) if h != owner and h not in leaving]
        waiters = [w for w, seen in waiting.items()
                   if w != owner and w not in holders and now - seen <= WAITER_FRESH_SECONDS]
    except Exception as exc:  # noqa: BLE001 - cleanup must go on
        log.warning("could not count the runs waiting for %s: %s: %s", target_name, type(exc).__name__, exc)
        return 0, 0
    return len(holders), len(waiters)


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
        if table is None:
            return None
        released = table.release(target.name, owner)
        # its note as a waiter (it ended while waiting: TargetBusy, aborted) or as leaving
        table.forget_waiting(target.name, owner)
        if released:
            return f"released the run's slot on target {target.name}"
    except Exception as exc:  # noqa: BLE001 - the slot is reclaimed later; cleanup must go on
        log.warning("could not release the slot on %s: %s: %s", run.get("target"), type(exc).__name__, exc)
    return None
