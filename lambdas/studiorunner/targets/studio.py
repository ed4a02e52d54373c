"""Studio targets: a space's JupyterLab app, and Studio Classic's JupyterServer app."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from botocore.exceptions import ClientError

from studiorunner.errors import TargetFailed
from studiorunner.jupyter.http import JupyterHTTP
from studiorunner.targets.base import ReleaseReport, Target, TargetProgress, _keep_reason
from studiorunner.targets.login import PRESIGNED_URL_SECONDS, SESSION_SECONDS, presigned_login


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
        session, origin = presigned_login(self._presigned_url(), self.config.name)
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
