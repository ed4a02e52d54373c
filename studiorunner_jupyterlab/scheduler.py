"""``StudioRunnerScheduler``: jupyter-scheduler's backend API over Studio Runner runs.

Every call is one the ``studio-runner`` command makes: ``Runs`` (start, describe, list,
stop, the bucket's files), the payload's own validation, the CLI's parameter typing and
run naming. Nothing here keeps a job's status: it is the Step Functions execution's, read
each time; the only things cached in memory are what cannot change (a run's payload, and
the whole description of a run that has ended).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import posixpath
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_scheduler.exceptions import SchedulerError
from jupyter_scheduler.executors import ExecutionManager
from jupyter_scheduler.models import (
    CountJobsQuery,
    CreateJob,
    CreateJobDefinition,
    CreateJobFromDefinition,
    DescribeJob,
    DescribeJobDefinition,
    JobFeature,
    JobFile,
    ListJobDefinitionsQuery,
    ListJobDefinitionsResponse,
    ListJobsQuery,
    ListJobsResponse,
    SortDirection,
    UpdateJob,
    UpdateJobDefinition,
)
from jupyter_scheduler.scheduler import BaseScheduler
from traitlets import Bool, Dict, Integer, List, Unicode, default

import studiorunner_cli  # noqa: F401 - in a checkout, puts the client library (lambdas/) on sys.path
from studiorunner_jupyterlab import jobs
from studiorunner_jupyterlab.cron import CronUntranslatable, to_cron, to_eventbridge
from studiorunner_jupyterlab.jobs import JobMeta

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
#: The one environment shown when no target is configured: runs go to the deployment's default.
DEFAULT_ENVIRONMENT = "default"
#: Sorting these needs only ``list-executions``; any other field needs every run described.
#: What an execution that ended without an error name ended as (a stop names none in some APIs).
_UNNAMED_END = {"ABORTED": "Stopped", "TIMED_OUT": "States.Timeout"}
_CHEAP_SORTS = {"create_time", "start_time", "end_time", "update_time", "status"}


class JobError(SchedulerError):
    """A one-line message for the dialog: what the ``studio-runner`` command would print."""


def one_line(exc: BaseException) -> str:
    """The message ``studio-runner`` prints for ``exc`` (without its ``studio-runner:`` prefix)."""
    from studiorunner_cli.parameters import UsageError
    from studiorunner_cli.runs import RunsError
    from studiorunner_cli.schedules import ScheduleError

    if isinstance(exc, (UsageError, RunsError, JobError, ScheduleError)):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


class _NoTracebackForJobErrors(logging.Filter):
    """jupyter-scheduler's handlers log every backend error with its traceback; a JobError is
    a person's mistake or a refusal, said in one line: keep the line, drop the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], JobError):
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class StudioRunnerFeatures(ExecutionManager):
    """What the dialog offers (jupyter-scheduler asks the execution manager); runs are
    executed by the state machine, never by this class."""

    def execute(self):  # pragma: no cover - jupyter-scheduler never calls it with our scheduler
        raise NotImplementedError("Studio Runner runs notebooks in its state machine")

    def supported_features(cls) -> dict[JobFeature, bool]:  # noqa: N805 - jupyter-scheduler calls it so
        return {
            JobFeature.job_name: True,
            JobFeature.parameters: True,
            JobFeature.output_formats: True,
            JobFeature.job_definition: True,
            JobFeature.idempotency_token: False,
            JobFeature.tags: False,
            JobFeature.email_notifications: False,
            JobFeature.timeout_seconds: False,
            JobFeature.retry_on_timeout: False,
            JobFeature.max_retries: False,
            JobFeature.min_retry_interval_millis: False,
            JobFeature.output_filename_template: False,
            JobFeature.stop_job: True,
            JobFeature.delete_job: True,
        }


