"""``studio-runner run NOTEBOOK --parameter-sets sets.json|sets.yaml``: one run per set (a batch).

The payload gets ``parameter_sets`` (and ``max_concurrency``); the state machine starts one
child run per set through a Map state (lambdas/studiorunner/run/batch.py). Here: read the
sets, check every child payload before anything starts, and when the batch ends write one
executed notebook per set under ``-o OUT_DIR`` (``<stem>-<index>.ipynb``) and name each
failing set.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from studiorunner_cli.parameters import UsageError

BATCH_RESULT = re.compile(r"batch result: (s3://\S+)")


def load_parameter_sets(name: str) -> list[dict[str, Any]]:
    """A JSON or YAML file holding a list of parameter objects."""
    path = Path(name).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read --parameter-sets {name}: {exc.strerror}") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - JSON or YAML syntax: say which file
        raise UsageError(f"--parameter-sets {name} is not valid {'YAML' if path.suffix.lower() in ('.yaml', '.yml') else 'JSON'}: {exc}") from None
    if not isinstance(data, list) or not data or not all(isinstance(item, dict) for item in data):
        raise UsageError(f"--parameter-sets {name} must hold a non-empty list of objects (name: value)")
    return data


def validate_batch(payload: dict[str, Any]) -> None:
    """Each child payload, as PlanBatch will check it (the target is the deployment's to check)."""
    from studiorunner.errors import PayloadInvalid
    from studiorunner.payload import validate_payload
    # studiorunner.run.batch.BATCH_KEYS (not imported: usage errors must not load the run's modules)
    base = {k: v for k, v in payload.items()
            if k not in ("parameter_sets", "runs", "max_concurrency", "tolerated_failure_percentage")}
    for index, params in enumerate(payload.get("parameter_sets") or []):
        try:
            validate_payload({**base, "parameters": {**base.get("parameters", {}), **params}})
        except PayloadInvalid as exc:
            raise UsageError(f"PayloadInvalid: set {index}: {exc.message}") from None


def batch_result(runs, info) -> dict[str, Any] | None:
    """The batch's result: the execution's output, or (a failed batch) the copy in S3 its cause names."""
    if info.output and "runs" in info.output and "result_uri" in info.output:
        uri = info.output["result_uri"]
        body = runs.get_uri(uri)
        return json.loads(body) if body else info.output
    match = BATCH_RESULT.search(info.cause or "")
    if match:
        body = runs.get_uri(match.group(1))
        return json.loads(body) if body else None
    return None


def report_batch(args, runs, info, result: dict[str, Any], default_dir: Path | None, elapsed: float) -> int:
    """Write one executed notebook per set; print the summary; exit 1 naming the failing sets."""
    out_dir = Path(args.output).expanduser() if args.output else default_dir
    stem = Path(args.notebook or "run").stem
    written = 0
    for child in result.get("runs", []):
        uri = (child.get("output") or {}).get("output_notebook")
        if not uri:
            uri = _uri_in(child.get("cause"))
        body = runs.get_uri(uri) if uri and out_dir else None
        if body is not None and uri and out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / f"{stem}-{child['index']}.ipynb").write_bytes(body)
            written += 1
            page = runs.get_uri(uri[: -len(".ipynb")] + ".html") if uri.endswith(".ipynb") else None
            if page is not None:  # the run asked for output_formats "html"
                (out_dir / f"{stem}-{child['index']}.html").write_bytes(page)
    failed = [c for c in result.get("runs", []) if c.get("status") != "SUCCEEDED"]
    total = result.get("total", len(result.get("runs", [])))
    where = f"; {written} executed notebooks in {out_dir}" if written else ""
    if info.status == "SUCCEEDED":
        print(f"SUCCEEDED in {elapsed:.1f}s: {total - len(failed)}/{total} runs succeeded{where}")
        for child in failed:
            print(f"  set {child['index']} ({child['run_id']}) {child['status']} (tolerated): {child.get('error')}")
        return 0
    print(f"{info.status} in {elapsed:.1f}s: {len(failed)} of {total} runs failed{where}", file=sys.stderr)
    for child in failed:
        cause = (child.get("cause") or "").splitlines()[0][:300] if child.get("cause") else ""
        print(f"  set {child['index']} ({child['run_id']}) {child['status']}: {child.get('error')}: {cause}",
              file=sys.stderr)
    return 1


def _uri_in(cause: str | None) -> str | None:
    match = re.search(r"s3://\S+?\.ipynb", cause or "")
    return match.group(0) if match else None
