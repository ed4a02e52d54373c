"""Prepare: validate the payload and the target; decide the run id and output location."""

from __future__ import annotations

import re
from typing import Any

from studiorunner import catalog
from studiorunner import notebook as nbtools
from studiorunner.errors import PayloadInvalid
from studiorunner.parameters import check_injection
from studiorunner.payload import validate_payload
from studiorunner.run.services import Services
from studiorunner.run.state import RunRecord

_RUN_ID = re.compile(r"[^A-Za-z0-9_.-]+")


def prepare(event: dict[str, Any], services: Services) -> dict[str, Any]:
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
    return RunRecord(
        run_id=run_id,
        target=target.name,
        target_type=target.type,
        spec=spec,
        output_uri=output_uri,
        commands_log_uri=f"s3://{services.config.bucket}/runs/{run_id}/commands.log" if spec.commands else None,
        started_at=started,
        deadline=started + spec.timeouts.run_seconds if spec.timeouts.run_seconds else None,
    ).to_dict()
