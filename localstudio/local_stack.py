"""The state machine, run on one machine: moto's Step Functions interpreter executes
``statemachine/runner.asl.json`` (the very file CDK deploys), its Lambda tasks go to the
project's own handlers in this process, S3 and Secrets Manager are moto's, and SageMaker
is the Studio stand-in (``AWS_ENDPOINT_URL_SAGEMAKER``).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import time
import traceback
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from unittest import mock

import boto3
from moto import mock_aws

from localstudio.lambda_context import FakeLambdaContext
from studiorunner.run.state import STEPS as STEP_LIST

ROOT = Path(__file__).resolve().parent.parent
ASL_PATH = ROOT / "statemachine" / "runner.asl.json"
REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "studio-runner-local"
TARGET_NAME = "local"

#: state machine step → Lambda handler module (as deployed: ``steps.<module>.handler``)
STEPS = {step.name: step.module for step in STEP_LIST}


def function_name(step: str) -> str:
    return f"studio-runner-{STEPS[step].replace('_', '-')}"


def function_arn(step: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name(step)}"


def definition() -> str:
    """The ASL with the Lambda ARNs substituted, as CDK's definition_substitutions would."""
    text = ASL_PATH.read_text()
    for step in STEPS:
        text = text.replace("${%sFunctionArn}" % step, function_arn(step))
    leftover = re.findall(r"\$\{[A-Za-z]+\}", text)
    if leftover:
        raise RuntimeError(f"unsubstituted placeholders in {ASL_PATH.name}: {sorted(set(leftover))}")
    return text


@dataclass
class Execution:
    """How an execution ended, as ``describe-execution`` says."""

    arn: str
    status: str
    output: dict[str, Any] | None = None
    error: str | None = None
    cause: str | None = None
    invocations: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"


def target_config(standin) -> dict[str, Any]:
    """The deploy-time target config that points at the stand-in's flavor."""
    ident = standin.identity
    flavor = standin.flavor
    if flavor == "studio-space":
        return {"type": flavor, "domain_id": ident["domain_id"], "user_profile": ident["user_profile"],
                "space_name": ident["space_name"], "region": ident.get("region", REGION)}
    if flavor == "studio-classic":
        return {"type": flavor, "domain_id": ident["domain_id"], "user_profile": ident["user_profile"],
                "region": ident.get("region", REGION)}
    if flavor == "notebook-instance":
        return {"type": flavor, "name": ident["notebook_instance"], "region": ident.get("region", REGION)}
    return {"type": "jupyter", "url": standin.jupyter_url}


