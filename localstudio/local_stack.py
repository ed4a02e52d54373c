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
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import boto3
from moto import mock_aws

from localstudio import moto_shims
from localstudio.lambda_context import FakeLambdaContext
from studiorunner import catalog
from studiorunner.statemachine import DEFINITION

ASL_PATH = DEFINITION
REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "studio-runner-local"
TARGET_NAME = "local"
SLOTS_TABLE = "studio-runner-slots"
#: EventBridge Scheduler's side of the local stack (moto keeps the schedules; `local up` fires
#: them): the CLI's group, the group of the stack's own (cdk.json) schedules, the role and the
#: dead-letter queue their targets name, as infra/triggers.py deploys them.
SCHEDULE_GROUP = "studio-runner-schedules"
STACK_SCHEDULE_GROUP = "studio-runner-stack-schedules"
SCHEDULER_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/studio-runner-scheduler"
SCHEDULE_DEAD_LETTERS = "studio-runner-schedule-dead-letters"
SCHEDULE_DEAD_LETTER_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{SCHEDULE_DEAD_LETTERS}"

#: state machine step → Lambda handler module (as deployed: ``studiorunner.steps.<module>.handler``)
STEPS = {step.name: step.module for step in catalog.STEPS}


def function_name(step: str) -> str:
    return f"studio-runner-{STEPS[step].replace('_', '-')}"


def function_arn(step: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name(step)}"


def definition() -> str:
    """The ASL with the Lambda ARNs substituted, as CDK's definition_substitutions would."""
    text = ASL_PATH.read_text()
    for step in STEPS:
        text = text.replace(f"${{{step}FunctionArn}}", function_arn(step))
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
    """The deploy-time target config that points at the stand-in's flavor (the catalog says which keys)."""
    kind = catalog.kind(standin.flavor)
    known = {"region": REGION, **standin.identity, "jupyter_url": standin.jupyter_url}
    return {"type": kind.name, **{key: known[source] for key, source in kind.standin.config_from_identity.items()}}


@dataclass
class ExternalJupyter:
    """A Jupyter server we did not start (``--jupyter URL``), in the place of a stand-in.

    The token comes from ``JUPYTER_TOKEN`` (None: the server wants none); it is handed to the
    run through moto's Secrets Manager, as a deployed ``jupyter`` target gets it.
    """

    jupyter_url: str
    token: str | None = None
    flavor: str = "jupyter"
    sagemaker_endpoint: str | None = None
    identity: dict[str, Any] = field(default_factory=dict)


