"""Fan-out: one request that runs a notebook over many parameter sets (or many payloads).

A batch payload is an ordinary payload plus ``parameter_sets: [{…}, …]`` (each set merged
over ``parameters``) — or ``runs: [{payload}, …]`` — and optionally ``max_concurrency`` and
``tolerated_failure_percentage``. The state machine plans the batch (``plan_batch``), then a
Map state starts one child execution *of the same state machine* per item
(``states:startExecution.sync:2``), so every child is an ordinary run: its own slot on its
target, its own Cleanup, its own output notebook. ``summarize_batch`` then reads how each
child ended (``DescribeExecution``) and decides the batch's outcome.

An inline Map runs at most 40 iterations at once and keeps every iteration's events in
the parent's history (25,000 at most): above ``INLINE_MAX_ITEMS`` items or that
concurrency, the batch takes the Distributed Map (each iteration a child workflow).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from studiorunner.errors import BatchFailed, PayloadInvalid, StudioRunnerError
from studiorunner.payload import BATCH_KEYS, validate_payload
from studiorunner.run.cleanup import error_message
from studiorunner.run.services import Services

DEFAULT_MAX_CONCURRENCY = 10
#: An inline Map's concurrency tops out at 40; its events count in the parent's history.
INLINE_MAX_ITEMS = 40
#: The items travel in the state (256 KiB at most) and the result lists every child.
MAX_ITEMS = 500
MAX_ITEMS_BYTES = 160_000
#: The execution's output lists every child up to this many; beyond, only the failed ones
#: (the whole result is always in S3 at ``result_uri``).
MAX_LISTED_RUNS = 100
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass
class BatchItem:
    index: int
    name: str  # the child execution's name, which is also its run id
    payload: dict[str, Any]


@dataclass
class BatchPlan:
    """What PlanBatch puts in ``$.batch``."""

    batch_id: str
    state_machine: str  # ARN: the children are executions of this same state machine
    items: list[BatchItem]
    max_concurrency: int
    tolerated_failure_percentage: float
    distributed: bool
    result_uri: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["count"] = len(self.items)
        return data


def is_batch(payload: Any) -> bool:
    return isinstance(payload, Mapping) and bool({"parameter_sets", "runs"} & set(payload))


def child_name(batch_id: str, index: int) -> str:
    """``<batch execution name>-<index>``: unique, ≤ 80 characters, the characters Step Functions allows."""
    suffix = f"-{index}"
    base = _NAME_CHARS.sub("-", batch_id)
    if len(base) + len(suffix) > 80:
        digest = hashlib.sha256(batch_id.encode()).hexdigest()[:8]
        base = f"{base[:80 - len(suffix) - 9]}-{digest}"
    return base + suffix


def plan_batch(payload: Any, services: Services, *, execution: str, state_machine: str) -> dict[str, Any]:
    """Validate a batch payload and every child payload in it; PayloadInvalid names each problem."""
    if not isinstance(payload, Mapping):
        raise PayloadInvalid(f"The payload must be a JSON object, got {type(payload).__name__}")
    problems: list[str] = []
    sets, runs = payload.get("parameter_sets"), payload.get("runs")
    # A schedule's batch: the overlap check was the batch's (CheckOverlap); its runs are not fires.
    base = {k: v for k, v in payload.items() if k not in BATCH_KEYS and k != "schedule"}
    children: list[dict[str, Any]] = []
    if sets is not None and runs is not None:
        problems.append("give 'parameter_sets' or 'runs', not both")
    elif sets is not None:
        if not isinstance(sets, list) or not sets or not all(isinstance(s, Mapping) for s in sets):
            problems.append("'parameter_sets' must be a non-empty list of objects (name → value)")
        else:
            base_parameters = base.get("parameters", {})
            if not isinstance(base_parameters, Mapping):
                base_parameters = {}  # validate_payload reports it
            children = [{**base, "parameters": {**base_parameters, **s}} for s in sets]
    else:
        if base:
            problems.append(f"with 'runs', every run is a whole payload: move {sorted(base)} into each run")
        if not isinstance(runs, list) or not runs or not all(isinstance(r, Mapping) for r in runs):
            problems.append("'runs' must be a non-empty list of payloads")
        else:
            children = [dict(r) for r in runs]

    if len(children) > MAX_ITEMS:
        problems.append(f"a batch runs at most {MAX_ITEMS} notebooks, got {len(children)}: split it")
    max_concurrency = payload.get("max_concurrency", DEFAULT_MAX_CONCURRENCY)
    if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or not 1 <= max_concurrency <= 1000:
        problems.append(f"'max_concurrency' must be an integer from 1 to 1000, got {max_concurrency!r}")
        max_concurrency = 1
    tolerated = payload.get("tolerated_failure_percentage", 0)
    if isinstance(tolerated, bool) or not isinstance(tolerated, (int, float)) or not 0 <= tolerated <= 100:
        problems.append(f"'tolerated_failure_percentage' must be a number from 0 to 100, got {tolerated!r}")
        tolerated = 0

    for index, child in enumerate(children):
        if BATCH_KEYS & set(child):
            problems.append(f"run {index}: a batch's runs cannot be batches themselves")
            continue
        try:
            spec = validate_payload(child, max_run_seconds=services.config.max_run_seconds)
            services.config.target(spec.target)
        except StudioRunnerError as exc:
            problems.append(f"run {index}: {exc.message}")
    if problems:
        raise PayloadInvalid("Invalid batch: " + "; ".join(problems), problems=problems)

    items = [BatchItem(index=i, name=child_name(execution, i), payload=child) for i, child in enumerate(children)]
    size = len(json.dumps([asdict(i) for i in items]))
    if size > MAX_ITEMS_BYTES:
        raise PayloadInvalid(f"Invalid batch: its runs take {size} bytes, more than the {MAX_ITEMS_BYTES} "
                             "a state can carry: split it, or share values through 'parameters'")
    max_concurrency = min(max_concurrency, len(items))
    return BatchPlan(
        batch_id=execution, state_machine=state_machine, items=items, max_concurrency=max_concurrency,
        tolerated_failure_percentage=float(tolerated),
        distributed=len(items) > INLINE_MAX_ITEMS or max_concurrency > INLINE_MAX_ITEMS,
        result_uri=f"s3://{services.config.bucket}/runs/{execution}/batch.json",
    ).to_dict()


@dataclass
class ChildResult:
    index: int
    run_id: str
    status: str  # SUCCEEDED | FAILED | TIMED_OUT | ABORTED | NOT_STARTED
    output: dict[str, Any] | None = None  # the child's result (output_notebook, counts, …)
    error: str | None = None
    cause: str | None = None

    def line(self, limit: int = 600) -> str:
        """``run 3 (<run id>) FAILED: CellExecutionError: Cell 2 …`` (a cause may be long: cut)."""
        cause = self.cause or ""
        cause = cause if len(cause) <= limit else cause[:limit] + "…"
        return f"run {self.index} ({self.run_id}) {self.status}: {self.error or 'no error name'}: {cause}"


@dataclass
class BatchResult:
    batch_id: str
    status: str
    total: int
    succeeded: int
    failed: int
    tolerated_failure_percentage: float
    result_uri: str
    runs: list[ChildResult] = field(default_factory=list)

    def to_dict(self, *, listed: int | None = None) -> dict[str, Any]:
        data = asdict(self)
        if listed is not None and len(self.runs) > listed:
            data["runs"] = [asdict(r) for r in self.runs if r.status != "SUCCEEDED"][:listed]
            data["runs_listed"] = "failed only: every run is in result_uri"
        return data


def _execution_arn(state_machine: str, name: str) -> str:
    return state_machine.replace(":stateMachine:", ":execution:", 1) + f":{name}"


def child_result(sfn, state_machine: str, item: Mapping[str, Any]) -> ChildResult:
    """How one child ended, from DescribeExecution (NOT_STARTED if it never began)."""
    try:
        desc = sfn.describe_execution(executionArn=_execution_arn(state_machine, item["name"]))
    except Exception as exc:  # noqa: BLE001 - ExecutionDoesNotExist, or a transient error: say so
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        return ChildResult(index=item["index"], run_id=item["name"], status="NOT_STARTED", error=code,
                           cause="the child execution was never started or cannot be described")
    output = json.loads(desc["output"]) if desc.get("output") else None
    return ChildResult(index=item["index"], run_id=item["name"], status=desc["status"], output=output,
                       error=desc.get("error"), cause=desc.get("cause"))


def summarize_batch(state: Mapping[str, Any], services: Services, *, sfn) -> dict[str, Any]:
    """SummarizeBatch: every child's run id, status and output; the batch's outcome.

    Returns the shape Cleanup returns (``status``, ``error``, ``cause``, ``result``), so the
    state machine ends a batch the way it ends a run.
    """
    batch = state.get("batch")
    error = state.get("error")
    if not batch:  # PlanBatch failed: the payload was invalid
        name, message = error_message(error)
        return {"status": "FAILED", "error": name or "PayloadInvalid", "cause": message,
                "result": {"status": "FAILED"}}
    runs = [child_result(sfn, batch["state_machine"], item) for item in batch["items"]]
    failed = [r for r in runs if r.status != "SUCCEEDED"]
    total = len(runs)
    allowed = total * batch["tolerated_failure_percentage"] / 100.0
    ok = not error and len(failed) <= allowed
    result = BatchResult(batch_id=batch["batch_id"], status="SUCCEEDED" if ok else "FAILED", total=total,
                         succeeded=total - len(failed), failed=len(failed),
                         tolerated_failure_percentage=batch["tolerated_failure_percentage"],
                         result_uri=batch["result_uri"], runs=runs)
    services.notebooks().write_bytes(batch["result_uri"], json.dumps(result.to_dict(), indent=1).encode(),
                                     content_type="application/json")
    outcome: dict[str, Any] = {"status": result.status, "result": result.to_dict(listed=MAX_LISTED_RUNS)}
    if ok:
        return outcome
    if error and not failed:
        name, message = error_message(error)
        outcome.update(error=name, cause=f"The batch stopped: {message}; batch result: {result.result_uri}")
        return outcome
    shown = "; ".join(r.line() for r in failed[:10]) + ("; …" if len(failed) > 10 else "")
    outcome.update(
        error=BatchFailed.__name__,
        cause=(f"{len(failed)} of {total} runs failed (tolerated: {batch['tolerated_failure_percentage']:g}%): "
               f"{shown}; batch result: {result.result_uri}"),
    )
    return outcome

