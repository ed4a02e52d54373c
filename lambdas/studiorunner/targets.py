"""Where notebooks run: SageMaker Studio spaces, Studio Classic, notebook instances, plain Jupyter.

A :class:`Target` answers three questions for the steps, each safe to ask again from a
fresh process (every Lambda logs in afresh; nothing secret is kept between steps):

- ``ensure_started(progress)`` — is the Jupyter app up? Start it if not (once), and say
  whether this run started it, so cleanup removes only what the run created.
- ``login()`` — a logged-in :class:`~studiorunner.http.JupyterHTTP` (presigned URL or token).
- ``release(progress, policy)`` — stop what this run started, per the cleanup policy.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import ClientError

from .config import TargetConfig
from .errors import JupyterHTTPError, LoginFailed, TargetFailed, TargetNotReady
from .http import DEFAULT_TIMEOUT, JupyterHTTP, new_session

PRESIGNED_URL_SECONDS = 60  # the URL is used at once; the shorter it lives, the better
SESSION_SECONDS = 1800


@dataclass
class TargetProgress:
    """What StartTarget returns into the state (small, no secrets)."""

    status: str = "pending"  # "pending" | "ready"
    detail: str = ""  # the SageMaker status seen last, e.g. "Pending"
    created: bool = False  # this run created the app / started the instance
    attempt: int = 0
    wait_seconds: int = 0
    started_at: float = 0.0  # epoch seconds of the first StartTarget

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> TargetProgress:
        raw = raw or {}
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


def next_wait(attempt: int, *, first: float = 5.0, factor: float = 1.5, cap: float = 60.0) -> int:
    """Backoff for the state machine's Wait: 5, 7, 11, 16, … capped at a minute."""
    return int(min(cap, first * factor**attempt))


@dataclass
class ReleaseReport:
    actions: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def _login(url: str, target: str, *, timeout: tuple[float, float] = DEFAULT_TIMEOUT):
    """GET the presigned URL with a fresh session; return it and the final URL's origin."""
    session = new_session()
    try:
        response = session.get(url, timeout=timeout, allow_redirects=True)
    except Exception as exc:  # the exception text holds the presigned URL
        raise LoginFailed(f"Could not reach target {target!r} to log in ({type(exc).__name__})", target=target) from None
    if response.status_code >= 400:
        raise LoginFailed(
            f"Logging in to target {target!r} with a presigned URL answered {response.status_code}",
            target=target, status=response.status_code,
        )
    parts = urlsplit(response.url)
    return session, f"{parts.scheme}://{parts.netloc}"


def _keep_reason(progress: TargetProgress, policy: str, other_kernels: int) -> str | None:
    """Why cleanup must leave the app/instance running, or None to stop it."""
    if policy == "never":
        return "cleanup.app=never"
    if policy == "if_created" and not progress.created:
        return "not started by this run"
    if other_kernels:
        return f"{other_kernels} other kernel(s) still running on it"
    return None


class Target(ABC):
    """One configured target. Subclasses talk to SageMaker; the steps only see this."""

    def __init__(self, config: TargetConfig, *, sagemaker=None) -> None:
        self.config = config
        self._sagemaker = sagemaker

    @property
    def sagemaker(self):
        if self._sagemaker is None:
            self._sagemaker = boto3.client("sagemaker", region_name=self.config.region or None)
        return self._sagemaker

    @abstractmethod
    def ensure_started(self, progress: TargetProgress, *, now: float, start_seconds: float) -> TargetProgress:
        """Check the app/instance, start it once if needed; ready, pending, or raise."""

    @abstractmethod
    def login(self) -> JupyterHTTP:
        """A logged-in REST client for the target's Jupyter server."""

    def release(self, progress: TargetProgress, policy: str, *, other_kernels: int = 0) -> ReleaseReport:
        """Stop the app/instance per ``policy`` ("if_created", "always", "never")."""
        return ReleaseReport()

    # Studio Classic starts one KernelGateway app per kernel instance type.
    uses_kernel_gateway_apps = False

    def _pending(self, progress: TargetProgress, detail: str, *, now: float, start_seconds: float) -> TargetProgress:
        if now - progress.started_at > start_seconds:
            raise TargetNotReady(
                f"Target {self.config.name!r} was still {detail} after {start_seconds:g} s "
                f"(timeouts.start_seconds)",
                target=self.config.name, status=detail,
            )
        progress.status, progress.detail = "pending", detail
        progress.wait_seconds = next_wait(progress.attempt)
        progress.attempt += 1
        return progress


