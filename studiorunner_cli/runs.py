"""Runs as the CLI sees them: Step Functions executions and their files in the bucket.

One ``Runs`` class serves the deployed stack, a long-lived local stack (``local up``,
through its HTTP endpoint) and the embedded one (in-process clients): they differ only
in the clients they are given and in how a stop is cleaned up after.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from studiorunner import catalog

DEFAULT_STACK = "StudioRunner"
UPLOAD_PREFIX = "uploads"
SOURCE_METADATA = "source-path"  # an uploaded notebook's x-amz-meta-: the file it was uploaded from


class RunsError(Exception):
    """Something the user must fix (no stack, no such run): exit status 1, no traceback."""


@dataclass
class RunInfo:
    """One execution, as ``describe-execution`` says, with the payload parsed."""

    run_id: str
    arn: str
    status: str
    started: datetime | None
    stopped: datetime | None
    payload: dict[str, Any]
    output: dict[str, Any] | None = None
    error: str | None = None
    cause: str | None = None

    @property
    def notebook(self) -> str | None:
        source = self.payload.get("notebook") or self.payload.get("notebook_s3")
        return source if isinstance(source, str) else None

    @property
    def shown_status(self) -> str:
        """The status, or SKIPPED for a schedule's fire that ended at once (its previous run still ran)."""
        if self.status == "SUCCEEDED" and (self.output or {}).get("status") == "SKIPPED":
            return "SKIPPED"
        return self.status

    @property
    def duration(self) -> float | None:
        if not self.started:
            return None
        end = self.stopped or datetime.now(UTC)
        return (end - self.started).total_seconds()


def error_text(error: str | None, cause: str | None) -> str:
    """``Name: message`` from an execution's error and cause, without a Lambda stack trace."""
    name = error or "Failed"
    message = cause or ""
    try:
        parsed = json.loads(message)
    except (TypeError, ValueError):
        parsed = None
    if isinstance(parsed, dict):
        name = parsed.get("errorType") or name
        message = str(parsed.get("errorMessage") or parsed.get("message") or "")
    return f"{name}: {message}" if message else name


