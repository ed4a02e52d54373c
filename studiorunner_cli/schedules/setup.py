"""Where a stack's schedules live: a :class:`ScheduleService` for the deployed stack (its
CloudFormation outputs) or for the long-lived local stack (``studio-runner local up``)."""

from __future__ import annotations

import json
from typing import Any

from studiorunner_cli.schedules.service import ScheduleError, ScheduleService, ScheduleServiceError, ScheduleSetup

#: The stack outputs a ScheduleSetup is read from (infra/stack.py writes them).
OUTPUTS = ("StateMachineArn", "BucketName", "ScheduleGroupName", "StackScheduleGroupName",
           "SchedulerRoleArn", "ScheduleDeadLetterQueueArn", "ScheduleRetryAttempts")


class NoLocalStack(ScheduleError):
    """``--local`` without a ``local up`` stack: a usage error (nothing is created)."""

    usage = True


def setup_from_outputs(outputs: dict[str, str], *, stack: str = "the stack") -> ScheduleSetup:
    missing = [key for key in OUTPUTS if key not in outputs]
    if missing:
        raise ScheduleServiceError(f"{stack} has no output {', '.join(missing)}: deploy this version of "
                                   "Studio Runner to manage schedules (cdk deploy)")
    return ScheduleSetup(
        group=outputs["ScheduleGroupName"], stack_group=outputs["StackScheduleGroupName"],
        state_machine_arn=outputs["StateMachineArn"], role_arn=outputs["SchedulerRoleArn"],
        dead_letter_arn=outputs["ScheduleDeadLetterQueueArn"], bucket=outputs["BucketName"],
        retry_attempts=int(outputs["ScheduleRetryAttempts"]),
        max_run_seconds=float(outputs["MaxRunSeconds"]) if outputs.get("MaxRunSeconds") else None)


def service_for_stack(stack: str, *, profile: str | None = None, region: str | None = None,
                      session: Any = None) -> ScheduleService:
    """The deployed stack's schedules, with the usual credentials."""
    from studiorunner_cli.runs import RunsError, stack_outputs

    try:
        session, outputs = stack_outputs(stack, profile=profile, region=region, session=session)
    except RunsError as exc:
        raise ScheduleServiceError(str(exc)) from exc
    setup = setup_from_outputs(outputs, stack=f"stack {stack!r}")
    return ScheduleService(scheduler=session.client("scheduler"), stepfunctions=session.client("stepfunctions"),
                           s3=session.client("s3"), setup=setup)


def local_setup(*, state_machine_arn: str, bucket: str) -> ScheduleSetup:
    """The local stack's group, role and queue (localstudio/local_stack.py creates them)."""
    from localstudio.local_stack import (
        SCHEDULE_DEAD_LETTER_ARN,
        SCHEDULE_GROUP,
        SCHEDULER_ROLE_ARN,
        STACK_SCHEDULE_GROUP,
    )

    return ScheduleSetup(group=SCHEDULE_GROUP, stack_group=STACK_SCHEDULE_GROUP, state_machine_arn=state_machine_arn,
                         role_arn=SCHEDULER_ROLE_ARN, dead_letter_arn=SCHEDULE_DEAD_LETTER_ARN, bucket=bucket)


def service_for_local() -> ScheduleService:
    """The ``local up`` stack's schedules; NoLocalStack when none is up."""
    import boto3

    from studiorunner_cli.local import _pid_alive, state_file

    try:
        info = json.loads(state_file().read_text())
    except (OSError, ValueError):
        info = None
    if not isinstance(info, dict) or not _pid_alive(int(info.get("pid", 0))):
        raise NoLocalStack("no local stack is up: schedules live in it and it fires them while it is up; "
                           f"start one with `studio-runner local up` (looked for {state_file()})")
    kwargs: dict[str, Any] = dict(endpoint_url=info["endpoint"], region_name=info["region"],
                                  aws_access_key_id="testing", aws_secret_access_key="testing")
    return ScheduleService(scheduler=boto3.client("scheduler", **kwargs),
                           stepfunctions=boto3.client("stepfunctions", **kwargs), s3=boto3.client("s3", **kwargs),
                           setup=local_setup(state_machine_arn=info["state_machine_arn"], bucket=info["bucket"]))