class StudioRunnerScheduler(BaseScheduler):
    """jupyter-scheduler's scheduler API, each call a Studio Runner call."""

    stack = Unicode("StudioRunner", config=True, help="the deployed stack (its outputs name the state machine and bucket)")
    profile = Unicode(None, allow_none=True, config=True, help="AWS profile (default: the usual credentials)")
    region = Unicode(None, allow_none=True, config=True, help="AWS region (default: the profile's)")
    local = Bool(False, config=True, help="use the local stack of `studio-runner lab --local` / `local up` instead")
    targets = List(Unicode(), config=True,
                   help="the targets offered as runtime environments, default first (none: the deployment's default)")
    target_spaces = Dict(value_trait=Unicode(), config=True,
                         help="target name -> 'DOMAIN_ID/SPACE_NAME' for studio-space targets: in that space, "
                              "its own target is the default runtime environment")
    studio_metadata_file = Unicode("/opt/ml/metadata/resource-metadata.json", config=True,
                                   help="where a Studio app says which domain and space it is")
    list_limit = Integer(500, config=True, help="at most this many of the newest runs are listed")
    hidden_jobs_file = Unicode(config=True, help="where deleted jobs are remembered (hidden from the list)")
    db_url = Unicode(help="jupyter-scheduler's database URL (unused: the runs are the record)")

    task_runner = None  # schedules are EventBridge Scheduler's, not a loop in this server

    @default("hidden_jobs_file")
    def _default_hidden(self) -> str:
        return os.path.join(jupyter_data_dir(), "studio-runner", "hidden-jobs.json")

    @default("execution_manager_class")
    def _default_execution_manager(self):
        return StudioRunnerFeatures

    def __init__(self, root_dir: str, environments_manager, config=None, **kwargs: Any) -> None:
        super().__init__(root_dir=root_dir, environments_manager=environments_manager, config=config, **kwargs)
        if hasattr(environments_manager, "attach"):
            environments_manager.attach(self)
        for name in ("SchedulerApp", "ServerApp"):  # the loggers jupyter-scheduler's handlers use
            logging.getLogger(name).addFilter(_NoTracebackForJobErrors())
        self._lock = threading.Lock()
        self._runs = None
        self._schedules = None
        self._ended: dict[str, Any] = {}  # run id → RunInfo of a run that has ended (never changes)
        self._payloads: dict[str, dict[str, Any]] = {}  # run id → payload (never changes)
        self._meta: dict[str, JobMeta | None] = {}

    # -- where the runs are -----------------------------------------------------------
    @property
    def runs(self):
        """The ``Runs`` the CLI uses: the stack's, or the local one."""
        if self._runs is not None:
            return self._runs
        from studiorunner_cli.runs import RunsError, from_stack

        if self.local:
            from studiorunner_cli.local import connect, stacks_dir

            runs = connect(Path(self.root_dir))  # the stack serving this JupyterLab's folder (or the only one)
            if runs is None:
                raise JobError(f"no local stack is up: start one with `studio-runner lab --local` "
                               f"or `studio-runner local up` (looked in {stacks_dir()})")
            return runs  # not kept: a restarted local stack has another endpoint
        try:
            self._runs = from_stack(self.stack, profile=self.profile, region=self.region)
        except RunsError as exc:
            raise JobError(str(exc)) from exc
        return self._runs

    def environment_names(self) -> list[str]:
        """The runtime environments, the default first: this space's own target when this
        JupyterLab runs in a Studio space that is one of the targets (``target_spaces``)."""
        if self.local:
            from localstudio.local_stack import TARGET_NAME

            return [TARGET_NAME]
        names = list(self.targets) or [DEFAULT_ENVIRONMENT]
        here = this_space(self.studio_metadata_file)
        mine = [name for name in names if here and self.target_spaces.get(name) == "/".join(here)]
        return mine[:1] + [name for name in names if name not in mine[:1]]

    # -- jobs -------------------------------------------------------------------------
    async def create_job(self, model: CreateJob) -> str:
        return await self._call(self._create_job, model)

    async def update_job(self, job_id: str, model: UpdateJob) -> None:
        await self._call(self._update_job, job_id, model)

    async def list_jobs(self, query: ListJobsQuery) -> ListJobsResponse:
        return await self._call(self._list_jobs, query)

    async def count_jobs(self, query: CountJobsQuery) -> int:
        return await self._call(self._count_jobs, query)

    async def get_job(self, job_id: str, job_files: bool | None = True) -> DescribeJob:
        return await self._call(self._get_job, job_id, bool(job_files))

    async def delete_job(self, job_id: str) -> None:
        await self._call(self._delete_job, job_id)

    async def stop_job(self, job_id: str) -> None:
        await self._call(self._stop_job, job_id)

    # -- job definitions (the schedules) ------------------------------------------------
    async def create_job_definition(self, model: CreateJobDefinition) -> str:
        return await self._call(self._create_job_definition, model)

    async def update_job_definition(self, job_definition_id: str, model: UpdateJobDefinition) -> None:
        await self._call(self._update_job_definition, job_definition_id, model)

    async def delete_job_definition(self, job_definition_id: str) -> None:
        await self._call(lambda: self.schedules.delete(self._schedule_name(job_definition_id)))

    async def get_job_definition(self, job_definition_id: str) -> DescribeJobDefinition:
        return await self._call(lambda: self._definition(self.schedules.get(self._schedule_name(job_definition_id),
                                                                            next_count=0)))

    async def list_job_definitions(self, query: ListJobDefinitionsQuery) -> ListJobDefinitionsResponse:
        return await self._call(self._list_job_definitions, query)

    async def create_job_from_definition(self, job_definition_id: str, model: CreateJobFromDefinition) -> str:
        return await self._call(self._create_job_from_definition, job_definition_id, model)

    # -- the work, in a thread (boto3 blocks) -------------------------------------------
    async def _call(self, fn, *args):
        try:
            return await asyncio.to_thread(fn, *args)
        except SchedulerError:
            raise
        except Exception as exc:  # noqa: BLE001 - the dialog shows one line, never a traceback
            self.log.warning("Studio Runner: %s", one_line(exc))
            raise JobError(one_line(exc)) from exc

    def _checked_payload(self, path: str | None, *, parameters: dict[str, str] | None, output_formats: list[str] | None,
                         environment: str | None, package_input_folder: bool | None = None) -> dict[str, Any]:
        """The payload for the dialog's fields (the notebook's place aside), with every check
        ``studio-runner run`` makes before anything starts, and its messages (``path`` None: the
        notebook is one already in the bucket, a schedule's copy)."""
        from studiorunner.errors import PayloadInvalid
        from studiorunner.payload import validate_payload
        from studiorunner_cli.parameters import UsageError, collect
        from studiorunner_cli.run import _check_parameters as check_parameters

        if path is not None and not self.file_exists(path):
            raise JobError(f"no such notebook: {path}")
        if path is not None and not path.lower().endswith(".ipynb"):
            raise JobError(f"{path} is not a .ipynb file")
        if package_input_folder:
            raise JobError("Studio Runner runs the notebook alone: 'Run job with input folder' is not supported")
        try:
            params = collect([], [], [[k, v] for k, v in (parameters or {}).items()], [])
        except UsageError as exc:
            raise JobError(str(exc)) from None
        unknown = [f for f in (output_formats or []) if f not in jobs.FORMAT_TO_PAYLOAD]
        if unknown:
            raise JobError(f"output format {unknown[0]!r}: Studio Runner writes ipynb and html")
        if environment not in self.environment_names():
            raise JobError(f"no runtime environment {environment!r}: the targets here are "
                           + ", ".join(self.environment_names()))

        payload: dict[str, Any] = {}
        if environment != DEFAULT_ENVIRONMENT and not self.local:
            payload["target"] = environment
        if params:
            payload["parameters"] = params
        if "html" in (output_formats or []):
            payload["output_formats"] = ["notebook", "html"]
        try:  # the payload's own checks, as `run` makes them before anything starts
            validate_payload({**payload, "notebook_s3": "s3://studio-runner-check/uploads/x.ipynb"})
        except PayloadInvalid as exc:
            raise JobError(f"PayloadInvalid: {exc.message}") from None
        try:  # and the parameters against the notebook's language, with `run`'s own check
            for note in check_parameters(Path(self.root_dir) / path, payload, None) if path is not None else []:
                self.log.warning("Studio Runner: %s: %s", path, note)
        except UsageError as exc:
            raise JobError(str(exc)) from None
        return payload

    def _create_job(self, model: CreateJob) -> str:
        from studiorunner.naming import run_name
        from studiorunner_cli.runs import UPLOAD_PREFIX

        path = model.input_uri
        payload = self._checked_payload(path, parameters=model.parameters, output_formats=model.output_formats,
                                        environment=model.runtime_environment_name,
                                        package_input_folder=model.package_input_folder)
        runs = self.runs
        name = posixpath.basename(path)
        run_id = run_name(path)
        body = (Path(self.root_dir) / path).read_bytes()  # the file as it is now
        payload["notebook_s3"] = runs.put(f"{UPLOAD_PREFIX}/{run_id}/{name}", body)
        meta = JobMeta(name=model.name or posixpath.splitext(name)[0], input_filename=name, tags=list(model.tags or []))
        runs.put(f"{UPLOAD_PREFIX}/{run_id}/{jobs.META_NAME}", meta.to_json())
        runs.start(payload, run_id)
        with self._lock:
            self._meta[run_id] = meta
            self._payloads[run_id] = payload
        return run_id

    # -- job definitions: the run-time schedules (studiorunner_cli.schedules) -------------
    @property
    def schedules(self):
        """The schedules' own service (the one the ``schedule`` verbs use)."""
        from studiorunner_cli.schedules.setup import service_for_local, service_for_stack

        if self.local:
            return service_for_local()  # not kept: a restarted local stack has another endpoint
        if self._schedules is None:
            self._schedules = service_for_stack(self.stack, profile=self.profile, region=self.region)
        return self._schedules

    def _schedule_name(self, job_definition_id: str) -> str:
        name = jobs.schedule_name(job_definition_id)
        if name is None:
            raise JobError(f"no job definition {job_definition_id!r}")
        return name

    def _definition(self, info) -> DescribeJobDefinition:
        expression = info.definition.expression
        return jobs.describe_definition(info, default_environment=self.environment_names()[0],
                                        schedule=to_cron(expression) or expression)

    def _expression(self, schedule: str | None) -> str:
        if not schedule:
            raise JobError("a job definition runs on a schedule: give one (cron: minute hour day month weekday)")
        try:
            return to_eventbridge(schedule)
        except CronUntranslatable as exc:
            raise JobError(str(exc)) from None

    def _create_job_definition(self, model: CreateJobDefinition) -> str:
        from studiorunner_cli.schedules import ScheduleDefinition

        path = model.input_uri
        payload = self._checked_payload(path, parameters=model.parameters, output_formats=model.output_formats,
                                        environment=model.runtime_environment_name,
                                        package_input_folder=model.package_input_folder)
        definition = ScheduleDefinition(name=model.name, expression=self._expression(model.schedule), payload=payload,
                                        timezone=model.timezone or "UTC",
                                        description=f"created in JupyterLab from {path}")
        info = self.schedules.create(definition, upload=Path(self.root_dir) / path)  # the file as it is now
        return jobs.definition_id(info.name)

    def _update_job_definition(self, job_definition_id: str, model: UpdateJobDefinition) -> None:
        name = self._schedule_name(job_definition_id)
        service = self.schedules
        changes = model.dict(exclude_none=True, exclude={"output_filename_template", "active", "url", "tags",
                                                          "compute_type", "runtime_environment_parameters"})
        if changes.get("name", name) != name:
            raise JobError(f"a schedule keeps its name ({name}): create a new job definition and delete this one")
        changes.pop("name", None)
        if changes:
            current = service.definition(name)
            # The edit form sends the notebook's file name back: a file of that name here is taken
            # as it is now (a new copy, as jupyter-scheduler snapshots it); else the copy stays.
            path = changes.get("input_uri")
            if path and not self.file_exists(path):
                if path != jobs.source_name(current.payload):
                    raise JobError(f"no such notebook: {path}")
                path = None
            payload = self._checked_payload(
                path, parameters=changes.get("parameters", jobs.parameters_shown(current.payload)),
                output_formats=changes.get("output_formats", jobs.output_formats(current.payload)),
                environment=changes.get("runtime_environment_name",
                                        current.payload.get("target") or self.environment_names()[0]))
            # what the form does not show (kernel, timeouts, commands… of a CLI-made schedule) stays
            kept = {k: v for k, v in current.payload.items() if k not in ("target", "parameters", "output_formats")
                    and (path is None or k not in ("notebook", "notebook_s3"))}
            payload = {**kept, **payload}
            expression = self._expression(changes["schedule"]) if "schedule" in changes else current.expression
            updated = replace(current, payload=payload, expression=expression,
                              timezone=changes.get("timezone") or current.timezone)
            service.update(updated, upload=Path(self.root_dir) / path if path else None)
        if model.active is True:
            service.resume(name)
        elif model.active is False:
            service.pause(name)

    def _typed(self, parameters: dict[str, str]) -> dict[str, Any]:
        from studiorunner_cli.parameters import UsageError, collect

        try:
            return collect([], [], [[k, v] for k, v in parameters.items()], [])
        except UsageError as exc:
            raise JobError(str(exc)) from None

    def _list_job_definitions(self, query: ListJobDefinitionsQuery) -> ListJobDefinitionsResponse:
        models = [self._definition(info) for info in self.schedules.list(next_count=0, with_last_run=False)]
        if query.name:
            models = [m for m in models if m.name.startswith(query.name)]
        for sort in reversed(query.sort_by or []):
            models.sort(key=lambda m, f=sort.name: _model_key(m, f), reverse=sort.direction == SortDirection.desc)
        try:
            offset = max(int(query.next_token or 0), 0)
        except ValueError:
            offset = 0
        limit = max(int(query.max_items or 1000), 1)
        page = models[offset: offset + limit]
        following = offset + limit
        return ListJobDefinitionsResponse(job_definitions=page, total_count=len(models),
                                          next_token=str(following) if following < len(models) else None)

    def _create_job_from_definition(self, job_definition_id: str, model: CreateJobFromDefinition) -> str:
        """``Run job`` on a definition: the schedule's ``run now`` (named as its runs)."""
        name = self._schedule_name(job_definition_id)
        service = self.schedules
        if model.parameters:
            defined = service.definition(name).payload.get("parameters") or {}
            if self._typed(model.parameters) != defined:
                raise JobError("a job definition runs with its own parameters: change them in the definition, "
                               "or create a job from the notebook")
        return service.run_now(name)

    def _update_job(self, job_id: str, model: UpdateJob) -> None:
        from studiorunner_cli.runs import UPLOAD_PREFIX

        if not model.name:
            return
        info = self._describe(job_id)
        meta = self._job_meta(job_id) or JobMeta(name=model.name, input_filename=jobs.source_name(info.payload) or job_id)
        meta = JobMeta(name=model.name, input_filename=meta.input_filename, tags=meta.tags)
        self.runs.put(f"{UPLOAD_PREFIX}/{job_id}/{jobs.META_NAME}", meta.to_json())
        with self._lock:
            self._meta[job_id] = meta

    def _stop_job(self, job_id: str) -> None:
        info = self._describe(job_id)
        if info.status != "RUNNING":
            raise JobError(f"{info.run_id} is not running ({info.status})")
        self.runs.stop(info.run_id)

    def _delete_job(self, job_id: str) -> None:
        """Stop it if it runs, and hide it from this list. Its files stay in the bucket (the
        run may be a schedule's or another person's) until the bucket's retention removes them."""
        info = self._describe(job_id)
        if info.status == "RUNNING":
            self.runs.stop(info.run_id)
        with self._lock:
            hidden = self._hidden()
            hidden.add(info.run_id)
            path = Path(self.hidden_jobs_file)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(sorted(hidden)))
            tmp.replace(path)

    def _hidden(self) -> set[str]:
        try:
            data = json.loads(Path(self.hidden_jobs_file).read_text())
        except (OSError, ValueError):
            return set()
        return {str(x) for x in data} if isinstance(data, list) else set()

    def _get_job(self, job_id: str, job_files: bool = True) -> DescribeJob:
        model = self._job(self._describe(job_id))
        if job_files:
            self.add_job_files(model)
        return model

    def _describe(self, run_id: str):
        """The run, as ``describe-execution`` says (a run that has ended is described once)."""
        with self._lock:
            ended = self._ended.get(run_id)
        if ended is not None:
            return ended
        info = self.runs.describe(run_id)
        with self._lock:
            self._payloads[info.run_id] = info.payload
            if info.status in TERMINAL:
                self._ended[info.run_id] = info
        return info

    def _job_meta(self, run_id: str) -> JobMeta | None:
        from studiorunner_cli.runs import UPLOAD_PREFIX

        with self._lock:
            if run_id in self._meta:
                return self._meta[run_id]
        meta = JobMeta.from_json(self.runs.get(f"{UPLOAD_PREFIX}/{run_id}/{jobs.META_NAME}"))
        with self._lock:
            self._meta[run_id] = meta
        return meta

    def _job(self, info) -> DescribeJob:
        from studiorunner_cli.runs import error_text

        status = info.status
        if status == "SUCCEEDED" and (info.output or {}).get("status") == "SKIPPED":
            status = "SKIPPED"  # a schedule's fire while its previous run went on (overlap: skip)
        return jobs.describe(
            run_id=info.run_id, status=status, started=info.started, stopped=info.stopped,
            payload=info.payload,
            error_message=(f"Skipped: {(info.output or {}).get('reason') or 'the previous run was still running'}"
                           if status == "SKIPPED" else
                           error_text(info.error or _UNNAMED_END.get(info.status), info.cause) if info.status in TERMINAL else None),
            meta=self._job_meta(info.run_id), default_environment=self.environment_names()[0])

    def _summaries(self, statuses: tuple[str, ...] | None) -> list[dict[str, Any]]:
        """The newest executions (name, status, dates) from ``list-executions``, at most ``list_limit``."""
        runs = self.runs
        found: list[dict[str, Any]] = []
        for status in statuses or (None,):
            kwargs: dict[str, Any] = {"stateMachineArn": runs.state_machine_arn, "maxResults": 100}
            if status:
                kwargs["statusFilter"] = status
            while len(found) < self.list_limit:
                page = runs.sfn.list_executions(**kwargs)
                found.extend(page.get("executions", []))
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
        hidden = self._hidden()
        found = [e for e in found if e["name"] not in hidden]
        found.sort(key=lambda e: e["startDate"], reverse=True)
        return found[: self.list_limit]

    def _list_jobs(self, query: ListJobsQuery) -> ListJobsResponse:
        statuses = jobs.EXECUTION_STATUSES.get(query.status) if query.status else None
        if statuses == ():
            return ListJobsResponse(jobs=[], total_count=0)
        summaries = self._summaries(statuses)
        if query.start_time:
            summaries = [e for e in summaries if jobs.millis(e["startDate"]) >= query.start_time]
        try:
            offset = max(int(query.next_token or 0), 0)
        except ValueError:
            offset = 0
        limit = max(int(query.max_items or 1000), 1)
        sorts = query.sort_by or []
        cheap = not (query.name or query.tags or query.job_definition_id) and all(s.name in _CHEAP_SORTS for s in sorts)
        if cheap:
            for sort in reversed(sorts):
                summaries.sort(key=lambda e, f=sort.name: _summary_key(e, f),
                               reverse=sort.direction == SortDirection.desc)
            total = len(summaries)
            models = [self._job(self._describe(e["name"])) for e in summaries[offset: offset + limit]]
        else:
            models = [self._job(self._describe(e["name"])) for e in summaries]
            if query.name:
                models = [m for m in models if m.name.startswith(query.name)]
            if query.tags:
                models = [m for m in models if all(t in (m.tags or []) for t in query.tags)]
            if query.job_definition_id:
                models = [m for m in models if m.job_definition_id == query.job_definition_id]
            for sort in reversed(sorts):
                models.sort(key=lambda m, f=sort.name: _model_key(m, f), reverse=sort.direction == SortDirection.desc)
            total = len(models)
            models = models[offset: offset + limit]
        for model in models:
            self.add_job_files(model)
        following = offset + limit
        return ListJobsResponse(jobs=models, total_count=total, next_token=str(following) if following < total else None)

    def _count_jobs(self, query: CountJobsQuery) -> int:
        statuses = jobs.EXECUTION_STATUSES.get(query.status, ())
        return len(self._summaries(statuses)) if statuses else 0

    # -- job files ------------------------------------------------------------------------
    def input_uri(self, payload: dict[str, Any]) -> str | None:
        """Where the run's input notebook is in the bucket (a remote path in the target has none)."""
        source = payload.get("notebook_s3")
        return source if isinstance(source, str) else None

    def add_job_files(self, model: DescribeJob) -> None:
        """jupyter-scheduler's job files, where ``Download job files`` puts them; the input is
        listed only when the run has a copy of it in the bucket."""
        names = self.get_job_filenames(model)
        folder = self.get_local_output_path(model, root_dir_relative=True)
        files = []
        for fmt in model.output_formats or []:
            path = os.path.join(folder, names[fmt])
            files.append(JobFile(display_name=jobs.FORMAT_LABELS.get(fmt, fmt), file_format=fmt,
                                 file_path=path if self.file_exists(path) else None))
        with self._lock:
            payload = self._payloads.get(model.job_id, {})
        if self.input_uri(payload):
            path = os.path.join(folder, model.input_filename)
            files.append(JobFile(display_name="Input", file_format="input",
                                 file_path=path if self.file_exists(path) else None))
        model.job_files = files
        model.downloaded = bool(files) and all(f.file_path for f in files)

    def get_local_output_path(self, model: DescribeJob, root_dir_relative: bool | None = False) -> str:
        """``jobs/<run id>/`` (jupyter-scheduler's ``jobs/<notebook>-<job id>/``, but a run id
        already starts with the notebook's name)."""
        relative = os.path.join(self.output_directory, model.job_id)
        return relative if root_dir_relative else os.path.join(self.root_dir, relative)

    def get_staging_paths(self, model) -> dict[str, str]:
        """The run's files in the bucket, by jupyter-scheduler format."""
        info = self._describe(model.job_id)
        uri = self.runs.output_uri(info)
        paths: dict[str, str] = {}
        if uri:
            paths["ipynb"] = uri
            if uri.endswith(".ipynb"):
                paths["html"] = uri[: -len(".ipynb")] + ".html"
        source = self.input_uri(info.payload)
        if source:
            paths["input"] = source
        return paths


