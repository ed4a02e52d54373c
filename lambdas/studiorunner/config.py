"""Deploy-time configuration the steps read from their environment.

Targets come only from here (``STUDIO_RUNNER_TARGETS``, written by the CDK app from
``cdk.json``): a payload names a target, it never supplies a domain, URL or token.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from studiorunner.errors import TargetNotAllowed

TARGET_TYPES = ("studio-space", "studio-classic", "notebook-instance", "jupyter")

_REQUIRED = {
    "studio-space": ("domain_id", "user_profile", "space_name"),
    "studio-classic": ("domain_id", "user_profile"),
    "notebook-instance": ("name",),
    "jupyter": ("url",),
}


@dataclass(frozen=True)
class TargetConfig:
    """One configured place to run notebooks."""

    name: str
    type: str
    domain_id: str | None = None
    user_profile: str | None = None
    space_name: str | None = None
    instance_name: str | None = None
    url: str | None = None
    token_secret_arn: str | None = None
    region: str | None = None

    @classmethod
    def from_dict(cls, name: str, raw: Mapping) -> TargetConfig:
        kind = raw.get("type")
        if kind not in TARGET_TYPES:
            raise ValueError(f"target {name!r}: type must be one of {', '.join(TARGET_TYPES)}, got {kind!r}")
        missing = [k for k in _REQUIRED[kind] if not raw.get(k)]
        if missing:
            raise ValueError(f"target {name!r} ({kind}) needs {', '.join(missing)}")
        return cls(
            name=name,
            type=kind,
            domain_id=raw.get("domain_id"),
            user_profile=raw.get("user_profile"),
            space_name=raw.get("space_name"),
            instance_name=raw.get("name") if kind == "notebook-instance" else None,
            url=(raw.get("url") or "").rstrip("/") or None,
            token_secret_arn=raw.get("token_secret_arn"),
            region=raw.get("region"),
        )


@dataclass(frozen=True)
class RunnerConfig:
    """Everything a step needs to know about the deployment."""

    targets: Mapping[str, TargetConfig]
    default_target: str | None
    bucket: str
    max_run_seconds: int = 86400
    extra: Mapping[str, str] = field(default_factory=dict)

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