class Runs:
    def __init__(self, sfn: Any, s3: Any, *, state_machine_arn: str, bucket: str,
                 stopper: Callable[[str], Any] | None = None, root: Path | None = None) -> None:
        self.sfn, self.s3 = sfn, s3
        self.state_machine_arn, self.bucket = state_machine_arn, bucket
        self._stopper = stopper
        self.root = root  # a local stack's root folder: a run's ``notebook`` is a path under it

    # -- naming -----------------------------------------------------------------
    def arn(self, run: str) -> str:
        if run.startswith("arn:"):
            return run
        prefix = self.state_machine_arn.replace(":stateMachine:", ":execution:", 1)
        return f"{prefix}:{run}"

    # -- executions ---------------------------------------------------------------
    def start(self, payload: dict[str, Any], run_id: str) -> str:
        self.sfn.start_execution(stateMachineArn=self.state_machine_arn, name=run_id, input=json.dumps(payload))
        return run_id

    def describe(self, run: str) -> RunInfo:
        from botocore.exceptions import ClientError

        try:
            desc = self.sfn.describe_execution(executionArn=self.arn(run))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("ExecutionDoesNotExist", "InvalidArn"):
                raise RunsError(f"no run {run!r} in {self.state_machine_arn.rsplit(':', 1)[-1]}") from None
            raise
        return _info(desc)

    def list(self, *, status: str | None = None, limit: int = 50) -> Iterator[RunInfo]:
        kwargs: dict[str, Any] = {"stateMachineArn": self.state_machine_arn, "maxResults": min(limit, 100)}
        if status:
            kwargs["statusFilter"] = status
        seen = 0
        while True:
            page = self.sfn.list_executions(**kwargs)
            for item in page.get("executions", []):
                if seen >= limit:
                    return
                seen += 1
                yield self.describe(item["executionArn"])
            if not page.get("nextToken"):
                return
            kwargs["nextToken"] = page["nextToken"]

    def stop(self, run: str) -> Any:
        """Stop as ``stop-execution`` does; the stack cleans up after an aborted run."""
        arn = self.arn(run)
        if self._stopper is not None:
            return self._stopper(arn)
        self.sfn.stop_execution(executionArn=arn, error="Stopped", cause="stopped with studio-runner stop")
        return None

    # -- files ------------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise

    def get_uri(self, uri: str) -> bytes | None:
        bucket, _, key = uri[len("s3://"):].partition("/")
        if bucket != self.bucket:
            return Runs(self.sfn, self.s3, state_machine_arn=self.state_machine_arn, bucket=bucket).get(key)
        return self.get(key)

    def put(self, key: str, body: bytes, *, source: Path | None = None) -> str:
        """Upload; ``source``, the person's file, is kept in the object's metadata (``list`` shows it)."""
        extra = {"Metadata": {SOURCE_METADATA: str(source)}} if source is not None and str(source).isascii() else {}
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)
        return f"s3://{self.bucket}/{key}"

    def in_person_words(self, text: str, info: RunInfo, written: Path | None = None) -> str:
        """``text`` (an error, a cause) with a local stack's internal ``s3://`` URIs put as the
        person knows the files: the executed notebook where it was written (else how to get it),
        the notebook as the file it ran from. On AWS the bucket is real: nothing changes."""
        if self.root is None:
            return text
        uri = self.output_uri(info)
        if uri:
            text = text.replace(uri, str(written) if written else f"(studio-runner download {info.run_id} --local)")
        if info.notebook and info.notebook.startswith("s3://"):
            text = text.replace(info.notebook, self.source(info) or info.notebook)
        return text

    def source(self, info: RunInfo) -> str | None:
        """The notebook as the person knows it: the file under a local stack's root, the file an
        upload was made from, else the notebook's path or URI as the payload gives it."""
        notebook = info.notebook
        if notebook is None:
            return None
        if self.root is not None and info.payload.get("notebook"):
            return str(self.root / notebook)
        prefix = f"s3://{self.bucket}/{UPLOAD_PREFIX}/"
        if notebook.startswith(prefix):
            try:
                head = self.s3.head_object(Bucket=self.bucket, Key=notebook[len(f"s3://{self.bucket}/"):])
                return head.get("Metadata", {}).get(SOURCE_METADATA) or notebook
            except Exception:  # noqa: BLE001 - a view: the URI will do
                return notebook
        return notebook

    def output_uri(self, info: RunInfo) -> str | None:
        """Where the run's notebook is (or will be): the result's, else ``runs/<id>/<name>.ipynb``."""
        uri = (info.output or {}).get("output_notebook")
        if uri:
            return uri
        if info.notebook:
            from studiorunner.notebook import output_key

            try:
                return f"s3://{self.bucket}/{output_key(info.run_id, info.notebook)}"
            except ValueError:
                return None
        return None

    def phase(self, info: RunInfo) -> str | None:
        """What a running run is doing before (or between) its cells, from the execution's
        latest state: ``waiting for a slot on …``, ``starting the target (Pending)``…"""
        if info.status != "RUNNING":
            return None
        try:
            events = self.sfn.get_execution_history(executionArn=info.arn, reverseOrder=True,
                                                    maxResults=20)["events"]
        except Exception:  # noqa: BLE001 - a view: never a reason to fail status or watch
            return None
        # the newest by id (moto returns the whole history, oldest first, whatever reverseOrder says)
        entered = [e for e in events if e.get("stateEnteredEventDetails")]
        if not entered:
            return None
        latest = max(entered, key=lambda e: e.get("id", 0))["stateEnteredEventDetails"]
        try:
            state = json.loads(latest.get("input") or "{}")
        except ValueError:
            state = {}
        return phase_text(latest.get("name", ""), state if isinstance(state, dict) else {})

    def progress(self, info: RunInfo) -> dict[str, Any]:
        from studiorunner.progress import progress_uri, read_progress

        uri = self.output_uri(info)
        body = self.get_uri(progress_uri(uri)) if uri else None
        return read_progress(body) if body else {}


