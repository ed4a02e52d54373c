"""Deploy-time configuration the steps read from their environment, and the one target schema.

Targets come only from here (``STUDIO_RUNNER_TARGETS``, written by the CDK app from
``cdk.json``): a payload names a target, it never supplies a domain, URL or token.
The kinds' schemas (:mod:`studiorunner.catalog`) and :meth:`TargetConfig.from_dict` are the one definition of a target:
the steps, the local stack and ``infra/config.py`` (which validates ``cdk.json`` at synth
time) all use them, so they cannot disagree on what a target needs.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from studiorunner.catalog import TARGET_KIND_NAMES, TARGET_KINDS
from studiorunner.errors import TargetNotAllowed

#: Target names appear in S3 keys (``<inbox>/<target>/…``) and construct ids: kept plain.
TARGET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_DOMAIN_ID = re.compile(r"^d-[a-z0-9]{1,61}$")
# SageMaker user profile, space and notebook instance names share this pattern.
_SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$")
_URL = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")


class TargetConfigError(ValueError):
    """A target's configuration is invalid. ``key`` is the offending key inside the target
    (``"type"``, ``"domain_id"``…; ``""`` for the target as a whole), ``problem`` says why."""

    def __init__(self, name: str, key: str, problem: str) -> None:
        where = f"target {name!r}" + (f" key {key!r}" if key else "")
        super().__init__(f"{where}: {problem}")
        self.target, self.key, self.problem = name, key, problem


def _check(pattern: re.Pattern[str], what: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if pattern.match(value) else f"{value!r} is not {what}"
    return check


#: The one target schema is the catalog's: each kind's required and optional keys in
#: ``cdk.json`` / ``STUDIO_RUNNER_TARGETS`` and its default ``max_concurrent_runs`` (None: no
#: limit, no slot is taken; any target may set a positive integer, or null; see run/slots.py).
TARGET_TYPES = TARGET_KIND_NAMES
#: Keys every type accepts that are not strings (checked on their own, below).
_NUMBER_KEYS = ("max_concurrent_runs",)

#: How each key's value is checked (a message when it is wrong, None when it is right).
_KEY_CHECKS: Mapping[str, Callable[[str], str | None]] = {
    "domain_id": _check(_DOMAIN_ID, "a SageMaker domain id like 'd-abc123'"),
    "user_profile": _check(_SAGEMAKER_NAME, "a SageMaker name (letters, digits and '-', at most 63)"),
    "space_name": _check(_SAGEMAKER_NAME, "a SageMaker name (letters, digits and '-', at most 63)"),
    "name": _check(_SAGEMAKER_NAME, "a SageMaker name (letters, digits and '-', at most 63)"),
    "url": _check(_URL, "an http(s):// URL of the Jupyter server"),
    "token_secret_arn": _check(_SECRET_ARN, "a Secrets Manager secret ARN (arn:aws:secretsmanager:…)"),
    "region": _check(_REGION, "an AWS region name like 'eu-west-1'"),
    "instance_type": _check(re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$"), "a SageMaker instance type like 'ml.t3.medium'"),
}


@dataclass(frozen=True)
class TargetConfig:
    """One configured place to run notebooks (a record; the behaviour is in ``studiorunner.targets``)."""

    name: str
    type: str
    domain_id: str | None = None
    user_profile: str | None = None
    space_name: str | None = None
    instance_name: str | None = None  # ``name`` in the configuration of a notebook-instance target
    url: str | None = None
    token_secret_arn: str | None = None
    region: str | None = None
    max_concurrent_runs: int | None = None  # None: no limit (no slot is taken)
    instance_type: str | None = None  # studio-space: the app's instance type (else the space's default)

    @classmethod
    def from_dict(cls, name: str, raw: Any) -> TargetConfig:
        """Validate one target against its kind's schema (the catalog); TargetConfigError names the first bad key."""
        if not isinstance(name, str) or not TARGET_NAME.match(name):
            raise TargetConfigError(str(name), "", "target names are 1-63 letters, digits, '_' or '-' "
                                                   "(they appear in S3 keys)")
        if not isinstance(raw, Mapping):
            raise TargetConfigError(name, "", f"must be an object, got {type(raw).__name__}")
        kind = raw.get("type")
        if not isinstance(kind, str) or kind not in TARGET_KINDS:
            raise TargetConfigError(name, "type", f"must be one of {', '.join(TARGET_TYPES)}, got {kind!r}")
        schema = TARGET_KINDS[kind]
        unknown = sorted(set(raw) - set(schema.required) - set(schema.optional) - {"type", *_NUMBER_KEYS})
        if unknown:
            allowed = ", ".join(sorted({"type", *schema.required, *schema.optional, *_NUMBER_KEYS}))
            raise TargetConfigError(name, unknown[0], f"is not a key of a {kind} target (allowed: {allowed})")
        missing = [k for k in schema.required if not raw.get(k)]
        if missing:
            raise TargetConfigError(name, missing[0], f"({kind}) needs {', '.join(missing)} (non-empty strings)")
        for key in (*schema.required, *schema.optional):
            value = raw.get(key)
            if value is None:
                continue
            if not isinstance(value, str) or not value:
                raise TargetConfigError(name, key, f"must be a non-empty string, got {value!r}")
            problem = _KEY_CHECKS[key](value)
            if problem:
                raise TargetConfigError(name, key, problem)
        limit = raw.get("max_concurrent_runs", schema.default_max_concurrent_runs)
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise TargetConfigError(name, "max_concurrent_runs",
                                    f"must be a positive integer, or null for no limit, got {limit!r}")
        return cls(
            name=name,
            type=kind,
            domain_id=raw.get("domain_id"),
            user_profile=raw.get("user_profile"),
            space_name=raw.get("space_name"),
            instance_name=raw.get("name"),  # only a kind with a ``name`` key (notebook-instance) accepts one
            url=(raw.get("url") or "").rstrip("/") or None,
            token_secret_arn=raw.get("token_secret_arn"),
            region=raw.get("region"),
            max_concurrent_runs=limit,
            instance_type=raw.get("instance_type") or None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The configuration form (``cdk.json`` / ``STUDIO_RUNNER_TARGETS``); ``from_dict`` reads it back."""
        keys = {"domain_id": self.domain_id, "user_profile": self.user_profile, "space_name": self.space_name,
                "name": self.instance_name, "url": self.url, "token_secret_arn": self.token_secret_arn,
                "region": self.region, "instance_type": self.instance_type}
        schema = TARGET_KINDS[self.type]
        form: dict[str, Any] = {"type": self.type, **{k: v for k, v in keys.items()
                                      if v is not None and k in (*schema.required, *schema.optional)}}
        if self.max_concurrent_runs != schema.default_max_concurrent_runs:
            form["max_concurrent_runs"] = self.max_concurrent_runs
        return form


@dataclass(frozen=True)
class RunnerConfig:
    """Everything a step needs to know about the deployment."""

    targets: Mapping[str, TargetConfig]
    default_target: str | None
    bucket: str
    max_run_seconds: int = 86400
    slots_table: str | None = None  # the DynamoDB table of concurrency slots (run/slots.py)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RunnerConfig:
        env = os.environ if env is None else env
        raw_targets = json.loads(env.get("STUDIO_RUNNER_TARGETS") or "{}")
        targets = {name: TargetConfig.from_dict(name, raw) for name, raw in raw_targets.items()}
        return cls(
            targets=targets,
            default_target=env.get("STUDIO_RUNNER_DEFAULT_TARGET") or None,
            bucket=env.get("STUDIO_RUNNER_BUCKET", ""),
            max_run_seconds=int(env.get("STUDIO_RUNNER_MAX_RUN_SECONDS") or 86400),
            slots_table=env.get("STUDIO_RUNNER_SLOTS_TABLE") or None,
        )

    def target(self, name: str | None) -> TargetConfig:
        """The configured target called ``name`` (or the default one)."""
        chosen = name or self.default_target
        if not chosen:
            raise TargetNotAllowed("The payload names no target and the deployment has no default target")
        if chosen not in self.targets:
            known = ", ".join(sorted(self.targets)) or "none"
            raise TargetNotAllowed(
                f"Target {chosen!r} is not configured for this deployment (configured: {known})",
                target=chosen,
            )
        return self.targets[chosen]
