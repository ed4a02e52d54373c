"""Schedules people manage at run time: EventBridge Scheduler schedules in the stack's group.

One :class:`ScheduleService` serves the deployed stack, the long-lived local stack (moto's
Scheduler behind ``studio-runner local up``) and tests (moto in process): it is given boto3
clients and a :class:`ScheduleSetup` (the stack's group, role, dead-letter queue, retries).
The CLI (``studio-runner schedule …``) and the JupyterLab scheduler backend call the same
methods; nothing here knows argparse or prints.

Every schedule is an ``AWS::Scheduler::Schedule`` whose universal target calls
``states:StartExecution`` itself, exactly as the ``cdk.json`` ones (infra/triggers.py):
the run is named ``<schedule>-<scheduler execution id>``, the stack's scheduler role starts
it, with the stack's retry policy and dead-letter queue. The run's payload travels in the
target's input with ``schedule: {name, overlap}`` added, which the state machine's
CheckOverlap state reads. Schedules from ``cdk.json`` live in a group of their own
(``stack_group``): listed as managed by ``stack``, refused by update, pause, resume and
delete. Everything is checked before anything is created or changed: the name, the
expression and time zone (``expressions``), the start and end, and the payload, with the
very validation a run's Prepare step runs.
"""

from __future__ import annotations

import builtins
import json
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from studiorunner_cli.schedules.expressions import ExpressionInvalid, ScheduleExpression, parse

Overlap = Literal["skip", "queue", "allow"]
ManagedBy = Literal["cli", "stack"]
OVERLAP_POLICIES: tuple[Overlap, ...] = ("skip", "queue", "allow")
#: Scheduler's universal target for Step Functions' StartExecution (the deploy-time ones' too).
START_EXECUTION_TARGET = "arn:aws:scheduler:::aws-sdk:sfn:startExecution"
EXECUTION_ID = "<aws.scheduler.execution-id>"
#: Where a local notebook given to ``schedule create`` is uploaded once: every run reads that copy.
UPLOAD_PREFIX = "uploads/schedules"
MAX_EVENT_AGE_SECONDS = 3600  # as the deploy-time schedules (infra/triggers.py)


# -- errors -------------------------------------------------------------------------------
class ScheduleError(Exception):
    """Base class; ``usage`` errors are decided before anything is created or changed (CLI exit 2)."""

    usage = False


class ScheduleInvalid(ScheduleError):
    """A bad expression, time zone, start/end, flexible window, overlap or payload."""

    usage = True


class ScheduleNotFound(ScheduleError):
    usage = True


class ScheduleExists(ScheduleError):
    """The name is taken (by a schedule of the CLI's or of the stack's)."""

    usage = True


class StackManaged(ScheduleError):
    """The schedule comes from ``cdk.json``: change it there and deploy."""

    usage = True


class ScheduleServiceError(ScheduleError):
    """Scheduler, Step Functions or S3 failed (CLI exit 1); the cause is kept."""


# -- what crosses the boundary ----------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ScheduleSetup:
    """The stack's side of every schedule (CloudFormation outputs, or the local stack's)."""

    group: str  # the CLI's schedules
    stack_group: str | None  # the cdk.json ones
    state_machine_arn: str
    role_arn: str
    dead_letter_arn: str
    bucket: str
    retry_attempts: int = 3
    max_event_age_seconds: int = MAX_EVENT_AGE_SECONDS
    max_run_seconds: float | None = None


@dataclass(frozen=True, kw_only=True)
class ScheduleDefinition:
    """What a schedule is: what people give to create and update.

    ``payload`` is a run's payload (what ``run --input`` takes), without ``schedule``.
    ``start``/``end`` are aware datetimes (naive ones are taken in ``timezone``).
    """

    name: str
    expression: str  # cron(…) | rate(…) | at(…), as Scheduler takes it
    payload: dict[str, Any]
    timezone: str = "UTC"
    overlap: Overlap = "skip"
    enabled: bool = True
    start: datetime | None = None
    end: datetime | None = None
    flexible_window_minutes: int | None = None
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class ScheduleRun:
    run_id: str
    status: str  # RUNNING | SUCCEEDED | FAILED | TIMED_OUT | ABORTED | SKIPPED
    started: datetime | None
    stopped: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class ScheduleInfo:
    """A schedule as ``list`` and ``show`` tell it."""

    definition: ScheduleDefinition
    managed_by: ManagedBy
    group: str
    arn: str
    next_fire_times: list[datetime] = field(default_factory=list)
    last_run: ScheduleRun | None = None
    created: datetime | None = None

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def state(self) -> str:
        return "enabled" if self.definition.enabled else "paused"

    @property
    def notebook_source(self) -> str:
        """Where each run's notebook comes from, in words for ``show``."""
        return notebook_source(self.definition.payload)