moto_shims.light_moto_batch()


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
        max_concurrent_runs: int | None = None,
    ) -> None:
        self.standin = standin
        self.wait_scale = wait_scale
        self.run_cells_budget = run_cells_budget
        self.lambda_timeout = lambda_timeout
        self.extra_env = extra_env or {}
        self.max_concurrent_runs = max_concurrent_runs  # None: the target type's default
        self._stack = ExitStack()
        self.invocations: list[str] = []
        self.sfn = self.s3 = self.scheduler = None
        self.state_machine_arn = ""
        self._in_flight = 0
        self._stopping: set[str] = set()  # run ids (execution names) being stopped
        self._idle = threading.Condition()
        self._stop_threads: list[threading.Thread] = []
        self.server_url: str | None = None

    # -- set-up --------------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            # No execution may outlive the mocks: stop what still runs, clean up after it as
            # the ExecutionEnded rule would, and let the interpreter's threads end.
            for arn in self.running():
                self.stop(arn, error="LocalStackClosed", cause="the local stack was shut down while the run was going on")
            for thread in self._stop_threads:
                thread.join(timeout=60)
            self._join_workers(timeout=30)
        finally:
            self._stack.close()

    def _env(self) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
        """The Lambda environment, and the targets config (completed once moto is up)."""
        targets = {TARGET_NAME: target_config(self.standin)}
        if self.max_concurrent_runs is not None:
            targets[TARGET_NAME]["max_concurrent_runs"] = self.max_concurrent_runs
        env = {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "STUDIO_RUNNER_DEFAULT_TARGET": TARGET_NAME,
            "STUDIO_RUNNER_BUCKET": BUCKET,
            "STUDIO_RUNNER_MAX_RUN_SECONDS": "86400",
            "STUDIO_RUNNER_SLOTS_TABLE": SLOTS_TABLE,
            "POWERTOOLS_SERVICE_NAME": "studio-runner",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
        }
        if self.standin.sagemaker_endpoint:
            env["AWS_ENDPOINT_URL_SAGEMAKER"] = self.standin.sagemaker_endpoint
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
        if "token_secret_arn" in catalog.kind(targets[TARGET_NAME]["type"]).keys and self.standin.token:
            secrets = boto3.client("secretsmanager", region_name=REGION)
            arn = secrets.create_secret(Name="studio-runner/local-jupyter-token", SecretString=self.standin.token)["ARN"]
            targets[TARGET_NAME]["token_secret_arn"] = arn
        os.environ["STUDIO_RUNNER_TARGETS"] = json.dumps(targets)
        moto_shims.keep_interpreter_inside_mocks()
        self._stack.enter_context(self._route_lambda_invocations())
        self._stack.enter_context(moto_shims.shorten_waits(self.wait_scale))
        self._stack.enter_context(moto_shims.atomic_dynamodb_writes())
        self._stack.enter_context(moto_shims.step_functions_parameter_names())
        self._stack.enter_context(moto_shims.on_stop_execution(self._stopped_elsewhere))
        from studiorunner.steps import _runtime

        _runtime.reset_services()
        self._stack.callback(_runtime.reset_services)

        self.s3 = boto3.client("s3", region_name=REGION)
        self.s3.create_bucket(Bucket=BUCKET)
        # The concurrency slots' table, as infra/concurrency.py deploys it.
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=SLOTS_TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "target", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "target", "AttributeType": "S"}])
        self.scheduler = boto3.client("scheduler", region_name=REGION)
        for group in (SCHEDULE_GROUP, STACK_SCHEDULE_GROUP):
            self.scheduler.create_schedule_group(Name=group)
        boto3.client("sqs", region_name=REGION).create_queue(QueueName=SCHEDULE_DEAD_LETTERS)
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        self.state_machine_arn = self.sfn.create_state_machine(
            name="studio-runner",
            definition=definition(),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/studio-runner-local",
        )["stateMachineArn"]

    def _route_lambda_invocations(self):
        handlers: dict[str, Callable] = {}
        result_paths: dict[str, str] = {}  # function name → where the state machine puts its result
        for step in catalog.STEPS:
            handlers[function_name(step.name)] = importlib.import_module(f"studiorunner.steps.{step.module}").handler
            result_paths[function_name(step.name)] = step.result_path
        stack = self

        def invoke(name: str, body: bytes, response_headers: dict[str, str]) -> bytes:
            stack.invocations.append(name)
            handler = handlers[name]
            event = json.loads(body) if body else {}
            timeout = stack.lambda_timeout
            with stack._idle:
                stack._in_flight += 1
            try:
                result = handler(event, FakeLambdaContext(name, timeout))
            except Exception as exc:  # reported to Step Functions exactly as Lambda would
                if stack._stopped(event):
                    # Step Functions discards what a step of a stopped execution returns; moto
                    # would instead take this error to the Catch and run Cleanup, ignoring the
                    # stop. Give back the state as it was: the execution then ends ABORTED.
                    return json.dumps(event.get(result_paths[name]) or {}).encode()
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps({
                    "errorType": type(exc).__name__,
                    "errorMessage": str(exc),
                    "stackTrace": traceback.format_tb(exc.__traceback__)[-3:],
                }).encode()
            finally:
                with stack._idle:
                    stack._in_flight -= 1
                    stack._idle.notify_all()
            return json.dumps(result).encode()

        return moto_shims.route_lambda_invocations(invoke)

    def serve(self, port: int = 0) -> str:
        """Also answer AWS API calls over HTTP on 127.0.0.1 (``studio-runner local up``), so
        other processes can start, list and download runs; returns the endpoint URL. The
        mocks stay active in this process, so executions still run inside it."""
        if not port:
            import socket

            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
        server = moto_shims.http_server(port)
        self._stack.callback(server.stop)
        self.server_url = f"http://127.0.0.1:{port}"
        return self.server_url

    # -- runs ------------------------------------------------------------------------
    def start(self, payload: Any, name: str | None = None) -> str:
        # Named as the CLI names runs (<notebook stem>-<UTC time>-<random>); the run id is this name.
        from studiorunner.naming import run_name

        if name is None:
            source = payload.get("notebook") or payload.get("notebook_s3") if isinstance(payload, dict) else None
            name = run_name(source if isinstance(source, str) else None)
        return self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn, input=json.dumps(payload), name=name
        )["executionArn"]

    def running(self) -> list[str]:
        if self.sfn is None:
            return []
        try:
            pages = self.sfn.list_executions(stateMachineArn=self.state_machine_arn, statusFilter="RUNNING")
        except Exception:  # noqa: BLE001 - shutting down: nothing to list
            return []
        return [e["executionArn"] for e in pages.get("executions", [])]

    def stop(self, execution_arn: str, *, error: str = "Stopped", cause: str = "stopped by the user",
             timeout: float = 300.0) -> dict[str, Any] | None:
        """Stop a run as ``stop-execution`` does, and clean up as the ExecutionEnded rule does.

        Step Functions reports a stopped execution ABORTED at once, and EventBridge then
        invokes ExecutionEnded, which removes the run's kernel while the Lambda step in
        flight (a RunCells in a long cell) is still running: that step then finds its kernel
        gone, saves the partial notebook and returns. moto instead keeps the execution
        RUNNING until the step returns, so the cleanup is called here right after the stop,
        as the rule would; once the step has returned it is called again, for anything the
        step started meanwhile (a StartKernel in flight). Returns what both passes did.
        """
        self._stopping.add(execution_arn.rsplit(":", 1)[-1])
        try:
            self.sfn.stop_execution(executionArn=execution_arn, error=error, cause=cause)
        except Exception:  # noqa: BLE001 - already ended: nothing to stop or clean up
            return self.clean_up_after(execution_arn)
        return self._finish_stop(execution_arn, timeout)

    def _stopped_elsewhere(self, execution_arn: str) -> None:
        """A StopExecution that did not come through ``stop`` (``studio-runner stop`` against a
        ``local up`` stack, over HTTP): clean up after it in the background, as ``stop`` does,
        so the running cell is interrupted at once and the execution ends ABORTED. Only once
        the stack ``serve``s: a test that calls stop_execution in-process plays the rule itself."""
        run_id = execution_arn.rsplit(":", 1)[-1]
        if not self.server_url or run_id in self._stopping:
            return  # no other process can stop runs here (tests stop by hand), or stop() is on it
        self._stopping.add(run_id)
        thread = threading.Thread(target=self._finish_stop, args=(execution_arn,), name=f"stop-{run_id}", daemon=True)
        self._stop_threads.append(thread)
        thread.start()

    def _finish_stop(self, execution_arn: str, timeout: float = 300.0) -> dict[str, Any] | None:
        """After the stop: ExecutionEnded at once (it removes the kernel, which ends the step in
        flight), then again once the step has returned (what it started meanwhile)."""
        first = self._execution_ended(execution_arn, "ABORTED")
        deadline = time.monotonic() + timeout
        with self._idle:
            while time.monotonic() < deadline and (self._in_flight or self._status(execution_arn) == "RUNNING"):
                self._idle.wait(0.2)
        return _merge_cleanups(first, self.clean_up_after(execution_arn))

    def handled(self, execution_arn: str) -> bool:
        """Whether a stop of this execution was (or is being) cleaned up after here."""
        return execution_arn.rsplit(":", 1)[-1] in self._stopping

    def clean_up_after(self, execution_arn: str) -> dict[str, Any] | None:
        """What the EventBridge rule does for an ABORTED or TIMED_OUT execution: call ExecutionEnded."""
        status = self._status(execution_arn)
        if status not in ("ABORTED", "TIMED_OUT"):
            return None
        return self._execution_ended(execution_arn, status)

    def _execution_ended(self, execution_arn: str, status: str) -> dict[str, Any]:
        from studiorunner.steps import execution_ended

        event = {"detail-type": "Step Functions Execution Status Change", "source": "aws.states",
                 "detail": {"executionArn": execution_arn, "status": status}}
        try:
            return execution_ended.handler(event, FakeLambdaContext("studio-runner-execution-ended", 300))
        except Exception as exc:  # noqa: BLE001 - reported, never raised into the user's Ctrl-C
            return {"cleaned": False, "reason": f"{type(exc).__name__}: {exc}"}

    def _stopped(self, event: Any) -> bool:
        run = event.get("run") if isinstance(event, dict) else None
        return isinstance(run, dict) and run.get("run_id") in self._stopping

    def _status(self, execution_arn: str) -> str:
        try:
            return self.sfn.describe_execution(executionArn=execution_arn)["status"]
        except Exception:  # noqa: BLE001
            return "UNKNOWN"

    def _join_workers(self, timeout: float) -> None:
        """Wait for the interpreter's execution threads (they must not outlive the mocks)."""
        threads = moto_shims.interpreter_threads()
        deadline = time.monotonic() + timeout
        for thread in list(threads):
            if thread is threading.current_thread():
                continue
            thread.join(max(0.0, deadline - time.monotonic()))
            if not thread.is_alive() and thread in threads:
                threads.remove(thread)

    def wait(self, execution_arn: str, *, timeout: float | None = None, on_poll: Callable[[], None] | None = None,
             poll_seconds: float = 0.1) -> Execution:
        """Until the execution ends. No time limit of its own (``timeouts.run_seconds`` is the
        run's); ``timeout`` is for tests, which must not hang."""
        deadline = time.monotonic() + timeout if timeout is not None else None
        while True:
            desc = self.sfn.describe_execution(executionArn=execution_arn)
            if desc["status"] != "RUNNING":
                break
            if on_poll:
                on_poll()
            if deadline is not None and time.monotonic() > deadline:
                self.stop(execution_arn, error="LocalTimeout", cause="the test's time limit passed")
                raise TimeoutError(f"execution still RUNNING after {timeout} s")
            time.sleep(poll_seconds)
        if on_poll:
            on_poll()
        output = json.loads(desc["output"]) if desc.get("output") else None
        return Execution(
            arn=execution_arn, status=desc["status"], output=output,
            error=desc.get("error"), cause=desc.get("cause"), invocations=list(self.invocations),
        )

    def run(self, payload: Any, *, timeout: float | None = 600.0, on_poll: Callable[[], None] | None = None) -> Execution:
        self.invocations.clear()
        return self.wait(self.start(payload), timeout=timeout, on_poll=on_poll)

    def read_output(self, uri: str) -> bytes:
        bucket, key = uri[len("s3://"):].split("/", 1)
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def put_object(self, key: str, body: bytes) -> str:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        return f"s3://{BUCKET}/{key}"


def _merge_cleanups(first: dict[str, Any] | None, second: dict[str, Any] | None) -> dict[str, Any] | None:
    """One report of the two ExecutionEnded passes of a local stop: what either did."""
    if not first or not first.get("cleaned"):
        return second or first
    if not second or not second.get("cleaned"):
        return first
    merged = dict(first)
    merged["cleanup"] = {key: list(first["cleanup"].get(key, [])) + [
        item for item in second["cleanup"].get(key, []) if item not in first["cleanup"].get(key, [])]
        for key in set(first["cleanup"]) | set(second["cleanup"])}
    return merged