class LocalStack:
    """Run payloads through the real state machine definition against a stand-in.

    ``wait_scale`` shortens Wait states (0.1 → a 10 s wait takes 1 s);
    ``run_cells_budget`` caps each RunCells invocation (seconds), as a short Lambda
    timeout would, so tests can prove that long cells survive several invocations.
    """

    def __init__(
        self,
        standin,
        *,
        wait_scale: float = 0.05,
        run_cells_budget: float | None = None,
        lambda_timeout: float = 900.0,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.standin = standin
        self.wait_scale = wait_scale
        self.run_cells_budget = run_cells_budget
        self.lambda_timeout = lambda_timeout
        self.extra_env = extra_env or {}
        self._stack = ExitStack()
        self.invocations: list[str] = []
        self.sfn = self.s3 = None
        self.state_machine_arn = ""

    # -- set-up --------------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _env(self) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
        """The Lambda environment, and the targets config (completed once moto is up)."""
        targets = {TARGET_NAME: target_config(self.standin)}
        env = {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_ENDPOINT_URL_SAGEMAKER": self.standin.sagemaker_endpoint,
            "STUDIO_RUNNER_DEFAULT_TARGET": TARGET_NAME,
            "STUDIO_RUNNER_BUCKET": BUCKET,
            "STUDIO_RUNNER_MAX_RUN_SECONDS": "86400",
            "POWERTOOLS_SERVICE_NAME": "studio-runner",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
        }
        if self.run_cells_budget:
            env["STUDIO_RUNNER_RUN_CELLS_BUDGET_SECONDS"] = str(self.run_cells_budget)
        env.update(self.extra_env)
        return env, targets

    def _start(self) -> None:
        env, targets = self._env()
        self._stack.enter_context(mock.patch.dict(os.environ, env))
        self._stack.enter_context(
            mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
        )
        if targets[TARGET_NAME]["type"] == "jupyter":
            secrets = boto3.client("secretsmanager", region_name=REGION)
            arn = secrets.create_secret(Name="studio-runner/local-jupyter-token", SecretString=self.standin.token)["ARN"]
            targets[TARGET_NAME]["token_secret_arn"] = arn
        os.environ["STUDIO_RUNNER_TARGETS"] = json.dumps(targets)
        self._stack.enter_context(self._route_lambda_invocations())
        self._stack.enter_context(self._shorten_waits())
        from steps import _runtime

        _runtime.reset_services()
        self._stack.callback(_runtime.reset_services)

        self.s3 = boto3.client("s3", region_name=REGION)
        self.s3.create_bucket(Bucket=BUCKET)
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        self.state_machine_arn = self.sfn.create_state_machine(
            name="studio-runner",
            definition=definition(),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/studio-runner-local",
        )["stateMachineArn"]

    def _route_lambda_invocations(self):
        from moto.awslambda_simple.models import LambdaSimpleBackend

        handlers: dict[str, Callable] = {}
        for step, module in STEPS.items():
            handlers[function_name(step)] = importlib.import_module(f"steps.{module}").handler
        stack = self

        def invoke(backend, function_name_or_arn, qualifier, body, headers, response_headers):
            name = function_name_or_arn.rsplit(":", 1)[-1] if ":function:" in function_name_or_arn else function_name_or_arn
            stack.invocations.append(name)
            handler = handlers[name]
            event = json.loads(body) if body else {}
            timeout = stack.lambda_timeout
            try:
                result = handler(event, FakeLambdaContext(name, timeout))
            except Exception as exc:  # reported to Step Functions exactly as Lambda would
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps({
                    "errorType": type(exc).__name__,
                    "errorMessage": str(exc),
                    "stackTrace": traceback.format_tb(exc.__traceback__)[-3:],
                }).encode()
            return json.dumps(result).encode()

        return mock.patch.object(LambdaSimpleBackend, "invoke", invoke)

    def _shorten_waits(self):
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

        scale = self.wait_scale

        def _wait_interval(fn, env, wait_seconds):
            if wait_seconds > 0:
                env.program_state_event.wait(wait_seconds * scale)

        return mock.patch.object(WaitFunction, "_wait_interval", _wait_interval)

    # -- runs ------------------------------------------------------------------------
    def start(self, payload: Any, name: str | None = None) -> str:
        # Step Functions names an execution with a UUID when the caller gives none; moto does not.
        return self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn, input=json.dumps(payload), name=name or str(uuid.uuid4())
        )["executionArn"]

    def wait(self, execution_arn: str, *, timeout: float = 600.0, on_poll: Callable[[], None] | None = None) -> Execution:
        deadline = time.monotonic() + timeout
        while True:
            desc = self.sfn.describe_execution(executionArn=execution_arn)
            if desc["status"] != "RUNNING":
                break
            if on_poll:
                on_poll()
            if time.monotonic() > deadline:
                self.sfn.stop_execution(executionArn=execution_arn, error="LocalTimeout", cause="the local run took too long")
                raise TimeoutError(f"execution still RUNNING after {timeout} s")
            time.sleep(0.1)
        if on_poll:
            on_poll()
        output = json.loads(desc["output"]) if desc.get("output") else None
        return Execution(
            arn=execution_arn, status=desc["status"], output=output,
            error=desc.get("error"), cause=desc.get("cause"), invocations=list(self.invocations),
        )

    def run(self, payload: Any, *, timeout: float = 600.0, on_poll: Callable[[], None] | None = None) -> Execution:
        self.invocations.clear()
        return self.wait(self.start(payload), timeout=timeout, on_poll=on_poll)

    def read_output(self, uri: str) -> bytes:
        bucket, key = uri[len("s3://"):].split("/", 1)
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def put_object(self, key: str, body: bytes) -> str:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        return f"s3://{BUCKET}/{key}"
