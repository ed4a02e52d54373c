"""The deployment's configuration: the ``studio_runner`` context of ``cdk.json``, validated.

Everything a run may touch (targets, their identifiers, their secrets) comes from here and
nowhere else: the state machine never accepts a domain, profile, URL or token from its
input. So a mistake here should stop ``cdk synth`` with a message naming the key, not
surface later as an AccessDenied inside a run.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

CONTEXT_KEY = "studio_runner"

# Names end up in S3 keys (`<inbox>/<target>/…`) and in construct ids: keep them plain.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_DOMAIN_ID = re.compile(r"^d-[a-z0-9]{1,61}$")
# SageMaker user profile, space and notebook instance names share this pattern.
_SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$")
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


@dataclass(frozen=True, kw_only=True)
class StudioSpaceTarget:
    """A current Studio JupyterLab space, reached through its owner's user profile."""

    name: str
    domain_id: str
    user_profile: str
    space_name: str
    region: str | None = None
    type: str = "studio-space"


@dataclass(frozen=True, kw_only=True)
class StudioClassicTarget:
    """A Studio Classic user profile (JupyterServer app ``default``)."""

    name: str
    domain_id: str
    user_profile: str
    region: str | None = None
    type: str = "studio-classic"


@dataclass(frozen=True, kw_only=True)
class NotebookInstanceTarget:
    """A SageMaker notebook instance."""

    name: str
    instance_name: str
    region: str | None = None
    type: str = "notebook-instance"


@dataclass(frozen=True, kw_only=True)
class JupyterTarget:
    """Any Jupyter Server, with its token in Secrets Manager."""

    name: str
    url: str
    token_secret_arn: str
    region: str | None = None
    type: str = "jupyter"


Target = Union[StudioSpaceTarget, StudioClassicTarget, NotebookInstanceTarget, JupyterTarget]


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """An EventBridge Scheduler schedule that starts a run with ``payload``."""

    name: str
    expression: str
    timezone: str
    payload: dict[str, Any]
    description: str = ""


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

    @property
    def max_run_seconds(self) -> int:
        return self.max_run_hours * 3600


_TARGET_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    # type: (required keys, optional keys) besides "type" and "region"
    "studio-space": ({"domain_id", "user_profile", "space_name"}, set()),
    "studio-classic": ({"domain_id", "user_profile"}, set()),
    "notebook-instance": ({"name"}, set()),
    "jupyter": ({"url", "token_secret_arn"}, set()),
}

_TOP_LEVEL = {
    "targets", "default_target", "schedules", "inbox_prefix", "lambda_memory_mb",
    "run_cells_timeout_seconds", "log_retention_days", "max_run_hours", "runs_retention_days",
    "schedule_retry_attempts", "notification_email",
}


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
        targets[name] = _target(name, spec, f"{key}.targets.{name}")
        targets_context[name] = dict(spec)

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
    )


