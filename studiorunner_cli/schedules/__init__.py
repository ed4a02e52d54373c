"""Run-time schedules (issue 15): the library the CLI's ``schedule`` verbs and the JupyterLab
scheduler backend both call. ``service`` (ScheduleService over boto3 clients), ``expressions``
(EventBridge Scheduler's cron/rate/at, time zones, next fire times), ``setup`` (where the
stack's group, role and queue are: CloudFormation outputs or the local stack)."""

from studiorunner_cli.schedules.expressions import ExpressionInvalid, ScheduleExpression, parse
from studiorunner_cli.schedules.service import (
    OVERLAP_POLICIES,
    ScheduleDefinition,
    ScheduleError,
    ScheduleExists,
    ScheduleInfo,
    ScheduleInvalid,
    ScheduleNotFound,
    ScheduleRun,
    ScheduleService,
    ScheduleServiceError,
    ScheduleSetup,
    StackManaged,
    is_run_of,
    notebook_source,
)

__all__ = [
    "OVERLAP_POLICIES", "ExpressionInvalid", "ScheduleDefinition", "ScheduleError", "ScheduleExists",
    "ScheduleExpression", "ScheduleInfo", "ScheduleInvalid", "ScheduleNotFound", "ScheduleRun",
    "ScheduleService", "ScheduleServiceError", "ScheduleSetup", "StackManaged", "is_run_of",
    "notebook_source", "parse",
]
