"""The run payload: what ``start-execution``, a schedule and the S3 trigger pass in.

``validate_payload`` turns the raw execution input into a :class:`RunSpec` or raises
:class:`PayloadInvalid` naming every problem at once, before anything starts.
Unknown keys are an error: a typo such as ``parmeters`` must not be silently ignored.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from studiorunner.errors import PayloadInvalid
from studiorunner.recovery import Recovery, recovery_from_payload
from studiorunner.translators import KERNEL_OVERRIDES, LANGUAGES

S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])/(?P<key>.+)$")
CLEANUP_POLICIES = ("if_created", "always", "never")
#: What a run writes to S3. The executed notebook is the run's record, so it is always written.
OUTPUT_FORMATS = ("notebook", "html")

TOP_LEVEL_KEYS = {
    "target", "notebook", "notebook_s3", "parameters", "kernel", "timeouts", "cleanup",
    "allow_errors", "write_back", "commands", "allow_command_errors", "output_formats", "schedule", "cwd",
    "retry", "on_failure", "attempt", "resume",  # studiorunner.recovery
    "html_report",
}
KERNEL_KEYS = {"name", "instance_type", "language"}
TIMEOUT_KEYS = {"cell_seconds", "run_seconds", "command_seconds", "start_seconds", "queue_seconds"}
CLEANUP_KEYS = {"app"}
#: ``schedule``: set by a schedule on the runs it starts (the CheckOverlap state reads it).
SCHEDULE_KEYS = {"name", "overlap"}
#: What a schedule's fire does while its previous run still runs: end at once as skipped,
#: wait for it, or run beside it.
OVERLAP_POLICIES = ("skip", "queue", "allow")
SCHEDULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")

DEFAULT_START_SECONDS = 2400  # images outside the warm pool take 10–30 min to start (REAL-STUDIO A5)

#: The largest payload accepted, as compact UTF-8 JSON. The validated payload rides in
#: every state of the execution (``run.spec``), beside the kernel, cursor and command
#: results, and Step Functions fails a state over 256 KiB with States.DataLimitExceeded,
#: which no ``States.ALL`` Catch sees: so the payload gets a quarter of that, refused up
#: front. Measured: 10,000 short parameters are ~148 KB.
MAX_PAYLOAD_BYTES = 64 * 1024
#: How many problems a PayloadInvalid message lists (the cause must stay small too).
MAX_PROBLEMS_LISTED = 20


@dataclass
class Timeouts:
    cell_seconds: float | None = None
    run_seconds: float | None = None
    command_seconds: float | None = None
    start_seconds: float = DEFAULT_START_SECONDS
    queue_seconds: float | None = None  # waiting for a free slot on the target (None: until the run's own limit)


@dataclass
class RunSpec:
    """A validated payload. Everything here is small and holds no secret."""

    target: str | None
    notebook: str | None = None
    notebook_s3: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    kernel_name: str | None = None
    kernel_language: str | None = None  # the parameters' language, over the notebook's (papermill's -l)
    instance_type: str | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    cleanup_app: str = "if_created"
    allow_errors: bool = False
    write_back: bool = False
    commands: list[str] = field(default_factory=list)
    allow_command_errors: bool = False
    output_formats: list[str] = field(default_factory=lambda: ["notebook"])
    recovery: Recovery = field(default_factory=Recovery)  # retry, on_failure, attempt
    html_report: bool = False  # the page without code or the injected-parameters cell
    cwd: str | None = None  # the kernel's working folder in the target's tree (papermill's --cwd); None: the notebook's

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RunSpec:
        data = dict(raw)
        data["timeouts"] = Timeouts(**data.get("timeouts", {}))
        data["recovery"] = Recovery.from_dict(data.get("recovery"))
        return cls(**data)


def _positive_number(value: Any, where: str, problems: list[str]) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        problems.append(f"{where} must be a positive number of seconds, got {value!r}")
        return None
    return value


def _unknown(keys: set[str], allowed: set[str], where: str, problems: list[str]) -> None:
    for key in sorted(keys - allowed):
        problems.append(f"unknown key {where}{key!r} (allowed: {', '.join(sorted(allowed))})")


def _text_problem(text: str) -> str | None:
    """Why ``text`` cannot travel to the kernel or terminal, or None."""
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        return f"contains U+{ord(bad):04X}, which cannot be encoded as UTF-8 (a lone surrogate)"
    return None


def _value_problems(value: Any, where: str, problems: list[str], depth: int = 0) -> None:
    """A parameter value must be plain JSON that encodes as UTF-8 (it becomes Python source)."""
    if depth > 32:
        problems.append(f"{where} is nested more than 32 levels deep")
    elif isinstance(value, str):
        if (why := _text_problem(value)) and "NUL" not in why:
            problems.append(f"{where} {why}")
    elif isinstance(value, float) and not math.isfinite(value):
        problems.append(f"{where} is {value!r}, which JSON cannot carry")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append(f"{where} has a non-string key {key!r}")
            elif (why := _text_problem(key)) and "NUL" not in why:
                problems.append(f"{where} has a key that {why}")
            _value_problems(item, f"{where}[{key!r}]", problems, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _value_problems(item, f"{where}[{i}]", problems, depth + 1)
    elif value is not None and not isinstance(value, (bool, int, float)):
        problems.append(f"{where} is a {type(value).__name__}, not a JSON value")


def _a_name_in_some_language(name: str) -> bool:
    return any(translator.name_problem(name) is None
               for translator in {*LANGUAGES.values(), *KERNEL_OVERRIDES.values()})


def _size_problem(raw: Mapping[str, Any]) -> str | None:
    try:
        size = len(json.dumps(raw, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))
    except (TypeError, ValueError):
        return None  # reported value by value
    if size > MAX_PAYLOAD_BYTES:
        return (
            f"the payload is {size:,} bytes; at most {MAX_PAYLOAD_BYTES:,} ({MAX_PAYLOAD_BYTES // 1024} KiB) are "
            f"accepted, because it travels in every state of the execution and Step Functions limits a state to "
            f"256 KiB: put large inputs in a file the notebook reads (e.g. an S3 object) and pass its name"
        )
    return None


def _output_formats(raw: Mapping[str, Any], *, has_notebook: bool, problems: list[str]) -> list[str]:
    formats = raw.get("output_formats", ["notebook"])
    allowed = ", ".join(f'"{f}"' for f in OUTPUT_FORMATS)
    if not isinstance(formats, list) or not formats:
        problems.append(f"'output_formats' must be a non-empty list of {allowed}, got {formats!r}")
        return ["notebook"]
    unknown = [f for f in formats if f not in OUTPUT_FORMATS]
    if unknown:
        problems.append(f"'output_formats' has unknown format(s) {unknown!r} (allowed: {allowed})")
    elif "notebook" not in formats:
        problems.append("'output_formats' must include \"notebook\": the executed notebook is the run's record "
                        f"and is always written (e.g. [\"notebook\", \"html\"]), got {formats!r}")
    elif "html" in formats and not has_notebook:
        problems.append("'output_formats' \"html\" renders the executed notebook: give 'notebook' or "
                        "'notebook_s3' (a commands-only run has none)")
    return [f for f in OUTPUT_FORMATS if f in formats]  # de-duplicated, in a fixed order


def _schedule_problems(schedule: Any, problems: list[str]) -> None:
    if schedule is None:
        return
    if not isinstance(schedule, Mapping):
        problems.append("'schedule' must be an object with 'name' and 'overlap'")
        return
    _unknown(set(schedule), SCHEDULE_KEYS, "schedule.", problems)
    name = schedule.get("name")
    if not isinstance(name, str) or not SCHEDULE_NAME.match(name):
        problems.append(f"'schedule.name' must be a schedule's name (1-63 letters, digits, '_' or '-'), got {name!r}")
    overlap = schedule.get("overlap", "skip")
    if overlap not in OVERLAP_POLICIES:
        problems.append(f"'schedule.overlap' must be one of {', '.join(OVERLAP_POLICIES)}, got {overlap!r}")


#: What makes a payload a batch (``studiorunner.run.batch`` plans it; here so that light callers,
#: the CLI and ``cdk synth``, can tell without loading the run's modules).
BATCH_KEYS = frozenset({"parameter_sets", "runs", "max_concurrency", "tolerated_failure_percentage"})


def payload_runs(payload: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The runs a payload stands for, each with a label for messages: the payload itself (label
    ``""``), or a batch's runs as PlanBatch builds them (``parameter_sets`` over the rest, or
    ``runs``), without ``schedule`` (a schedule's batch is the fire, not its runs). A batch with
    no usable set or run gives none: PlanBatch names that problem."""
    if not BATCH_KEYS & set(payload):
        return [("", dict(payload))]
    base = {k: v for k, v in payload.items() if k not in BATCH_KEYS and k != "schedule"}
    sets, runs = payload.get("parameter_sets"), payload.get("runs")
    if isinstance(sets, list):
        given = base.get("parameters")
        parameters: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
        return [(f"parameter set {i}: ", {**base, "parameters": {**parameters, **s}})
                for i, s in enumerate(sets) if isinstance(s, Mapping)]
    if isinstance(runs, list):
        return [(f"run {i}: ", dict(r)) for i, r in enumerate(runs) if isinstance(r, Mapping)]
    return []


