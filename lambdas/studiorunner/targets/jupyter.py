"""Any Jupyter Server, reached with a token kept in Secrets Manager."""

from __future__ import annotations

import json
import os

from studiorunner.config import TargetConfig
from studiorunner.errors import JupyterHTTPError, LoginFailed
from studiorunner.jupyter.http import JupyterHTTP, new_session
from studiorunner.targets.base import Target, TargetProgress


class JupyterTarget(Target):
    """Any Jupyter Server reached with a token kept in Secrets Manager."""

    def __init__(self, config: TargetConfig, *, sagemaker=None, secrets=None, clients=None) -> None:
        super().__init__(config, sagemaker=sagemaker, clients=clients)
        self._secrets = secrets

    def ensure_started(self, progress: TargetProgress, *, now: float, start_seconds: float) -> TargetProgress:
        progress.started_at = progress.started_at or now
        progress.status, progress.detail, progress.wait_seconds = "ready", "external", 0
        return progress

    def _token(self) -> str | None:
        if not self.config.token_secret_arn:
            return os.environ.get("STUDIO_RUNNER_JUPYTER_TOKEN") or None
        secrets = self._secrets or self._clients("secretsmanager", self.config.region or None)
        value = secrets.get_secret_value(SecretId=self.config.token_secret_arn)["SecretString"]
        try:
            parsed = json.loads(value)
        except ValueError:
            return value.strip()
        return parsed.get("token") if isinstance(parsed, dict) else str(parsed)

    def login(self) -> JupyterHTTP:
        """Token auth when a token is configured; else none, as a server started with
        ``--ServerApp.token=''`` (a SageMaker space's, REAL-STUDIO L4) wants: XSRF then
        applies to every non-GET, and the chokepoint obtains ``_xsrf`` from a rendered page."""
        http = JupyterHTTP(self.config.url, new_session(), token=self._token())
        try:
            http.get("api/status")
        except JupyterHTTPError as exc:  # its message names path and status only
            raise LoginFailed(f"Target {self.config.name!r} refused the token or is unreachable: {exc}",
                              target=self.config.name, status=exc.facts.get("status")) from None
        return http