def notebook_source(payload: Mapping[str, Any]) -> str:
    s3 = payload.get("notebook_s3")
    if isinstance(s3, str):
        if f"/{UPLOAD_PREFIX}/" in s3:
            return f"{s3} (a copy uploaded when the schedule was created; every run reads that copy)"
        return f"{s3} (read at each run)"
    if isinstance(payload.get("notebook"), str):
        return f"{payload['notebook']} in the target's file tree (read at each run)"
    return "(commands only)"


def schedule_run_prefix(name: str) -> str:
    from studiorunner.naming import schedule_run_prefix as prefix

    return prefix(name)


def is_run_of(run_id: str, schedule: str) -> bool:
    """``<schedule>-<id>`` with an id without '-': ``daily-report-x`` is not a run of ``daily``."""
    from studiorunner.naming import is_schedule_run

    return is_schedule_run(run_id, schedule)


# -- the service ---------------------------------------------------------------------------
class ScheduleService:
    """Create, list, show, pause, resume, update, delete and run schedules now."""

    def __init__(self, *, scheduler: Any, stepfunctions: Any, s3: Any, setup: ScheduleSetup) -> None:
        self.scheduler, self.sfn, self.s3 = scheduler, stepfunctions, s3
        self.setup = setup

    # -- checking ----------------------------------------------------------------------
    def check(self, definition: ScheduleDefinition) -> ScheduleExpression:
        """Every check that needs no AWS call; raise ScheduleInvalid. Returns the parsed expression."""
        from studiorunner.errors import PayloadInvalid
        from studiorunner.payload import SCHEDULE_NAME, payload_runs, validate_payload

        if not SCHEDULE_NAME.match(definition.name or ""):
            raise ScheduleInvalid(f"schedule name {definition.name!r}: 1-63 letters, digits, '_' or '-', "
                                  "starting with a letter or digit")
        try:
            expression = parse(definition.expression, definition.timezone)
        except ExpressionInvalid as exc:
            raise ScheduleInvalid(str(exc)) from exc
        if definition.overlap not in OVERLAP_POLICIES:
            raise ScheduleInvalid(f"overlap {definition.overlap!r}: one of {', '.join(OVERLAP_POLICIES)}")
        start, end = self._aware(definition.start, definition), self._aware(definition.end, definition)
        if start and end and end <= start:
            raise ScheduleInvalid(f"the end ({end.isoformat()}) is not after the start ({start.isoformat()})")
        if end and end <= datetime.now(UTC):
            raise ScheduleInvalid(f"the end ({end.isoformat()}) is in the past")
        if len(definition.description or "") > 512:
            raise ScheduleInvalid(f"the description is {len(definition.description)} characters; Scheduler takes 512")
        window = definition.flexible_window_minutes
        if window is not None and not (isinstance(window, int) and 1 <= window <= 1440):
            raise ScheduleInvalid(f"flexible window {window!r}: whole minutes from 1 to 1440")
        if expression.kind == "at" and not expression.next_fire_times(1):
            raise ScheduleInvalid(f"{expression.text} in {expression.timezone} is in the past")
        if expression.kind != "at" and not expression.next_fire_times(1, start=start, end=end):
            raise ScheduleInvalid(f"{expression.text} never fires between the start and the end")
        if not isinstance(definition.payload, Mapping):
            raise ScheduleInvalid("the payload must be a JSON object")
        if "schedule" in definition.payload:
            raise ScheduleInvalid("the payload's 'schedule' key is the schedule's own: leave it out")
        # A batch (parameter_sets / runs): each of its runs, as PlanBatch will check them.
        runs = payload_runs(self.run_payload(definition))
        if not runs:
            raise ScheduleInvalid("PayloadInvalid: a batch needs 'parameter_sets' (a list of objects) or 'runs' "
                                  "(a list of payloads)")
        for label, payload in runs:
            try:
                validate_payload(payload, max_run_seconds=self.setup.max_run_seconds)
            except PayloadInvalid as exc:
                raise ScheduleInvalid(f"PayloadInvalid: {label}{exc.message}") from exc
        return expression

    @staticmethod
    def run_payload(definition: ScheduleDefinition) -> dict[str, Any]:
        """The payload each run receives: the definition's, with ``schedule`` added."""
        return {**definition.payload, "schedule": {"name": definition.name, "overlap": definition.overlap}}

    # -- reading ---------------------------------------------------------------------------
    def list(self, *, next_count: int = 3, with_last_run: bool = True) -> list[ScheduleInfo]:
        """Every schedule, the stack's first, then by name."""
        infos = []
        for group, managed in self._groups():
            for summary in self._paginate(group):
                infos.append(self._info(self._get(group, summary["Name"]), managed, next_count=next_count))
        runs = self._recent_executions() if with_last_run and infos else []
        if runs:
            infos = [replace(info, last_run=self._described(next((r for r in runs if is_run_of(r.run_id, info.name)),
                                                                 None)))
                     for info in infos]
        return sorted(infos, key=lambda i: (i.managed_by != "stack", i.name))

    def get(self, name: str, *, next_count: int = 3) -> ScheduleInfo:
        group, managed, raw = self._find(name)
        info = self._info(raw, managed, next_count=next_count)
        runs = self.runs(name, limit=1)
        return replace(info, last_run=runs[0] if runs else None)

    def runs(self, name: str, *, limit: int = 20) -> builtins.list[ScheduleRun]:
        """The schedule's runs, newest first (a skipped fire shows as SKIPPED)."""
        found = []
        for run in self._recent_executions(describe_for=name):
            if is_run_of(run.run_id, name):
                found.append(run)
                if len(found) >= limit:
                    break
        return found

    # -- changing ----------------------------------------------------------------------------
    def create(self, definition: ScheduleDefinition, *, upload: Path | None = None) -> ScheduleInfo:
        """Create it (``upload``: a local notebook, put in the bucket once; the runs read that copy)."""
        self.check(self._with_upload_probe(definition, upload))
        if self._locate(definition.name) is not None:
            raise ScheduleExists(f"a schedule named {definition.name!r} exists already")
        if upload is not None:
            definition = replace(definition, payload={**definition.payload,
                                                      "notebook_s3": self._upload(definition.name, upload)})
        self._call("create_schedule", **self._request(definition))
        return self.get(definition.name)

    def update(self, definition: ScheduleDefinition, *, upload: Path | None = None) -> ScheduleInfo:
        """Replace the schedule ``definition.name`` with ``definition`` (read it with ``definition()``,
        change what you want with ``dataclasses.replace``, and pass it here)."""
        self._own(definition.name)
        self.check(self._with_upload_probe(definition, upload))
        if upload is not None:
            definition = replace(definition, payload={**definition.payload,
                                                      "notebook_s3": self._upload(definition.name, upload)})
        self._call("update_schedule", **self._request(definition))
        return self.get(definition.name)

    def definition(self, name: str) -> ScheduleDefinition:
        _, _, raw = self._find(name)
        return self._definition(raw)

    def pause(self, name: str) -> ScheduleInfo:
        return self._set_enabled(name, False)

    def resume(self, name: str) -> ScheduleInfo:
        return self._set_enabled(name, True)

    def delete(self, name: str) -> None:
        self._own(name)
        self._call("delete_schedule", Name=name, GroupName=self.setup.group)

    def run_now(self, name: str) -> str:
        """One run now, with the schedule's payload, named as its runs (``<schedule>-<id>``); the run id."""
        _, _, raw = self._find(name)
        target_input = json.loads(raw["Target"]["Input"])
        run_id = schedule_run_prefix(name) + secrets.token_hex(8)
        self._call("start_execution", client=self.sfn, stateMachineArn=self.setup.state_machine_arn,
                   name=run_id, input=target_input["Input"])
        return run_id

    # -- internals ---------------------------------------------------------------------------
    def _set_enabled(self, name: str, enabled: bool) -> ScheduleInfo:
        raw = self._own(name)
        definition = replace(self._definition(raw), enabled=enabled)
        request = self._request(definition)
        request["Target"] = raw["Target"]  # unchanged, as it was written
        self._call("update_schedule", **request)
        return self.get(name)

    def _own(self, name: str) -> dict[str, Any]:
        group, managed, raw = self._find(name)
        if managed == "stack":
            raise StackManaged(f"schedule {name!r} belongs to the stack (cdk.json): change it there and deploy")
        return raw

    def _groups(self) -> builtins.list[tuple[str, ManagedBy]]:
        groups: builtins.list[tuple[str, ManagedBy]] = []
        if self.setup.stack_group:
            groups.append((self.setup.stack_group, "stack"))
        groups.append((self.setup.group, "cli"))
        return groups

    def _locate(self, name: str) -> tuple[str, ManagedBy, dict[str, Any]] | None:
        from botocore.exceptions import ClientError

        for group, managed in self._groups():
            try:
                return group, managed, self.scheduler.get_schedule(Name=name, GroupName=group)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("ResourceNotFoundException",):
                    raise ScheduleServiceError(_client_text(exc, f"reading schedule {name!r}")) from exc
        return None

    def _find(self, name: str) -> tuple[str, ManagedBy, dict[str, Any]]:
        found = self._locate(name)
        if found is None:
            raise ScheduleNotFound(f"no schedule named {name!r} (studio-runner schedule list shows them)")
        return found

    def _get(self, group: str, name: str) -> dict[str, Any]:
        return self._call("get_schedule", Name=name, GroupName=group)

    def _paginate(self, group: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"GroupName": group}
        while True:
            page = self._call("list_schedules", **kwargs)
            yield from page.get("Schedules", [])
            if not page.get("NextToken"):
                return
            kwargs["NextToken"] = page["NextToken"]

    def _request(self, definition: ScheduleDefinition) -> dict[str, Any]:
        """The CreateSchedule / UpdateSchedule request: the deploy-time schedules' target, exactly."""
        expression = parse(definition.expression, definition.timezone)
        window = definition.flexible_window_minutes
        request: dict[str, Any] = {
            "Name": definition.name,
            "GroupName": self.setup.group,
            "ScheduleExpression": expression.text,
            "ScheduleExpressionTimezone": definition.timezone,
            "State": "ENABLED" if definition.enabled else "DISABLED",
            "Description": definition.description or f"Studio Runner schedule {definition.name}",
            "FlexibleTimeWindow": {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": window} if window else {"Mode": "OFF"},
            "Target": {
                "Arn": START_EXECUTION_TARGET,
                "RoleArn": self.setup.role_arn,
                "Input": json.dumps({
                    "StateMachineArn": self.setup.state_machine_arn,
                    "Name": schedule_run_prefix(definition.name) + EXECUTION_ID,
                    "Input": json.dumps(self.run_payload(definition), separators=(",", ":")),
                }, separators=(",", ":")),
                "RetryPolicy": {"MaximumRetryAttempts": self.setup.retry_attempts,
                                "MaximumEventAgeInSeconds": self.setup.max_event_age_seconds},
                "DeadLetterConfig": {"Arn": self.setup.dead_letter_arn},
            },
        }
        if expression.kind == "at":
            # A one-time schedule removes itself once it has fired; its runs stay.
            request["ActionAfterCompletion"] = "DELETE"
        start, end = self._aware(definition.start, definition), self._aware(definition.end, definition)
        # Scheduler refuses a StartDate more than 5 minutes ago, on update too (a pause of a schedule
        # whose start has passed): a start in the past says nothing more than no start.
        if start is not None and start > datetime.now(UTC) - timedelta(minutes=4):
            request["StartDate"] = start
        if end is not None:
            request["EndDate"] = end
        return request

    def _definition(self, raw: Mapping[str, Any]) -> ScheduleDefinition:
        target_input = json.loads(raw["Target"]["Input"])
        payload = json.loads(target_input["Input"])
        schedule = payload.pop("schedule", {}) if isinstance(payload, dict) else {}
        window = raw.get("FlexibleTimeWindow") or {}
        description = raw.get("Description") or ""
        return ScheduleDefinition(
            name=raw["Name"], expression=raw["ScheduleExpression"], payload=payload,
            timezone=raw.get("ScheduleExpressionTimezone") or "UTC",
            overlap=schedule.get("overlap", "skip") if isinstance(schedule, dict) else "skip",
            enabled=raw.get("State", "ENABLED") == "ENABLED",
            start=_as_datetime(raw.get("StartDate")), end=_as_datetime(raw.get("EndDate")),
            flexible_window_minutes=window.get("MaximumWindowInMinutes") if window.get("Mode") == "FLEXIBLE" else None,
            description="" if description == f"Studio Runner schedule {raw['Name']}" else description,
        )

    def _info(self, raw: Mapping[str, Any], managed: ManagedBy, *, next_count: int) -> ScheduleInfo:
        definition = self._definition(raw)
        created = _as_datetime(raw.get("CreationDate"))
        fire: builtins.list[datetime] = []
        if definition.enabled and next_count:
            try:
                fire = parse(definition.expression, definition.timezone).next_fire_times(
                    next_count, start=definition.start, end=definition.end, created=created)
            except ExpressionInvalid:
                fire = []  # written by someone else, in a form we cannot compute: shown without
        return ScheduleInfo(definition=definition, managed_by=managed, group=raw.get("GroupName") or "",
                            arn=raw.get("Arn", ""), next_fire_times=fire, created=created)

    def _recent_executions(self, *, describe_for: str | None = None, limit: int = 1000) -> builtins.list[ScheduleRun]:
        """Executions newest first, from ListExecutions (name, status, dates); a SUCCEEDED one is
        described (for SKIPPED) only when it belongs to ``describe_for``."""
        kwargs: dict[str, Any] = {"stateMachineArn": self.setup.state_machine_arn, "maxResults": 100}
        found: builtins.list[ScheduleRun] = []
        while len(found) < limit:
            page = self._call("list_executions", client=self.sfn, **kwargs)
            for item in page.get("executions", []):
                status = item["status"]
                if status == "SUCCEEDED" and describe_for is not None and is_run_of(item["name"], describe_for):
                    status = self._skipped_or(item["executionArn"], status)
                found.append(ScheduleRun(run_id=item["name"], status=status, started=item.get("startDate"),
                                         stopped=item.get("stopDate")))
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        return sorted(found, key=lambda r: r.started or datetime.min.replace(tzinfo=UTC), reverse=True)

    def _described(self, run: ScheduleRun | None) -> ScheduleRun | None:
        """A SUCCEEDED run as SKIPPED when it was a skipped fire (one DescribeExecution)."""
        if run is None or run.status != "SUCCEEDED":
            return run
        arn = self.setup.state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + run.run_id
        return replace(run, status=self._skipped_or(arn, run.status))

    def _skipped_or(self, arn: str, status: str) -> str:
        try:
            output = self.sfn.describe_execution(executionArn=arn).get("output")
            if output and json.loads(output).get("status") == "SKIPPED":
                return "SKIPPED"
        except Exception:  # noqa: BLE001 - a view: the execution's own status is shown instead
            pass
        return status

    def _with_upload_probe(self, definition: ScheduleDefinition, upload: Path | None) -> ScheduleDefinition:
        if upload is None:
            return definition
        return replace(definition, payload={**definition.payload,
                                            "notebook_s3": f"s3://{self.setup.bucket}/{UPLOAD_PREFIX}/x/{upload.name}"})

    def _upload(self, name: str, path: Path) -> str:
        key = f"{UPLOAD_PREFIX}/{name}/{path.name}"
        self._call("put_object", client=self.s3, Bucket=self.setup.bucket, Key=key, Body=path.read_bytes())
        return f"s3://{self.setup.bucket}/{key}"

    def _aware(self, when: datetime | None, definition: ScheduleDefinition) -> datetime | None:
        if when is None or when.tzinfo is not None:
            return when
        from studiorunner_cli.schedules.expressions import check_timezone

        try:
            return when.replace(tzinfo=check_timezone(definition.timezone))
        except ExpressionInvalid as exc:
            raise ScheduleInvalid(str(exc)) from exc

    def _call(self, operation: str, *, client: Any = None, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        client = client or self.scheduler
        try:
            return getattr(client, operation)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ConflictException" and operation == "create_schedule":
                raise ScheduleExists(f"a schedule named {kwargs.get('Name')!r} exists already") from exc
            if code == "ValidationException" and operation in ("create_schedule", "update_schedule"):
                raise ScheduleInvalid(_client_text(exc, "Scheduler refused the schedule")) from exc
            raise ScheduleServiceError(_client_text(exc, operation)) from exc
        except BotoCoreError as exc:
            raise ScheduleServiceError(f"{operation}: {exc}") from exc


def _client_text(exc: Any, what: str) -> str:
    error = exc.response.get("Error", {})
    return f"{what}: {error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")


def _as_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