def _invalid(problems: list[str]) -> PayloadInvalid:
    listed = problems[:MAX_PROBLEMS_LISTED]
    more = len(problems) - len(listed)
    text = "; ".join(listed) + (f"; and {more} more problem(s)" if more else "")
    return PayloadInvalid("Invalid payload: " + text, problems=listed, problem_count=len(problems))


def validate_payload(raw: Any, *, max_run_seconds: float | None = None) -> RunSpec:
    """Check ``raw`` against the payload schema; raise PayloadInvalid listing every problem."""
    if not isinstance(raw, Mapping):
        raise PayloadInvalid(f"The payload must be a JSON object, got {type(raw).__name__}")
    problems: list[str] = []
    if size_problem := _size_problem(raw):
        # Listing a huge payload's every problem would make a huge cause: the size is enough.
        raise _invalid([size_problem])
    _unknown(set(raw), TOP_LEVEL_KEYS, "", problems)

    target = raw.get("target")
    if target is not None and (not isinstance(target, str) or not target):
        problems.append("'target' must be a non-empty string naming a configured target")

    notebook, notebook_s3 = raw.get("notebook"), raw.get("notebook_s3")
    commands = raw.get("commands", [])
    if notebook is not None and notebook_s3 is not None:
        problems.append("give exactly one of 'notebook' and 'notebook_s3', not both")
    elif notebook is None and notebook_s3 is None and not commands:
        problems.append("give 'notebook' (a path in the target's file tree) or 'notebook_s3' (s3://bucket/key.ipynb), or 'commands'")
    if notebook is not None:
        if not isinstance(notebook, str) or not notebook.endswith(".ipynb"):
            problems.append(f"'notebook' must be a path ending in .ipynb, got {notebook!r}")
        elif notebook.startswith("/") or ".." in notebook.split("/"):
            problems.append(f"'notebook' must be relative to the Jupyter root without '..', got {notebook!r}")
        elif why := _text_problem(notebook):
            problems.append(f"'notebook' {why}")
    cwd = raw.get("cwd")
    if cwd is not None:
        if not isinstance(cwd, str) or cwd.startswith("/") or ".." in cwd.split("/"):
            problems.append(f"'cwd' must be a folder relative to the Jupyter root without '..', got {cwd!r}")
        elif why := _text_problem(cwd):
            problems.append(f"'cwd' {why}")
        elif not (notebook is not None or notebook_s3 is not None):
            problems.append("'cwd' is where the notebook's kernel runs: give 'notebook' or 'notebook_s3'")
        else:
            cwd = "" if cwd.strip("/") == "." else cwd.strip("/")
    if notebook_s3 is not None:
        if not isinstance(notebook_s3, str) or not S3_URI.match(notebook_s3) or not notebook_s3.endswith(".ipynb"):
            problems.append(f"'notebook_s3' must look like s3://bucket/key.ipynb, got {notebook_s3!r}")

    parameters = raw.get("parameters", {})
    if not isinstance(parameters, Mapping):
        problems.append("'parameters' must be an object of name → JSON value")
        parameters = {}
    for name, value in parameters.items():
        # Whether a name is a valid variable depends on the notebook's language ('class' is not
        # in Python, 'my.var' is in R): studiorunner.translators.check_parameters decides, where
        # the notebook is read (the CLI, Prepare for notebook_s3, StartKernel). Here only what
        # holds in every language.
        if not isinstance(name, str) or not name:
            problems.append(f"parameter name {name!r} must be a non-empty string")
        elif why := _text_problem(name):
            problems.append(f"parameter name {name!r} {why}")
        elif not _a_name_in_some_language(name):
            # Refused here, before anything starts, even where the notebook cannot be read yet
            # (a path in the target's tree, each run of a batch): no kernel could take it.
            problems.append(f"parameter name {name!r} is not a variable name in any kernel language "
                            f"papermill supports (Python, R, Julia, Scala, MATLAB, C#, F#, PowerShell, bash)")
        else:
            _value_problems(value, f"parameter {name!r}", problems)

    kernel = raw.get("kernel", {})
    if not isinstance(kernel, Mapping):
        problems.append("'kernel' must be an object with 'name' and/or 'instance_type'")
        kernel = {}
    _unknown(set(kernel), KERNEL_KEYS, "kernel.", problems)
    for key in KERNEL_KEYS & set(kernel):
        if not isinstance(kernel[key], str) or not kernel[key]:
            problems.append(f"'kernel.{key}' must be a non-empty string")

    raw_timeouts = raw.get("timeouts", {})
    if not isinstance(raw_timeouts, Mapping):
        problems.append("'timeouts' must be an object")
        raw_timeouts = {}
    _unknown(set(raw_timeouts), TIMEOUT_KEYS, "timeouts.", problems)
    timeouts = Timeouts(
        cell_seconds=_positive_number(raw_timeouts.get("cell_seconds"), "'timeouts.cell_seconds'", problems),
        run_seconds=_positive_number(raw_timeouts.get("run_seconds"), "'timeouts.run_seconds'", problems),
        command_seconds=_positive_number(raw_timeouts.get("command_seconds"), "'timeouts.command_seconds'", problems),
        start_seconds=_positive_number(raw_timeouts.get("start_seconds"), "'timeouts.start_seconds'", problems)
        or DEFAULT_START_SECONDS,
        queue_seconds=_positive_number(raw_timeouts.get("queue_seconds"), "'timeouts.queue_seconds'", problems),
    )
    if max_run_seconds and timeouts.run_seconds and timeouts.run_seconds > max_run_seconds:
        problems.append(
            f"'timeouts.run_seconds' is {timeouts.run_seconds:g} but the state machine stops every run "
            f"after {max_run_seconds:g} s; ask for at most that"
        )

    cleanup = raw.get("cleanup", {})
    if not isinstance(cleanup, Mapping):
        problems.append("'cleanup' must be an object")
        cleanup = {}
    _unknown(set(cleanup), CLEANUP_KEYS, "cleanup.", problems)
    cleanup_app = cleanup.get("app", "if_created")
    if cleanup_app not in CLEANUP_POLICIES:
        problems.append(f"'cleanup.app' must be one of {', '.join(CLEANUP_POLICIES)}, got {cleanup_app!r}")

    for flag in ("allow_errors", "write_back", "allow_command_errors", "html_report"):
        if flag in raw and not isinstance(raw[flag], bool):
            problems.append(f"'{flag}' must be true or false, got {raw[flag]!r}")

    if not isinstance(commands, list) or not all(isinstance(c, str) and c.strip() for c in commands):
        problems.append("'commands' must be a list of non-empty shell command strings")
        commands = []
    for i, command in enumerate(commands):
        if why := _text_problem(command):
            problems.append(f"command {i + 1} {why}: a terminal cannot carry it")

    _schedule_problems(raw.get("schedule"), problems)
    recovery = recovery_from_payload(raw, problems)

    output_formats = _output_formats(raw, has_notebook=notebook is not None or notebook_s3 is not None,
                                     problems=problems)
    if raw.get("html_report") is True and "html" not in output_formats:
        problems.append("'html_report' shapes the HTML page: add \"html\" to 'output_formats' "
                        "(e.g. [\"notebook\", \"html\"])")

    if problems:
        raise _invalid(problems)

    return RunSpec(
        target=target,
        notebook=notebook,
        notebook_s3=notebook_s3,
        parameters=dict(parameters),
        kernel_name=kernel.get("name"),
        kernel_language=kernel.get("language"),
        instance_type=kernel.get("instance_type"),
        timeouts=timeouts,
        cleanup_app=cleanup_app,
        allow_errors=raw.get("allow_errors", False),
        write_back=raw.get("write_back", False),
        commands=list(commands),
        allow_command_errors=raw.get("allow_command_errors", False),
        output_formats=output_formats,
        recovery=recovery,
        html_report=raw.get("html_report", False) is True,
        cwd=cwd if isinstance(cwd, str) else None,
    )
