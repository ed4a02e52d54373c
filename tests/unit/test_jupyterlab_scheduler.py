"""The jupyter-scheduler backend's adapter, without servers: what the dialog says for a refusal
AWS makes, and how a run's ending reads as a job."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from jupyter_scheduler.models import CreateJob, Status

from studiorunner_cli.runs import RunInfo
from studiorunner_jupyterlab.environments import TargetEnvironments
from studiorunner_jupyterlab.scheduler import JobError, StudioRunnerScheduler


class DeniedRuns:
    """A stack whose bucket refuses this role (the space's role lacks the Run policy)."""

    bucket, state_machine_arn = "studio-runner-bucket", "arn:aws:states:eu-west-1:123456789012:stateMachine:runs"

    def put(self, key: str, body: bytes) -> str:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "PutObject")


def _scheduler(tmp_path: Path, runs) -> StudioRunnerScheduler:
    scheduler = StudioRunnerScheduler(root_dir=str(tmp_path), environments_manager=TargetEnvironments(),
                                      config=None)
    scheduler.targets = ["analytics-space"]
    scheduler.hidden_jobs_file = str(tmp_path / "hidden.json")
    scheduler._runs = runs
    return scheduler


def test_no_permission_is_the_line_the_cli_prints(tmp_path: Path) -> None:
    (tmp_path / "report.ipynb").write_text(json.dumps({
        "cells": [], "metadata": {"kernelspec": {"name": "python3", "language": "python", "display_name": "P"}},
        "nbformat": 4, "nbformat_minor": 5}))
    scheduler = _scheduler(tmp_path, DeniedRuns())
    model = CreateJob(name="report", input_uri="report.ipynb", runtime_environment_name="analytics-space",
                      output_formats=["ipynb"])
    with pytest.raises(JobError) as refused:
        asyncio.run(scheduler.create_job(model))
    # studio-runner's main prints `studio-runner: <type>: <error>` for what it did not foresee
    assert str(refused.value) == ("ClientError: An error occurred (AccessDenied) when calling the PutObject "
                                  "operation: Access Denied")


@pytest.mark.parametrize(("status", "error", "output", "job_status", "message"), [
    ("RUNNING", None, None, Status.IN_PROGRESS, None),
    ("SUCCEEDED", None, {"status": "SUCCEEDED"}, Status.COMPLETED, None),
    ("FAILED", "CellExecutionError", None, Status.FAILED, "CellExecutionError: Cell 1 raised ZeroDivisionError"),
    ("TIMED_OUT", None, None, Status.FAILED, "States.Timeout: Cell 1 raised ZeroDivisionError"),
    ("ABORTED", None, None, Status.STOPPED, "Stopped: Cell 1 raised ZeroDivisionError"),
    ("SUCCEEDED", None, {"status": "SKIPPED", "reason": "daily-1 is still running"}, Status.STOPPED,
     "Skipped: daily-1 is still running"),
])
def test_a_runs_end_reads_as_a_jobs_status(tmp_path: Path, status, error, output, job_status, message) -> None:
    scheduler = _scheduler(tmp_path, DeniedRuns())
    scheduler._meta["daily-2"] = None
    info = RunInfo(run_id="daily-2", arn="arn:…:daily-2", status=status, started=datetime(2026, 12, 1, tzinfo=UTC),
                   stopped=None if status == "RUNNING" else datetime(2026, 12, 1, 0, 5, tzinfo=UTC),
                   payload={"notebook_s3": "s3://b/uploads/daily-2/daily.ipynb", "schedule": {"name": "daily"}},
                   output=output, error=error, cause="Cell 1 raised ZeroDivisionError" if status != "RUNNING" else None)
    job = scheduler._job(info)
    assert (job.status, job.status_message) == (job_status, message if job_status != Status.COMPLETED else None)
    assert job.job_definition_id == "schedule-daily" and job.input_filename == "daily.ipynb"
    assert job.runtime_environment_name == "analytics-space"


@pytest.mark.parametrize("metadata", [
    {"DomainId": "d-abc123", "SpaceName": "analytics", "UserProfileName": "alice"},
    # without SpaceName: the space is the app ARN's (app/<domain>/<space>/JupyterLab/<name>)
    {"DomainId": "d-abc123", "ResourceArn": "arn:aws:sagemaker:eu-west-1:123456789012:app/d-abc123/analytics/JupyterLab/default"},
])
def test_in_a_studio_space_its_own_target_is_the_default_environment(tmp_path: Path, metadata: dict) -> None:
    scheduler = _scheduler(tmp_path, DeniedRuns())
    scheduler.targets = ["lab", "analytics-space", "nb"]
    scheduler.target_spaces = {"analytics-space": "d-abc123/analytics", "other": "d-abc123/other"}
    scheduler.studio_metadata_file = str(tmp_path / "resource-metadata.json")
    assert scheduler.environment_names() == ["lab", "analytics-space", "nb"]  # not in a space: as configured

    (tmp_path / "resource-metadata.json").write_text(json.dumps(metadata))
    assert scheduler.environment_names() == ["analytics-space", "lab", "nb"]
    environments = scheduler.environments_manager.list_environments()
    assert [e.name for e in environments] == ["analytics-space", "lab", "nb"]
    assert environments[0].label == "analytics-space (default)"
