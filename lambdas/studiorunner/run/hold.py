"""Holding a failed run's kernel for a resume, and letting it go.

When a cell fails and the payload asks for it (``on_failure.hold_kernel_seconds``), Cleanup
keeps the run's kernel, session, app and concurrency slot instead of removing them
(:func:`keep`), and writes the hold's record beside the run's notebook
(``runs/<run id>/hold.json``). The execution does not end: the state machine owns the
timer (``CheckHold`` → ``WaitWhileHeld`` → ``CheckHold``…), so a held kernel can never be
forgotten. :func:`check_hold` ends the hold in one of three ways:

- a resume took it (``studio-runner resume``: its Prepare claimed it, :func:`claim`): the
  kernel, session, app and slot are the resume's now; nothing is removed;
- it expired: everything is removed exactly as Cleanup removes it;
- the execution was stopped (ExecutionEnded): the same, at once.

Who ends a hold is decided once, by whoever first creates ``runs/<run id>/hold-ended.json``
(S3's conditional create, ``If-None-Match: *``): a resume and an expiry can never both win.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from studiorunner.errors import NotebookNotFound, RunNotHeld
from studiorunner.run.services import Services
from studiorunner.run.slots import release_slot
from studiorunner.run.state import RunState

log = logging.getLogger(__name__)

#: How often a held run checks whether it was resumed or has expired (a Wait state between two
#: checks: a held run costs a few state transitions an hour, no Lambda time while it waits).
CHECK_SECONDS = 60


def hold_uri(bucket: str, run_id: str) -> str:
    return f"s3://{bucket}/runs/{run_id}/hold.json"


def _ended_key(run_id: str) -> str:
    return f"runs/{run_id}/hold-ended.json"


@dataclass
class HoldRecord:
    """What a resume needs of a held run (no secret: ids, URIs, times)."""

    run_id: str
    target: str
    until: float  # epoch seconds
    output_uri: str
    kernel: dict[str, Any]  # the run's KernelProgress
    target_progress: dict[str, Any]  # its TargetProgress (did it start the app?)
    slot_owner: str | None = None  # the execution ARN that holds the target's slot, if any

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> HoldRecord:
        raw = json.loads(data)
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


def until_text(until: float) -> str:
    return datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def keep(state: RunState, services: Services, now: float) -> dict[str, Any]:
    """Cleanup's part for a held run: record the hold; return the outcome's ``hold``."""
    run = state.run
    assert run is not None and run.output_uri
    seconds = run.spec.recovery.hold_kernel_seconds
    record = HoldRecord(run_id=run.run_id, target=run.target, until=now + seconds, output_uri=run.output_uri,
                        kernel=state.kernel.to_dict(), target_progress=state.target.to_dict(),
                        slot_owner=state.slot.owner if state.slot and state.slot.status == "acquired" else None)
    services.notebooks().write_bytes(hold_uri(services.config.bucket, run.run_id), record.to_json(),
                                     content_type="application/json")
    return {"status": "held", "until": record.until, "until_text": until_text(record.until),
            "wait_seconds": 0, "resume": f"studio-runner resume {run.run_id}"}


def _end(services: Services, run_id: str, by: str) -> str | None:
    """Decide who ends the hold: True for ``by`` if it is the first; else who did."""
    s3 = services.clients("s3")
    body = json.dumps({"by": by, "at": services.clock()}).encode()
    try:
        s3.put_object(Bucket=services.config.bucket, Key=_ended_key(run_id), Body=body, IfNoneMatch="*",
                      ContentType="application/json")
        return None
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "ConditionalRequestConflict"):
            raise
    ended = s3.get_object(Bucket=services.config.bucket, Key=_ended_key(run_id))["Body"].read()
    return str(json.loads(ended).get("by") or "someone")


def ended_by(services: Services, run_id: str) -> str | None:
    """Who ended ``run_id``'s hold (a resume's run id, "expiry", "stop"), or None while it holds."""
    try:
        data = services.clients("s3").get_object(Bucket=services.config.bucket, Key=_ended_key(run_id))["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    return str(json.loads(data).get("by") or "someone")


def read_record(services: Services, run_id: str) -> HoldRecord:
    try:
        data = services.notebooks().read_bytes(hold_uri(services.config.bucket, run_id))
    except NotebookNotFound:
        raise RunNotHeld(f"run {run_id} has no held kernel (it was not held, or is not a run of this stack)",
                         run=run_id) from None
    return HoldRecord.from_json(data)


def claim(services: Services, run_id: str, by: str) -> HoldRecord:
    """A resume takes the held run's kernel (Prepare); RunNotHeld when it cannot."""
    record = read_record(services, run_id)
    now = services.clock()
    if now >= record.until:
        raise RunNotHeld(f"the hold on run {run_id}'s kernel expired at {until_text(record.until)}: its kernel "
                         f"is gone; rerun it instead (studio-runner rerun {run_id})", run=run_id)
    winner = _end(services, run_id, by)
    if winner is not None:
        said = "expired" if winner == "expiry" else "was stopped" if winner == "stop" else f"was resumed by {winner}"
        raise RunNotHeld(f"run {run_id}'s hold {said}: its kernel is no longer held", run=run_id)
    return record


def release(raw_state: dict[str, Any], services: Services, by: str) -> dict[str, Any]:
    """End a hold that no resume took: remove the kernel, session, app and slot as Cleanup does.
    Never raises (what could not be done is in ``problems``)."""
    # Here, not at the top: run.cleanup imports this module (a cycle to break by moving
    # release_resources out of cleanup.py).
    from studiorunner.run.cleanup import describe, release_resources

    state = RunState.from_dict(raw_state)
    run_id = state.run.run_id if state.run else ""
    try:
        winner = _end(services, run_id, by)
    except Exception as exc:  # noqa: BLE001 - S3 unreachable: still release (a resume cannot claim without S3)
        log.warning("could not record the end of the hold: %s", describe(exc))
        winner = None
    if winner is not None and winner not in ("expiry", "stop"):
        return {"status": "resumed", "by": winner, "actions": [], "problems": []}
    report = release_resources(state, services)
    slot = release_slot(raw_state, services)
    if slot:
        report.actions.append(slot)
    for action in report.actions:
        log.info("hold released: %s", action)
    return {"status": "released", "by": by, "actions": report.actions, "problems": report.problems}


def check_hold(raw_state: dict[str, Any], services: Services) -> dict[str, Any]:
    """CheckHold: still held (how long to wait before looking again), resumed, or released now."""
    state = RunState.from_dict(raw_state)
    run_id = state.run.run_id if state.run else ""
    hold = (state.outcome or {}).get("hold") or {}
    until = float(hold.get("until") or 0)
    try:
        winner = ended_by(services, run_id)
    except Exception as exc:  # noqa: BLE001 - look again at the next check, or release at expiry
        log.warning("could not read the hold's state: %s: %s", type(exc).__name__, exc)
        winner = None
    if winner is not None and winner not in ("expiry", "stop"):
        return {"status": "resumed", "by": winner, "until": until}
    now = services.clock()
    if now >= until:
        return {**release(raw_state, services, "expiry"), "until": until}
    return {"status": "held", "until": until, "wait_seconds": max(1, int(min(CHECK_SECONDS, until - now + 1)))}