def _target(name: str, spec: Any, key: str) -> Target:
    if not _NAME.match(name):
        raise ConfigError(key, "target names are 1-63 letters, digits, '_' or '-' (they appear in S3 keys)")
    _require_mapping(spec, key)
    kind = spec.get("type")
    if kind not in _TARGET_FIELDS:
        raise ConfigError(f"{key}.type", f"{kind!r} is not one of {sorted(_TARGET_FIELDS)}")
    required, optional = _TARGET_FIELDS[kind]
    _reject_unknown(spec, required | optional | {"type", "region", "max_concurrent_runs"}, key)
    # Runs at once on this target (run/slots.py); absent: 1 for a space or notebook instance, no
    # limit otherwise (studiorunner.config.DEFAULT_MAX_CONCURRENT_RUNS); null: no limit.
    limit = spec.get("max_concurrent_runs")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000):
        raise ConfigError(f"{key}.max_concurrent_runs",
                          f"must be an integer from 1 to 1000, or null for no limit, got {limit!r}")
    for field_name in sorted(required):
        if not isinstance(spec.get(field_name), str) or not spec[field_name]:
            raise ConfigError(f"{key}.{field_name}", f"required for a {kind} target (a non-empty string)")
    region = spec.get("region")
    if region is not None and (not isinstance(region, str) or not _REGION.match(region)):
        raise ConfigError(f"{key}.region", f"{region!r} is not an AWS region name like 'eu-west-1'")

    if kind in ("studio-space", "studio-classic"):
        if not _DOMAIN_ID.match(spec["domain_id"]):
            raise ConfigError(f"{key}.domain_id", f"{spec['domain_id']!r} is not a SageMaker domain id like 'd-abc123'")
        _sagemaker_name(spec["user_profile"], f"{key}.user_profile")
    if kind == "studio-space":
        _sagemaker_name(spec["space_name"], f"{key}.space_name")
        return StudioSpaceTarget(name=name, domain_id=spec["domain_id"], user_profile=spec["user_profile"],
                                 space_name=spec["space_name"], region=region)
    if kind == "studio-classic":
        return StudioClassicTarget(name=name, domain_id=spec["domain_id"], user_profile=spec["user_profile"],
                                   region=region)
    if kind == "notebook-instance":
        _sagemaker_name(spec["name"], f"{key}.name")
        return NotebookInstanceTarget(name=name, instance_name=spec["name"], region=region)
    if not spec["url"].startswith("https://") and not spec["url"].startswith("http://"):
        raise ConfigError(f"{key}.url", "must be an http(s):// URL of the Jupyter server")
    if not _SECRET_ARN.match(spec["token_secret_arn"]):
        raise ConfigError(f"{key}.token_secret_arn", "must be a Secrets Manager secret ARN (arn:aws:secretsmanager:…)")
    return JupyterTarget(name=name, url=spec["url"], token_secret_arn=spec["token_secret_arn"], region=region)


def _schedules(raw: Any, targets: Mapping[str, Target], key: str) -> list[Schedule]:
    if not isinstance(raw, list):
        raise ConfigError(key, "must be a list of schedules")
    schedules: list[Schedule] = []
    seen: set[str] = set()
    for index, spec in enumerate(raw):
        where = f"{key}[{index}]"
        _require_mapping(spec, where)
        _reject_unknown(spec, {"name", "expression", "timezone", "payload", "description"}, where)
        name = spec.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{where}.name", "required: 1-63 letters, digits, '_' or '-'")
        if name in seen:
            raise ConfigError(f"{where}.name", f"{name!r} is used by another schedule")
        seen.add(name)
        expression = spec.get("expression")
        if not isinstance(expression, str) or not _SCHEDULE_EXPRESSION.match(expression):
            raise ConfigError(f"{where}.expression", "must be 'cron(…)', 'rate(…)' or 'at(…)'")
        if expression.startswith("cron(") and len(expression[5:-1].split()) != 6:
            raise ConfigError(f"{where}.expression",
                              "a Scheduler cron has six fields: minutes hours day-of-month month day-of-week year")
        timezone = spec.get("timezone", "UTC")
        if not isinstance(timezone, str) or not _known_timezone(timezone):
            raise ConfigError(f"{where}.timezone", f"{timezone!r} is not an IANA time zone like 'Europe/Paris'")
        payload = spec.get("payload")
        if not isinstance(payload, Mapping):
            raise ConfigError(f"{where}.payload", "required: the run's input object (see the payload schema)")
        if "target" in payload and payload["target"] not in targets:
            raise ConfigError(f"{where}.payload.target", f"{payload['target']!r} is not one of the targets {sorted(targets)}")
        description = spec.get("description", "")
        if not isinstance(description, str):
            raise ConfigError(f"{where}.description", "must be a string")
        schedules.append(Schedule(name=name, expression=expression, timezone=timezone,
                                  payload=dict(payload), description=description))
    return schedules


def _known_timezone(name: str) -> bool:
    available = zoneinfo.available_timezones()
    # Without a tz database on the machine we cannot tell: let Scheduler judge at deploy.
    return not available or name in available or name == "UTC"


def _sagemaker_name(value: str, key: str) -> None:
    if not _SAGEMAKER_NAME.match(value):
        raise ConfigError(key, f"{value!r} is not a SageMaker name (letters, digits and '-', at most 63)")


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