def this_space(metadata_file: str) -> tuple[str, str] | None:
    """(domain id, space name) of the Studio space this JupyterLab runs in, from the app's metadata
    file (``SpaceName``, else the space in the app's ARN ``app/<domain>/<space>/JupyterLab/<name>``);
    None elsewhere."""
    try:
        metadata = json.loads(Path(metadata_file).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("DomainId"), str):
        return None
    space = metadata.get("SpaceName")
    if not isinstance(space, str) or not space:
        parts = str(metadata.get("ResourceArn") or "").split(":app/", 1)[-1].split("/")
        space = parts[1] if len(parts) >= 4 and parts[2] == "JupyterLab" else None
    return (metadata["DomainId"], space) if space else None


def _summary_key(execution: dict[str, Any], field: str) -> Any:
    if field == "status":
        return str(jobs.STATUS.get(execution.get("status"), ""))
    if field == "end_time":
        return jobs.millis(execution.get("stopDate")) or 0
    if field == "update_time":
        return jobs.millis(execution.get("stopDate") or execution.get("startDate")) or 0
    return jobs.millis(execution.get("startDate")) or 0


def _model_key(model: DescribeJob, field: str) -> Any:
    value = getattr(model, field, None)
    if field.endswith("_time"):
        return value or 0
    return "" if value is None else str(value)
