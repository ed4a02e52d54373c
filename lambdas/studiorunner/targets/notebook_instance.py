"""A SageMaker notebook instance (Jupyter at the instance's root URL)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from studiorunner.errors import TargetFailed
from studiorunner.jupyter.http import JupyterHTTP
from studiorunner.targets.base import ReleaseReport, Target, TargetProgress, _keep_reason
from studiorunner.targets.login import SESSION_SECONDS, presigned_login


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
            return self._ready_or_pending(progress, status, now=now, start_seconds=start_seconds)
        if status == "Failed":
            reason = described.get("FailureReason") or "no reason given"
            raise TargetFailed(
                f"Notebook instance {self.config.instance_name!r} is Failed: {reason}",
                target=self.config.name, reason=reason,
            )
        if status == "Stopped":
            if progress.created:
                raise TargetFailed(f"Notebook instance {self.config.instance_name!r} stopped while starting", target=self.config.name)
            try:
                self.sagemaker.start_notebook_instance(NotebookInstanceName=self.config.instance_name)
            except ClientError as exc:
                # E.g. an instance on a retired platform (notebook-al2-v1/v2) can no longer be
                # started (REAL-STUDIO A9): AWS's reason is the useful part.
                error = exc.response.get("Error", {})
                reason = f"{error.get('Code')}: {error.get('Message') or 'no message'}"
                raise TargetFailed(
                    f"Notebook instance {self.config.instance_name!r} of target {self.config.name!r} "
                    f"could not be started: {reason}",
                    target=self.config.name, reason=reason,
                ) from None
            progress.created = True
            status = "Pending"
        return self._pending(progress, status, now=now, start_seconds=start_seconds)

    def login(self) -> JupyterHTTP:
        url = self.sagemaker.create_presigned_notebook_instance_url(
            NotebookInstanceName=self.config.instance_name,
            SessionExpirationDurationInSeconds=SESSION_SECONDS,
        )["AuthorizedUrl"]
        return self._check_answers(presigned_login(url, self.config.name, base_path="/"))

    def lost_error(self) -> TargetFailed | None:
        try:
            status = self._describe().get("NotebookInstanceStatus", "Unknown")
        except (TargetFailed, BotoCoreError, ClientError):  # cannot tell: let the original error speak
            return None
        if status == "InService":
            return None
        return TargetFailed(
            f"Notebook instance {self.config.instance_name!r} of target {self.config.name!r} is {status}: it "
            f"stopped while the run was using it, and its kernels and terminals went with it",
            target=self.config.name, status=status, gone=True,
        )

    def release(self, progress: TargetProgress, policy: str, *, other_kernels: int = 0,
                other_runs: int = 0) -> ReleaseReport:
        report = ReleaseReport()
        label = f"notebook instance {self.config.instance_name}"
        reason = _keep_reason(progress, policy, other_kernels, other_runs)
        if reason:
            report.kept.append(f"{label} ({reason})")
            return report
        self.sagemaker.stop_notebook_instance(NotebookInstanceName=self.config.instance_name)
        report.actions.append(f"stopped {label}")
        return report
