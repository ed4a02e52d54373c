"""Studio targets: a space's JupyterLab app, and Studio Classic's JupyterServer app.

The SageMaker API as it behaves (REAL-STUDIO A1–A8): a deleted app stays listed as
``Deleted``; ``CreateApp`` right after a delete answers ``ResourceInUse`` until the space's
volume is free (waited out through the state machine's loop); ``DeleteApp`` on an app
already gone answers ``ValidationException``; Studio Classic is retired, so its apps can
be used and stopped but never created.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from studiorunner.errors import TargetFailed
from studiorunner.jupyter.http import JupyterHTTP
from studiorunner.targets.base import ReleaseReport, Target, TargetProgress, _keep_reason
from studiorunner.targets.login import PRESIGNED_URL_SECONDS, SESSION_SECONDS, presigned_login

_NOT_FOUND = ("ResourceNotFound", "ResourceNotFoundException")
_GONE = ("Deleted", "Deleting", "Failed")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "")


def _reason(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code')}: {error.get('Message') or 'no message'}"


#: Tag on an app a run created. When runs overlap, the one that started the app may end
#: while another's kernel is still on it; whichever run ends last, finding the tag and no
#: other kernel, stops the app ("the last run out turns off the light").
STARTED_BY_TAG = "studio-runner:started-by"
STARTED_BY_VALUE = "studio-runner"


class _StudioAppTarget(Target):
    """Targets whose Jupyter server is a SageMaker app (a space's JupyterLab, Classic's JupyterServer)."""

    app_type: str
    base_path: str

    @abstractmethod
    def _app_ids(self) -> dict[str, Any]:
        """DomainId plus SpaceName or UserProfileName."""

    def _label(self) -> str:
        return f"{self.app_type} app of {self.config.name}"

    def _describe_app(self) -> dict[str, Any] | None:
        try:
            return self.sagemaker.describe_app(**self._app_ids(), AppType=self.app_type, AppName="default")
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                return None
            raise

    def ensure_started(self, progress: TargetProgress, *, now: float, start_seconds: float) -> TargetProgress:
        if not progress.started_at:
            progress.started_at = now
        app = self._describe_app()
        status = (app or {}).get("Status", "Deleted")
        if status == "InService":
            return self._ready_or_pending(progress, status, now=now, start_seconds=start_seconds)
        if status == "Failed" and progress.created:
            reason = (app or {}).get("FailureReason") or "no reason given"
            raise TargetFailed(
                f"The {self.app_type} app of target {self.config.name!r} failed to start: {reason}",
                target=self.config.name, reason=reason,
            )
        if status in ("Deleted", "Failed") and progress.created:
            raise TargetFailed(
                f"The {self.app_type} app this run created for target {self.config.name!r} disappeared "
                f"(status {status})",
                target=self.config.name, status=status,
            )
        if status in ("Deleted", "Failed"):
            # Missing, or a failed app left over from earlier: (re)create it once.
            return self._create(progress, status, now=now, start_seconds=start_seconds)
        return self._pending(progress, status, now=now, start_seconds=start_seconds)

    def _create(self, progress: TargetProgress, status: str, *, now: float, start_seconds: float) -> TargetProgress:
        raise NotImplementedError

    def lost_error(self) -> TargetFailed | None:
        try:
            app = self._describe_app()
        except (ClientError, BotoCoreError):  # e.g. EndpointConnectionError: Studio itself unreachable
            return None  # cannot tell: let the original error speak
        status = (app or {}).get("Status", "Deleted")
        if status == "InService":
            return None
        return TargetFailed(
            f"The {self.app_type} app of target {self.config.name!r} is {status}: it stopped while the run was "
            f"using it (idle shutdown, or someone stopped it), and its kernels and terminals went with it",
            target=self.config.name, status=status, gone=True,
        )

    def _presigned_url(self) -> str:
        kwargs: dict[str, Any] = {
            "DomainId": self.config.domain_id,
            "UserProfileName": self.config.user_profile,
            "ExpiresInSeconds": PRESIGNED_URL_SECONDS,
            "SessionExpirationDurationInSeconds": SESSION_SECONDS,
        }
        kwargs.update(self._landing())
        return self.sagemaker.create_presigned_domain_url(**kwargs)["AuthorizedUrl"]

    def _landing(self) -> dict[str, Any]:
        return {}

    def login(self) -> JupyterHTTP:
        return self._check_answers(presigned_login(self._presigned_url(), self.config.name, base_path=self.base_path))

    def release(self, progress: TargetProgress, policy: str, *, other_kernels: int = 0,
                other_runs: int = 0) -> ReleaseReport:
        report = ReleaseReport()
        label = self._label()
        if policy == "if_created" and not progress.created and not other_kernels and not other_runs \
                and self._started_by_a_run():
            progress = replace(progress, created=True)  # another run of ours started it; we are the last out
            label += " (started by an earlier run, which left it to the last run out)"
        reason = _keep_reason(progress, policy, other_kernels, other_runs)
        if reason:
            report.kept.append(f"{label} ({reason})")
            return report
        try:
            self.sagemaker.delete_app(**self._app_ids(), AppType=self.app_type, AppName="default")
        except ClientError as exc:
            # An app already deleted or failed answers ValidationException (A3): gone, not a failure.
            if _code(exc) not in _NOT_FOUND + ("ValidationException",) or not self._gone():
                raise
            report.actions.append(f"{label} was already gone")
            return report
        report.actions.append(f"deleted {label}")
        return report

    def _gone(self) -> bool:
        app = self._describe_app()
        return app is None or app.get("Status") in _GONE

    def _started_by_a_run(self) -> bool:
        """True when the running app carries the tag a run puts on an app it creates."""
        try:
            app = self._describe_app()
            if not app or app.get("Status") not in ("InService", "Pending") or not app.get("AppArn"):
                return False
            tags = self.sagemaker.list_tags(ResourceArn=app["AppArn"]).get("Tags", [])
        except ClientError:
            return False  # cannot tell (e.g. no sagemaker:ListTags): keep the app, as before
        return any(t.get("Key") == STARTED_BY_TAG for t in tags)


class StudioSpaceTarget(_StudioAppTarget):
    """A space in current SageMaker Studio; its JupyterLab app runs the kernels."""

    app_type = "JupyterLab"
    base_path = "/jupyterlab/default"

    def _app_ids(self) -> dict[str, Any]:
        return {"DomainId": self.config.domain_id, "SpaceName": self.config.space_name}

    def _landing(self) -> dict[str, Any]:
        return {"SpaceName": self.config.space_name}  # the space's own host (L1)

    def _instance_type(self) -> tuple[str | None, str]:
        """The target's ``instance_type``, else the space's default (DescribeSpace), else none."""
        if self.config.instance_type:
            return self.config.instance_type, "target config"
        try:
            space = self.sagemaker.describe_space(DomainId=self.config.domain_id, SpaceName=self.config.space_name)
        except ClientError as exc:
            raise TargetFailed(
                f"Space {self.config.space_name!r} of target {self.config.name!r} could not be described: {_reason(exc)}",
                target=self.config.name,
            ) from None
        spec = ((space.get("SpaceSettings") or {}).get("JupyterLabAppSettings") or {}).get("DefaultResourceSpec") or {}
        if spec.get("InstanceType"):
            return spec["InstanceType"], "space default"
        return None, "SageMaker's default"

    def _create(self, progress: TargetProgress, status: str, *, now: float, start_seconds: float) -> TargetProgress:
        instance_type, source = self._instance_type()
        kwargs: dict[str, Any] = {**self._app_ids(), "AppType": self.app_type, "AppName": "default",
                                  "Tags": [{"Key": STARTED_BY_TAG, "Value": STARTED_BY_VALUE}]}
        if instance_type:
            kwargs["ResourceSpec"] = {"InstanceType": instance_type}
        progress.instance_type, progress.instance_type_source = instance_type or "", source
        on = f"{instance_type} ({source})" if instance_type else "the instance type SageMaker picks (none configured)"
        try:
            self.sagemaker.create_app(**kwargs)
        except ClientError as exc:
            if _code(exc) == "ResourceInUse":
                # Right after a stop the space's volume is still busy (A4), or another run
                # is creating the app this moment: wait and look again.
                return self._pending(progress, f"{status}; CreateApp on {on}: ResourceInUse, retrying",
                                     now=now, start_seconds=start_seconds)
            raise TargetFailed(
                f"The {self.app_type} app of target {self.config.name!r} could not be created on {on}: {_reason(exc)}",
                target=self.config.name, reason=_reason(exc),
            ) from None
        progress.created = True
        return self._pending(progress, f"Pending (creating on {on})", now=now, start_seconds=start_seconds)


class StudioClassicTarget(_StudioAppTarget):
    """A Studio Classic user profile: a JupyterServer app, kernels on KernelGateway apps.

    Studio Classic is retired (A7): existing apps can be used, stopped and deleted, but
    AWS creates no new ones. So this target runs only where the apps still run, fails
    at once when it would have to create one, and never deletes the JupyterServer app
    (nobody could start it again).
    """

    app_type = "JupyterServer"
    base_path = "/jupyter/default"

    def _app_ids(self) -> dict[str, Any]:
        return {"DomainId": self.config.domain_id, "UserProfileName": self.config.user_profile}

    def _landing(self) -> dict[str, Any]:
        return {"LandingUri": "app:JupyterServer:"}  # Classic's /jupyter/default, not the Studio UI (L7)

    def _create(self, progress: TargetProgress, status: str, *, now: float, start_seconds: float) -> TargetProgress:
        raise TargetFailed(
            f"Target {self.config.name!r} is a Studio Classic user profile whose JupyterServer app is {status}, "
            f"and AWS no longer creates Studio Classic apps (Studio Classic is retired). "
            f"Use a studio-space target (a JupyterLab space) instead.",
            target=self.config.name, status=status, retired=True,
        )

    def release(self, progress: TargetProgress, policy: str, *, other_kernels: int = 0,
                other_runs: int = 0) -> ReleaseReport:
        report = ReleaseReport()
        if policy != "never":
            report.kept.append(f"{self._label()} (Studio Classic apps cannot be created again once deleted)")
        else:
            report.kept.append(f"{self._label()} (cleanup.app=never)")
        return report