class _StudioAppTarget(Target):
    """Targets whose Jupyter server is a SageMaker app (a space's JupyterLab, Classic's JupyterServer)."""

    app_type: str
    base_path: str

    @abstractmethod
    def _app_ids(self) -> dict[str, str]:
        """DomainId plus SpaceName or UserProfileName."""

    def _describe_app(self) -> dict[str, Any] | None:
        try:
            return self.sagemaker.describe_app(**self._app_ids(), AppType=self.app_type, AppName="default")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("ResourceNotFound", "ResourceNotFoundException"):
                return None
            raise

    def ensure_started(self, progress: TargetProgress, *, now: float, start_seconds: float) -> TargetProgress:
        if not progress.started_at:
            progress.started_at = now
        app = self._describe_app()
        status = (app or {}).get("Status", "Deleted")
        if status == "InService":
            progress.status, progress.detail, progress.wait_seconds = "ready", status, 0
            return progress
        if status == "Failed" and not progress.created:
            # A failed app left over from earlier: replace it once rather than give up.
            status = "Deleted"
        if status == "Failed":
            reason = app.get("FailureReason") or "no reason given"
            raise TargetFailed(
                f"The {self.app_type} app of target {self.config.name!r} failed to start: {reason}",
                target=self.config.name, reason=reason,
            )
        if status == "Deleted" and not progress.created:
            self.sagemaker.create_app(**self._app_ids(), AppType=self.app_type, AppName="default")
            progress.created = True
            status = "Pending"
        elif status == "Deleted":
            raise TargetFailed(
                f"The {self.app_type} app this run created for target {self.config.name!r} disappeared",
                target=self.config.name,
            )
        return self._pending(progress, status, now=now, start_seconds=start_seconds)

    def _presigned_url(self) -> str:
        kwargs: dict[str, Any] = {
            "DomainId": self.config.domain_id,
            "UserProfileName": self.config.user_profile,
            "ExpiresInSeconds": PRESIGNED_URL_SECONDS,
            "SessionExpirationDurationInSeconds": SESSION_SECONDS,
        }
        if self.config.space_name and self.app_type == "JupyterLab":
            kwargs["SpaceName"] = self.config.space_name
        return self.sagemaker.create_presigned_domain_url(**kwargs)["AuthorizedUrl"]

    def login(self) -> JupyterHTTP:
        session, origin = _login(self._presigned_url(), self.config.name)
        return JupyterHTTP(origin + self.base_path, session)

    def release(self, progress: TargetProgress, policy: str, *, other_kernels: int = 0) -> ReleaseReport:
        report = ReleaseReport()
        label = f"{self.app_type} app of {self.config.name}"
        reason = _keep_reason(progress, policy, other_kernels)
        if reason:
            report.kept.append(f"{label} ({reason})")
            return report
        try:
            self.sagemaker.delete_app(**self._app_ids(), AppType=self.app_type, AppName="default")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code not in ("ResourceNotFound", "ResourceNotFoundException"):
                raise
        report.actions.append(f"deleted {label}")
        return report


class StudioSpaceTarget(_StudioAppTarget):
    """A space in current SageMaker Studio; its JupyterLab app runs the kernels."""

    app_type = "JupyterLab"
    base_path = "/jupyterlab/default"

    def _app_ids(self) -> dict[str, str]:
        return {"DomainId": self.config.domain_id, "SpaceName": self.config.space_name}


class StudioClassicTarget(_StudioAppTarget):
    """A Studio Classic user profile: a JupyterServer app, kernels on KernelGateway apps."""

    app_type = "JupyterServer"
    base_path = "/jupyter/default"
    uses_kernel_gateway_apps = True

    def _app_ids(self) -> dict[str, str]:
        return {"DomainId": self.config.domain_id, "UserProfileName": self.config.user_profile}


