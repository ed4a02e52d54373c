"""jupyter-scheduler's job models from Studio Runner runs, and back: pure functions, no I/O.

A job IS a run: its id is the run id (the Step Functions execution name), its status,
start, end and error are the execution's. What jupyter-scheduler knows that a run does not
(the name typed in the dialog, the notebook's file name) is a small ``job.json`` beside the
uploaded notebook (``uploads/<run id>/``); a run started elsewhere (a schedule, the CLI, an
S3 upload) has none and is shown under its notebook's name.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from jupyter_scheduler.models import DescribeJob, DescribeJobDefinition, Status

#: Step Functions execution status → jupyter-scheduler job status.
STATUS = {
    "RUNNING": Status.IN_PROGRESS,
    "SUCCEEDED": Status.COMPLETED,
    "FAILED": Status.FAILED,
    "TIMED_OUT": Status.FAILED,
    "ABORTED": Status.STOPPED,
    "PENDING_REDRIVE": Status.IN_PROGRESS,
    "SKIPPED": Status.STOPPED,  # a schedule's run skipped (overlap: skip): SUCCEEDED, its output says SKIPPED
}
#: jupyter-scheduler job status → the execution statuses it stands for (``statusFilter``).
EXECUTION_STATUSES = {
    Status.IN_PROGRESS: ("RUNNING",),
    Status.COMPLETED: ("SUCCEEDED",),
    Status.FAILED: ("FAILED", "TIMED_OUT"),
    Status.STOPPED: ("ABORTED",),
    Status.CREATED: (),
    Status.QUEUED: (),
    Status.STOPPING: (),
}
#: jupyter-scheduler's output format names ↔ the payload's ``output_formats``.
FORMAT_TO_PAYLOAD = {"ipynb": "notebook", "html": "html"}
PAYLOAD_TO_FORMAT = {v: k for k, v in FORMAT_TO_PAYLOAD.items()}
FORMAT_LABELS = {"ipynb": "Notebook", "html": "HTML"}

META_NAME = "job.json"
#: A job definition is a run-time schedule; its id is the schedule's name after this prefix
#: (jupyter-scheduler's routes take ids with a '-' in them, which a schedule's name need not have).
DEFINITION_PREFIX = "schedule-"


def definition_id(schedule: str) -> str:
    return DEFINITION_PREFIX + schedule


def schedule_name(job_definition_id: str) -> str | None:
    return job_definition_id[len(DEFINITION_PREFIX):] if job_definition_id.startswith(DEFINITION_PREFIX) else None


def schedule_of(payload: dict[str, Any]) -> str | None:
    """The schedule that started a run (its payload's ``schedule.name``)."""
    schedule = payload.get("schedule")
    name = schedule.get("name") if isinstance(schedule, dict) else None
    return name if isinstance(name, str) and name else None


@dataclass
class JobMeta:
    """What the dialog said that the payload cannot hold (the payload refuses unknown keys)."""

    name: str
    input_filename: str
    tags: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, body: bytes | None) -> JobMeta | None:
        if not body:
            return None
        try:
            data = json.loads(body)
            return cls(name=str(data["name"]), input_filename=str(data["input_filename"]),
                       tags=[str(t) for t in data.get("tags") or []])
        except (ValueError, KeyError, TypeError):
            return None


def millis(when: datetime | None) -> int | None:
    return int(when.timestamp() * 1000) if when else None


def output_formats(payload: dict[str, Any]) -> list[str]:
    """The job's formats (``ipynb``, ``html``) from the payload's ``output_formats``."""
    formats = payload.get("output_formats")
    if not isinstance(formats, list):
        return ["ipynb"]
    found = [PAYLOAD_TO_FORMAT[f] for f in formats if f in PAYLOAD_TO_FORMAT]
    return found or ["ipynb"]


def source_name(payload: dict[str, Any]) -> str | None:
    """The notebook's file name, whichever way the payload names it."""
    source = payload.get("notebook") or payload.get("notebook_s3")
    return posixpath.basename(source) if isinstance(source, str) and source else None


def parameter_text(value: Any) -> str:
    """A parameter as the dialog shows it: text as typed, anything else as Python writes it
    (the form's ``-p``-style typing turns ``0.5`` into 0.5 and ``True`` into True)."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    return json.dumps(value)


def parameters_shown(payload: dict[str, Any]) -> dict[str, str] | None:
    params = payload.get("parameters")
    return {k: parameter_text(v) for k, v in params.items()} if isinstance(params, dict) and params else None


def describe(*, run_id: str, status: str, started: datetime | None, stopped: datetime | None,
             payload: dict[str, Any], error_message: str | None, meta: JobMeta | None,
             default_environment: str, job_definition_id: str | None = None) -> DescribeJob:
    """The jupyter-scheduler job for one run."""
    input_filename = (meta.input_filename if meta else None) or source_name(payload) or "(commands)"
    name = (meta.name if meta else None) or posixpath.splitext(input_filename)[0] or run_id
    job_status = STATUS.get(status, Status.IN_PROGRESS)
    created = millis(started) or 0
    return DescribeJob(
        job_id=run_id,
        name=name,
        input_filename=input_filename,
        runtime_environment_name=str(payload.get("target") or default_environment),
        runtime_environment_parameters=None,
        output_formats=output_formats(payload),
        parameters=parameters_shown(payload),
        tags=list(meta.tags) if meta and meta.tags else None,
        job_definition_id=job_definition_id or (definition_id(schedule_of(payload)) if schedule_of(payload) else None),
        url=f"/jobs/{run_id}",
        create_time=created,
        update_time=millis(stopped) or created,
        start_time=created or None,
        end_time=millis(stopped),
        status=job_status,
        status_message=error_message if job_status in (Status.FAILED, Status.STOPPED) else None,
    )


def describe_definition(info: Any, *, default_environment: str, schedule: str) -> DescribeJobDefinition:
    """The jupyter-scheduler job definition for one schedule (a ``ScheduleInfo``); ``schedule``
    is its five-field cron when it has one, else its EventBridge expression as is."""
    definition = info.definition
    payload = definition.payload
    created = millis(info.created) or 0
    return DescribeJobDefinition(
        job_definition_id=definition_id(info.name),
        name=info.name,
        input_filename=source_name(payload) or "(commands)",
        runtime_environment_name=str(payload.get("target") or default_environment),
        runtime_environment_parameters=None,
        output_formats=output_formats(payload),
        parameters=parameters_shown(payload),
        tags=None,
        schedule=schedule,
        timezone=definition.timezone,
        create_time=created,
        update_time=created,
        active=definition.enabled,
    )