#: The state machine's states (statemachine/runner.asl.json) → the step they belong to (the catalog's words).
_STEP_OF = {state: step for step in catalog.STEPS for state in step.states}


#: What ``status`` and ``watch`` say of a held run; ``list`` shows it HELD.
HELD_WORDS = "its kernel is held until"


def phase_text(state_name: str, state: dict[str, Any]) -> str:
    """A person's words for state ``state_name`` of a run whose state is ``state``."""
    step = _STEP_OF.get(state_name)
    if step is None:
        return state_name
    result = state.get(step.result_path)
    result = result if isinstance(result, dict) else {}
    if state_name in ("WaitToRetry", "StartAttempt") and isinstance(result.get("retry"), dict):
        retry = result["retry"]
        return (f"failed ({result.get('error')}); attempt {retry.get('number')} of {retry.get('of')} "
                f"starts as {retry.get('name')} after {retry.get('wait_seconds')} s")
    raw_outcome = state.get("outcome")
    outcome: dict[str, Any] = raw_outcome if isinstance(raw_outcome, dict) else {}
    hold = outcome.get("hold")
    if step.name == "CheckHold" and isinstance(hold, dict):
        return (f"failed ({outcome.get('error')}); {HELD_WORDS} {hold.get('until_text')}: "
                f"{hold.get('resume')} [--notebook FIXED.ipynb] [--from CELL]")
    if step.says_message:
        return str(result.get("message") or step.phase)
    if step.polled and result.get("status") == "pending" and result.get("detail"):
        return f"{step.phase} ({result['detail']})"
    return step.phase


def _info(desc: dict[str, Any]) -> RunInfo:
    try:
        payload = json.loads(desc.get("input") or "{}")
    except ValueError:
        payload = {}
    try:
        output = json.loads(desc["output"]) if desc.get("output") else None
    except ValueError:
        output = None
    arn = desc["executionArn"]
    return RunInfo(
        run_id=desc.get("name") or arn.rsplit(":", 1)[-1], arn=arn, status=desc["status"],
        started=desc.get("startDate"), stopped=desc.get("stopDate"),
        payload=payload if isinstance(payload, dict) else {}, output=output if isinstance(output, dict) else None,
        error=desc.get("error"), cause=desc.get("cause"),
    )


def stack_outputs(stack: str, *, profile: str | None = None, region: str | None = None,
                  session: Any = None) -> tuple[Any, dict[str, str]]:
    """The boto3 session and the deployed stack's CloudFormation outputs (RunsError if unreadable)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        session = session or boto3.Session(profile_name=profile, region_name=region)
        cfn = session.client("cloudformation")
        stacks = cfn.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", str(exc))
        raise RunsError(f"cannot read stack {stack!r}: {message}") from None
    except BotoCoreError as exc:
        raise RunsError(f"cannot reach AWS: {exc}") from None
    return session, {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def from_stack(stack: str, *, profile: str | None = None, region: str | None = None, session: Any = None) -> Runs:
    """The deployed stack's state machine and bucket, from its CloudFormation outputs."""
    session, outputs = stack_outputs(stack, profile=profile, region=region, session=session)
    missing = [k for k in ("StateMachineArn", "BucketName") if k not in outputs]
    if missing:
        raise RunsError(f"stack {stack!r} has no output {', '.join(missing)}: is it a Studio Runner stack?")
    return Runs(session.client("stepfunctions"), session.client("s3"),
                state_machine_arn=outputs["StateMachineArn"], bucket=outputs["BucketName"])