class NotebookInstanceTarget(Target):
    """A classic SageMaker notebook instance (Jupyter at the instance's root URL)."""

    def _describe(self) -> dict[str, Any]:
        try:
            return self.sagemaker.describe_notebook_instance(NotebookInstanceName=self.config.instance_name)
        except ClientError as exc:
            raise TargetFailed(
                f"Notebook instance {self.config.instance_name!r} of target {self.config.name!r} "
                f"could not be described: {exc.response.get('Error', {}).get('Code')}",
                target=self.config.name,
            ) from None

    def ensure_started(self, progress: TargetProgress, *, now: float, start_seconds: float) -> TargetProgress:
        if not progress.started_at:
            progress.started_at = now
        described = self._describe()
        status = described.get("NotebookInstanceStatus", "Unknown")
        if status == "InService":
            progress.status, progress.detail, progress.wait_seconds = "ready", status, 0
            return progress
        if status == "Failed":
            reason = described.get("FailureReason") or "no reason given"
            raise TargetFailed(
                f"Notebook instance {self.config.instance_name!r} is Failed: {reason}",
                target=self.config.name, reason=reason,
            )
        if status == "Stopped":
            if progress.created:
                raise TargetFailed(f"Notebook instance {self.config.instance_name!r} stopped while starting", target=self.config.name)
            self.sagemaker.start_notebook_instance(NotebookInstanceName=self.config.instance_name)
            progress.created = True
            status = "Pending"
        return self._pending(progress, status, now=now, start_seconds=start_seconds)

    def login(self) -> JupyterHTTP:
        url = self.sagemaker.create_presigned_notebook_instance_url(
            NotebookInstanceName=self.config.instance_name,
            SessionExpirationDurationInSeconds=SESSION_SECONDS,
        )["AuthorizedUrl"]
        session, origin = _login(url, self.config.name)
        return JupyterHTTP(origin, session)

    def release(self, progress: TargetProgress, policy: str, *, other_kernels: int = 0) -> ReleaseReport:
        report = ReleaseReport()
        label = f"notebook instance {self.config.instance_name}"
        reason = _keep_reason(progress, policy, other_kernels)
        if reason:
            report.kept.append(f"{label} ({reason})")
            return report
        self.sagemaker.stop_notebook_instance(NotebookInstanceName=self.config.instance_name)
        report.actions.append(f"stopped {label}")
        return report


class JupyterTarget(Target):
    """Any Jupyter Server reached with a token kept in Secrets Manager."""

    def __init__(self, config: TargetConfig, *, sagemaker=None, secrets=None) -> None:
        super().__init__(config, sagemaker=sagemaker)
        self._secrets = secrets

    def ensure_started(self, progress: TargetProgress, *, now: float, start_seconds: float) -> TargetProgress:
        progress.started_at = progress.started_at or now
        progress.status, progress.detail, progress.wait_seconds = "ready", "external", 0
        return progress

    def _token(self) -> str | None:
        if not self.config.token_secret_arn:
            return os.environ.get("STUDIO_RUNNER_JUPYTER_TOKEN") or None
        secrets = self._secrets or boto3.client("secretsmanager", region_name=self.config.region or None)
        value = secrets.get_secret_value(SecretId=self.config.token_secret_arn)["SecretString"]
        try:
            parsed = json.loads(value)
        except ValueError:
            return value.strip()
        return parsed.get("token") if isinstance(parsed, dict) else str(parsed)

    def login(self) -> JupyterHTTP:
        http = JupyterHTTP(self.config.url, new_session(), token=self._token())
        try:
            http.get("api/status")
        except JupyterHTTPError as exc:  # its message names path and status only
            raise LoginFailed(f"Target {self.config.name!r} refused the token or is unreachable: {exc}", target=self.config.name) from None
        return http


_TYPES: dict[str, type[Target]] = {
    "studio-space": StudioSpaceTarget,
    "studio-classic": StudioClassicTarget,
    "notebook-instance": NotebookInstanceTarget,
    "jupyter": JupyterTarget,
}


def target_for(config: TargetConfig) -> Target:
    """The Target implementation for a configured target."""
    return _TYPES[config.type](config)
