"""The deployment's configuration: the ``studio_runner`` context of ``cdk.json``, validated.

Everything a run may touch (targets, their identifiers, their secrets) comes from here and
nowhere else: the state machine never accepts a domain, profile, URL or token from its
input. So a mistake here should stop ``cdk synth`` with a message naming the key, not
surface later as an AccessDenied inside a run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The library's config module is the one target schema (lambdas/ is on the path: app.py puts
# it there, as pytest.ini does for the tests).
from studiorunner.config import TARGET_NAME, TargetConfig, TargetConfigError

CONTEXT_KEY = "studio_runner"

_SCHEDULE_EXPRESSION = re.compile(r"^(cron|rate|at)\(.+\)$")
_INBOX_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9_.-]+)*/$")
# Values CloudWatch Logs accepts for a log group's retention.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
                      1096, 1827, 2192, 2557, 2922, 3288, 3653)
# Lambda's hard limit; RunCells hands over to its next invocation before it.
MAX_LAMBDA_TIMEOUT_SECONDS = 900


class ConfigError(ValueError):
    """The ``studio_runner`` context is invalid; the message starts with the offending key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"cdk.json context {key}: {problem}")
        self.key = key


# The one target schema (issue 12): the library's, so the Lambdas, the local stack and this
# validation cannot disagree on what a target needs.
Target = TargetConfig


@dataclass(frozen=True, kw_only=True)
class VpcPlacement:
    """Where every Lambda runs when the domain is locked in a VPC (README: VPC endpoints)."""

    vpc_id: str
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """An EventBridge Scheduler schedule that starts a run with ``payload``."""

    name: str
    expression: str
    timezone: str
    payload: dict[str, Any]
    description: str = ""
    overlap: str = "skip"  # a fire while the previous run still runs: skip, queue or allow

    @property
    def run_payload(self) -> dict[str, Any]:
        """What each run receives: the payload and the schedule it comes from (CheckOverlap reads it)."""
        return {**self.payload, "schedule": {"name": self.name, "overlap": self.overlap}}


@dataclass(frozen=True, kw_only=True)
class JupyterLabLifecycle:
    """The opt-in JupyterLab lifecycle configuration that installs and enables the Notebook Jobs
    backend in a Studio space (studiorunner_jupyterlab/studio.py writes its script)."""

    package: str  # what `pip install` takes: a version, a wheel's URL or path, a git URL
    targets: tuple[str, ...]  # offered as runtime environments, the first the default


@dataclass(frozen=True, kw_only=True)
class StudioRunnerConfig:
    targets: dict[str, Target]
    default_target: str
    # The targets exactly as configured (validated), for the steps' STUDIO_RUNNER_TARGETS.
    targets_context: dict[str, dict[str, Any]]
    schedules: tuple[Schedule, ...] = ()
    inbox_prefix: str = "inbox/"
    lambda_memory_mb: int = 1024
    run_cells_timeout_seconds: int = 900
    log_retention_days: int = 30
    max_run_hours: int = 24
    runs_retention_days: int | None = 365
    schedule_retry_attempts: int = 3
    notification_email: str | None = None
    notify_on_success: bool = False
    vpc: VpcPlacement | None = None
    # A chat webhook for the run messages: the Secrets Manager secret that holds its URL.
    notification_webhook_secret_arn: str | None = None
    # Where the fleet alarms (a target's failed runs, cleanup failures) are e-mailed, if anywhere.
    alarm_email: str | None = None
    jupyterlab_lifecycle_config: JupyterLabLifecycle | None = None

    @property
    def max_run_seconds(self) -> int:
        return self.max_run_hours * 3600


_TOP_LEVEL = {
    "targets", "default_target", "schedules", "inbox_prefix", "lambda_memory_mb",
    "run_cells_timeout_seconds", "log_retention_days", "max_run_hours", "runs_retention_days",
    "schedule_retry_attempts", "notification_email", "notify_on_success", "vpc",
    "notification_webhook_secret_arn", "alarm_email", "jupyterlab_lifecycle_config",
}
_WEBHOOK_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$")
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")


