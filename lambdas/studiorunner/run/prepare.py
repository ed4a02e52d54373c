"""Prepare: validate the payload and the target; decide the run id and output location."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from studiorunner import catalog
from studiorunner import notebook as nbtools
from studiorunner.errors import PayloadInvalid
from studiorunner.parameters import check_injection
from studiorunner.payload import RunSpec, validate_payload
from studiorunner.recovery import resume_notebook
from studiorunner.run import hold
from studiorunner.run.services import Services
from studiorunner.run.state import RunRecord

_RUN_ID = re.compile(r"[^A-Za-z0-9_.-]+")


def prepare(event: dict[str, Any], services: Services) -> RunRecord:
    """Validate the payload and the target; decide the run id and output location.

    ``event`` is ``{"payload": …, "execution": <the execution's name>}``; the result becomes
    the state's ``run`` (a :class:`RunRecord`).
    """
    spec = validate_payload(event.get("payload"), max_run_seconds=services.config.max_run_seconds)
    target = services.config.target(spec.target)
    if spec.instance_type and not catalog.kind(target.type).kernel_instance_type:
        kinds = ", ".join(k.name for k in catalog.TARGET_KINDS.values() if k.kernel_instance_type)
        raise PayloadInvalid(
            f"'kernel.instance_type' only applies to {kinds} targets; target {target.name!r} is {target.type}"
        )
    if not services.config.bucket:
        raise PayloadInvalid("The deployment has no output bucket (STUDIO_RUNNER_BUCKET is empty)")
    run_id = _RUN_ID.sub("-", str(event.get("execution") or "")).strip("-") or f"run-{int(services.clock())}"
    source = spec.notebook or spec.notebook_s3 or ""
    output_uri = None
    if source:
        output_uri = f"s3://{services.config.bucket}/{nbtools.output_key(run_id, source)}"
        if spec.notebook_s3:
            nb = services.notebooks().read(spec.notebook_s3)  # NotebookNotFound now, before anything starts
            if spec.parameters:  # names and values by the notebook's language, now too
                check_injection(nb, spec.parameters, kernel_name=spec.kernel_name, language=spec.kernel_language)
    started = services.clock()
    resume = _take_over(spec, target.name, run_id, output_uri, services) if spec.recovery.resume else None
    return RunRecord(
        run_id=run_id,
        target=target.name,
        target_type=target.type,
        spec=spec,
        output_uri=output_uri,
        commands_log_uri=f"s3://{services.config.bucket}/runs/{run_id}/commands.log" if spec.commands else None,
        started_at=started,
        deadline=started + spec.timeouts.run_seconds if spec.timeouts.run_seconds else None,
        resume=resume,
    )


def _take_over(spec: RunSpec, target: str, run_id: str, output_uri: str | None,
               services: Services) -> dict[str, Any]:
    """A resume: check the held run, write the notebook this run carries on (the held run's
    outputs up to the resume point, the edited cells after), then claim the held kernel —
    last, so that a refused resume leaves the hold as it was."""


    resume = spec.recovery.resume
    assert resume is not None
    record = hold.read_record(services, resume.run_id)
    if record.target != target:
        raise PayloadInvalid(f"run {resume.run_id} ran on target {record.target!r}, not {target!r}: "
                             f"a resume runs in the held run's kernel")
    if output_uri is None:
        raise PayloadInvalid("a resume carries on a notebook: give the held run's 'notebook' or 'notebook_s3'")
    store = services.notebooks()
    edited = store.read(resume.notebook_s3) if resume.notebook_s3 else None
    now = datetime.now(UTC)
    nb, index, number = resume_notebook(store.read(record.output_uri), edited, resume.from_cell,
                                        source_run=resume.run_id, when=now.isoformat())
    to_run = [i for i in nbtools.code_cells_to_run(nb) if i >= index]
    meta = nb.metadata.setdefault("studio_runner", {})
    meta.update(run_id=run_id, status="running", output_uri=output_uri, end_time=None, error=None,
                cells_total=len(to_run))
    store.write(output_uri, nb)
    # Last: once claimed, the held kernel is this run's to remove, and only a RunRecord that
    # reached the state tells Cleanup so (a Prepare that failed after the claim would leak it).
    hold.claim(services, resume.run_id, by=run_id)
    return {"source_run": resume.run_id, "from_index": index, "from_cell": number, "cells_to_run": len(to_run),
            "kernel": record.kernel, "target_created": bool(record.target_progress.get("created")),
            "slot_owner": record.slot_owner}
