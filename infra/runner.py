"""The run: one Lambda function per step and the Standard state machine that drives them.

No grants here: ``infra.studio_runner.StudioRunner`` wires them all in one place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.function import StudioRunnerFunction, retention
from infra.network import LambdaNetwork
from studiorunner.catalog import STEPS
from studiorunner.statemachine import DEFINITION  # the definition CDK deploys

# Steps other than RunCells/RunCommands log in, start or poll and return; RunCells hands over to its
# next invocation before its own timeout. Classic's kernel POST blocks while an app starts,
# hence minutes rather than seconds.
STEP_TIMEOUT = Duration.minutes(5)


def definition_text(path: Path, *, max_run_seconds: int) -> str:
    """The ASL file with the run's deadline set (CDK ignores `timeout` for a string body)."""
    definition = json.loads(path.read_text())
    definition["TimeoutSeconds"] = max_run_seconds
    return json.dumps(definition, indent=2)


class Runner(Construct):
    """The step functions (``self.functions`` by step id) and ``self.state_machine``."""

    def __init__(self, scope: Construct, id_: str, *, code: lambda_.Code, environment: Mapping[str, str],
                 memory_mb: int, run_cells_timeout_seconds: int, log_retention_days: int, max_run_seconds: int,
                 state_machine_name: str, network: LambdaNetwork | None = None,
                 definition: Path = DEFINITION) -> None:
        super().__init__(scope, id_)
        self.functions: dict[str, StudioRunnerFunction] = {}
        for step in STEPS:
            # RunCells and RunCommands do the user's work (a command must finish within one invocation).
            timeout = Duration.seconds(run_cells_timeout_seconds) if step.long_running else STEP_TIMEOUT
            fn = StudioRunnerFunction(
                self, step.name, code=code, handler=step.handler,
                description=f"Studio Runner step {step.name}: {step.description}",
                environment=environment, memory_mb=memory_mb, timeout=timeout,
                log_retention_days=log_retention_days, network=network)
            self.functions[step.name] = fn

        self.log_group = logs.LogGroup(self, "ExecutionLogs", retention=retention(log_retention_days),
                                       removal_policy=RemovalPolicy.DESTROY)
        self.state_machine = sfn.StateMachine(
            self, "StateMachine",
            state_machine_name=state_machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(
                definition_text(definition, max_run_seconds=max_run_seconds)),
            definition_substitutions={
                step.placeholder: self.functions[step.name].function.function_arn for step in STEPS},
            tracing_enabled=True,
            # The state holds only references (ids, S3 keys, a cursor), never secrets or
            # outputs, so execution data may be logged.
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