def load_config(raw: Any) -> StudioRunnerConfig:
    """Validate the ``studio_runner`` context; raise ConfigError naming the first bad key."""
    key = CONTEXT_KEY
    if raw is None:
        raise ConfigError(key, "missing: add a 'studio_runner' object to the context in cdk.json")
    _require_mapping(raw, key)
    _reject_unknown(raw, _TOP_LEVEL, key)

    targets_raw = raw.get("targets")
    if not isinstance(targets_raw, Mapping) or not targets_raw:
        raise ConfigError(f"{key}.targets", "must be a non-empty object of name -> target")
    targets: dict[str, Target] = {}
    targets_context: dict[str, dict[str, Any]] = {}
    for name, spec in targets_raw.items():
        try:
            targets[name] = TargetConfig.from_dict(name, spec)
        except TargetConfigError as error:
            where = f"{key}.targets.{name}" + (f".{error.key}" if error.key else "")
            raise ConfigError(where, error.problem) from error
        targets_context[name] = targets[name].to_dict()

    default_target = raw.get("default_target")
    if default_target not in targets:
        raise ConfigError(f"{key}.default_target",
                          f"{default_target!r} is not one of the targets {sorted(targets)}")

    schedules = tuple(_schedules(raw.get("schedules", []), targets, f"{key}.schedules"))

    inbox_prefix = raw.get("inbox_prefix", "inbox/")
    if not isinstance(inbox_prefix, str) or not _INBOX_PREFIX.match(inbox_prefix):
        raise ConfigError(f"{key}.inbox_prefix",
                          "must be a plain S3 prefix ending with '/', e.g. 'inbox/' "
                          "(letters, digits, '_', '.', '-'; it is matched against URL-encoded keys)")
    if inbox_prefix.startswith("runs/"):
        raise ConfigError(f"{key}.inbox_prefix", "must not be under 'runs/', where outputs are written")

    log_retention_days = _int(raw, "log_retention_days", 30, key)
    if log_retention_days not in LOG_RETENTION_DAYS:
        raise ConfigError(f"{key}.log_retention_days",
                          f"{log_retention_days} is not a CloudWatch Logs retention; use one of {LOG_RETENTION_DAYS}")

    runs_retention_days = raw.get("runs_retention_days", 365)
    if runs_retention_days is not None:
        runs_retention_days = _int(raw, "runs_retention_days", 365, key, minimum=1)

    email = raw.get("notification_email")
    if email is not None and (not isinstance(email, str) or not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email)):
        raise ConfigError(f"{key}.notification_email", "must be an e-mail address or null")
    alarm_email = raw.get("alarm_email")
    if alarm_email is not None and (not isinstance(alarm_email, str)
                                    or not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", alarm_email)):
        raise ConfigError(f"{key}.alarm_email", "must be an e-mail address or null")
    webhook = raw.get("notification_webhook_secret_arn")
    if webhook is not None and (not isinstance(webhook, str) or not _WEBHOOK_SECRET_ARN.match(webhook)):
        raise ConfigError(f"{key}.notification_webhook_secret_arn",
                          "must be a Secrets Manager secret ARN (arn:aws:secretsmanager:…:secret:…) or null")

    notify_on_success = raw.get("notify_on_success", False)
    if not isinstance(notify_on_success, bool):
        raise ConfigError(f"{key}.notify_on_success", f"must be true or false, got {notify_on_success!r}")

    return StudioRunnerConfig(
        targets=targets,
        default_target=default_target,
        targets_context=targets_context,
        schedules=schedules,
        inbox_prefix=inbox_prefix,
        lambda_memory_mb=_int(raw, "lambda_memory_mb", 1024, key, minimum=128, maximum=10240),
        run_cells_timeout_seconds=_int(raw, "run_cells_timeout_seconds", 900, key,
                                       minimum=60, maximum=MAX_LAMBDA_TIMEOUT_SECONDS),
        log_retention_days=log_retention_days,
        # Standard workflows run at most a year.
        max_run_hours=_int(raw, "max_run_hours", 24, key, minimum=1, maximum=365 * 24),
        runs_retention_days=runs_retention_days,
        schedule_retry_attempts=_int(raw, "schedule_retry_attempts", 3, key, minimum=0, maximum=185),
        notification_email=email,
        notify_on_success=notify_on_success,
        vpc=_vpc(raw.get("vpc"), f"{key}.vpc"),
        notification_webhook_secret_arn=webhook,
        alarm_email=alarm_email,
        jupyterlab_lifecycle_config=_jupyterlab(raw.get("jupyterlab_lifecycle_config"), targets, default_target,
                                                f"{key}.jupyterlab_lifecycle_config"),
    )


def _jupyterlab(raw: Any, targets: Mapping[str, Any], default_target: str, key: str) -> JupyterLabLifecycle | None:
    """``{"package": "studio-runner==0.1.0", "targets": ["analytics-space"]}``, or absent (none made)."""
    if raw is None:
        return None
    _require_mapping(raw, key)
    _reject_unknown(raw, {"package", "targets"}, key)
    package = raw.get("package", "studio-runner")
    if not isinstance(package, str) or not package.strip() or "\n" in package:
        raise ConfigError(f"{key}.package", "must be what `pip install` takes, e.g. 'studio-runner==0.1.0'")
    chosen = raw.get("targets", [default_target])
    if not isinstance(chosen, list) or not chosen or not all(isinstance(t, str) for t in chosen):
        raise ConfigError(f"{key}.targets", "must be a non-empty list of target names")
    unknown = [t for t in chosen if t not in targets]
    if unknown:
        raise ConfigError(f"{key}.targets", f"{unknown[0]!r} is not one of the targets {sorted(targets)}")
    return JupyterLabLifecycle(package=package.strip(), targets=tuple(chosen))


def _vpc(raw: Any, key: str) -> VpcPlacement | None:
    """Subnet and security group ids, not a lookup: ``cdk synth`` stays offline."""
    if raw is None:
        return None
    _require_mapping(raw, key)
    _reject_unknown(raw, {"vpc_id", "subnet_ids", "security_group_ids"}, key)
    vpc_id = raw.get("vpc_id")
    if not isinstance(vpc_id, str) or not _VPC_ID.match(vpc_id):
        raise ConfigError(f"{key}.vpc_id", f"{vpc_id!r} is not a VPC id like 'vpc-0abc1234'")
    ids: dict[str, tuple[str, ...]] = {}
    for field_name, pattern, example in (("subnet_ids", _SUBNET_ID, "subnet-0abc1234"),
                                         ("security_group_ids", _SECURITY_GROUP_ID, "sg-0abc1234")):
        values = raw.get(field_name)
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{key}.{field_name}", "required: a non-empty list of ids")
        for index, value in enumerate(values):
            if not isinstance(value, str) or not pattern.match(value):
                raise ConfigError(f"{key}.{field_name}[{index}]", f"{value!r} is not an id like '{example}'")
        ids[field_name] = tuple(values)
    return VpcPlacement(vpc_id=vpc_id, subnet_ids=ids["subnet_ids"], security_group_ids=ids["security_group_ids"])


def _schedules(raw: Any, targets: Mapping[str, Target], key: str) -> list[Schedule]:
    """Each schedule checked as ``studio-runner schedule create`` checks one: the expression and
    time zone by the same module, the payload by the run's own validation (a typo such as
    ``notebok`` fails the synth naming the schedule, not the run at 06:00 the next day)."""
    from studiorunner.errors import PayloadInvalid
    from studiorunner.payload import OVERLAP_POLICIES, payload_runs, validate_payload
    from studiorunner_cli.schedules.expressions import ExpressionInvalid, check_timezone, parse

    if not isinstance(raw, list):
        raise ConfigError(key, "must be a list of schedules")
    schedules: list[Schedule] = []
    seen: set[str] = set()
    for index, spec in enumerate(raw):
        where = f"{key}[{index}]"
        _require_mapping(spec, where)
        _reject_unknown(spec, {"name", "expression", "timezone", "payload", "description", "overlap"}, where)
        name = spec.get("name")
        if not isinstance(name, str) or not TARGET_NAME.match(name):
            raise ConfigError(f"{where}.name", "required: 1-63 letters, digits, '_' or '-'")
        if name in seen:
            raise ConfigError(f"{where}.name", f"{name!r} is used by another schedule")
        seen.add(name)
        timezone = spec.get("timezone", "UTC")
        try:
            check_timezone(timezone)
        except ExpressionInvalid as error:
            raise ConfigError(f"{where}.timezone", f"schedule {name!r}: {error}") from error
        expression = spec.get("expression")
        if not isinstance(expression, str) or not _SCHEDULE_EXPRESSION.match(expression):
            raise ConfigError(f"{where}.expression", f"schedule {name!r}: must be 'cron(…)', 'rate(…)' or 'at(…)'")
        try:
            expression = parse(expression, timezone).text
        except ExpressionInvalid as error:
            raise ConfigError(f"{where}.expression", f"schedule {name!r}: {error}") from error
        overlap = spec.get("overlap", "skip")
        if overlap not in OVERLAP_POLICIES:
            raise ConfigError(f"{where}.overlap", f"schedule {name!r}: one of {', '.join(OVERLAP_POLICIES)}, got {overlap!r}")
        payload = spec.get("payload")
        if not isinstance(payload, Mapping):
            raise ConfigError(f"{where}.payload", "required: the run's input object (see the payload schema)")
        if "target" in payload and payload["target"] not in targets:
            raise ConfigError(f"{where}.payload.target", f"{payload['target']!r} is not one of the targets {sorted(targets)}")
        if "schedule" in payload:
            raise ConfigError(f"{where}.payload.schedule", f"schedule {name!r}: set by the schedule itself; leave it out")
        schedule = Schedule(name=name, expression=expression, timezone=timezone, payload=dict(payload),
                            description=spec.get("description", ""), overlap=overlap)
        for label, child in payload_runs(schedule.run_payload):
            try:
                validate_payload(child)
            except PayloadInvalid as error:
                raise ConfigError(f"{where}.payload", f"schedule {name!r}: {label}{error.message}") from error
        if not isinstance(schedule.description, str):
            raise ConfigError(f"{where}.description", "must be a string")
        schedules.append(schedule)
    return schedules


def _int(raw: Mapping[str, Any], name: str, default: int, key: str, *,
         minimum: int | None = None, maximum: int | None = None) -> int:
    value = raw.get(name, default)
    # bool is an int in Python; `true` in JSON is a typo here, not 1.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{key}.{name}", f"must be an integer, got {value!r}")
    if minimum is not None and value < minimum or maximum is not None and value > maximum:
        raise ConfigError(f"{key}.{name}", f"must be between {minimum} and {maximum}, got {value}")
    return value


def _require_mapping(value: Any, key: str) -> None:
    if not isinstance(value, Mapping):
        raise ConfigError(key, f"must be an object, got {type(value).__name__}")


def _reject_unknown(value: Mapping[str, Any], allowed: set[str], key: str) -> None:
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}", f"unknown key (allowed: {sorted(allowed)})")
