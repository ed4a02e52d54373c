"""Who may do what: two managed policies a platform engineer attaches to people's roles (and to
a Studio space's execution role), output by the stack.

- ``run``: what ``studio-runner run|status|watch|logs|download|stop|list`` and
  ``schedule list|show|run`` need: start, read and stop this state machine's executions, read
  the stack's outputs, put notebooks under ``uploads/`` and read ``runs/``, read schedules.
- ``manage schedules``: what ``schedule create|update|pause|resume|delete`` add: write
  schedules in the CLI's group only (the ``cdk.json`` group stays the stack's), and
  ``iam:PassRole`` on the stack's scheduler role only, only to EventBridge Scheduler.
  Attach both for that.

Whoever may start an execution runs code as every configured target (README: Security): the
policies are the rights to give on purpose, not defaults.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.nag import acknowledge, resource_finding

_EXECUTIONS_REASON = "This state machine's executions, whose names are chosen per run."
_PREFIX_REASON = "Objects under one prefix of the stack's bucket (uploads/ in, runs/ out), named per run."
_SCHEDULES_REASON = "Schedules of the stack's own schedule groups, named by the people who create them."
_LIST_REASON = "scheduler:ListSchedules has no resource-level permissions; AWS requires Resource '*'."


class AccessPolicies(Construct):
    def __init__(self, scope: Construct, id_: str, *, state_machine: sfn.StateMachine, bucket: s3.IBucket,
                 group: scheduler.IScheduleGroup, stack_group: scheduler.IScheduleGroup,
                 scheduler_role: iam.IRole) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        executions = stack.format_arn(service="states", resource="execution",
                                      arn_format=ArnFormat.COLON_RESOURCE_NAME,
                                      resource_name=f"{state_machine.state_machine_name}:*")
        this_stack = stack.format_arn(service="cloudformation", resource="stack",
                                      resource_name=f"{stack.stack_name}/*")
        uploads, runs = bucket.arn_for_objects("uploads/*"), bucket.arn_for_objects("runs/*")
        cli_schedules = self._schedules(group)
        stack_schedules = self._schedules(stack_group)

        self.run = iam.ManagedPolicy(self, "Run", description="Studio Runner: start, follow, stop and read runs; "
                                                              "read schedules and run one now", statements=[
            iam.PolicyStatement(sid="Runs", actions=["states:StartExecution", "states:ListExecutions"],
                                resources=[state_machine.state_machine_arn]),
            iam.PolicyStatement(sid="ARun", actions=["states:DescribeExecution", "states:GetExecutionHistory",
                                                     "states:StopExecution"], resources=[executions]),
            iam.PolicyStatement(sid="Outputs", actions=["cloudformation:DescribeStacks"], resources=[this_stack]),
            iam.PolicyStatement(sid="Notebooks", actions=["s3:PutObject"], resources=[uploads]),
            iam.PolicyStatement(sid="Results", actions=["s3:GetObject"], resources=[runs, uploads]),
            iam.PolicyStatement(sid="ReadSchedules", actions=["scheduler:GetSchedule"],
                                resources=[cli_schedules, stack_schedules]),
            iam.PolicyStatement(sid="ListSchedules", actions=["scheduler:ListSchedules"], resources=["*"]),
        ])
        self.manage_schedules = iam.ManagedPolicy(
            self, "ManageSchedules",
            description="Studio Runner: create, change and delete run-time schedules (attach with the Run policy)",
            statements=[
                iam.PolicyStatement(sid="Schedules", actions=["scheduler:CreateSchedule", "scheduler:UpdateSchedule",
                                                              "scheduler:DeleteSchedule", "scheduler:GetSchedule"],
                                    resources=[cli_schedules]),
                iam.PolicyStatement(sid="PassTheSchedulerRole", actions=["iam:PassRole"],
                                    resources=[scheduler_role.role_arn],
                                    conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}),
            ])
        for policy in (self.run, self.manage_schedules):
            for resource, reason in ((executions, _EXECUTIONS_REASON), (uploads, _PREFIX_REASON),
                                     (runs, _PREFIX_REASON), (this_stack, "This stack, whose id CloudFormation "
                                                                          "appends to its name."),
                                     (cli_schedules, _SCHEDULES_REASON), (stack_schedules, _SCHEDULES_REASON),
                                     ("*", _LIST_REASON)):
                acknowledge(policy, f"AwsSolutions-IAM5[Resource::{resource_finding(self, resource)}]", reason)

    def _schedules(self, group: scheduler.IScheduleGroup) -> str:
        return Stack.of(self).format_arn(service="scheduler", resource="schedule",
                                         resource_name=f"{group.schedule_group_name}/*")
