"""Any Jupyter Server, reached with a token kept in Secrets Manager."""

from __future__ import annotations

import json
import os

from studiorunner.config import TargetConfig
from studiorunner.errors import JupyterHTTPError, JupyterUnavailable, LoginFailed
from studiorunner.jupyter.http import JupyterHTTP, new_session
from studiorunner.redact import quiet_secrets_in_logs, remember_secret, safe_url
from studiorunner.targets.base import Target, TargetProgress

#: How long the login check rides out a server that does not answer before it is
#: ``JupyterUnavailable``: short, since the state machine retries the step (Retry on
#: StartKernel and StartTarget) and Cleanup logs in again within its own budget.
LOGIN_RETRY_SECONDS = 10.0


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
            token = os.environ.get("STUDIO_RUNNER_JUPYTER_TOKEN") or None
            remember_secret(token)
            return token
        secrets = self._secrets or self._clients("secretsmanager", self.config.region or None)
        quiet_secrets_in_logs()  # botocore's DEBUG log of the answer holds the token
        value = secrets.get_secret_value(SecretId=self.config.token_secret_arn)["SecretString"]
        remember_secret(value)
        try:
            parsed = json.loads(value)
        except ValueError:
            token = value.strip()
        else:
            token = parsed.get("token") if isinstance(parsed, dict) else str(parsed)
        remember_secret(token)
        return token

    def login(self) -> JupyterHTTP:
        """Token auth when a token is configured; else none, as a server started with
        ``--ServerApp.token=''`` (a SageMaker space's, REAL-STUDIO L4) wants: XSRF then
        applies to every non-GET, and the chokepoint obtains ``_xsrf`` from a rendered page.

        A server that cannot be reached (refused connection, DNS failure, a 502/503/504) is
        ``JupyterUnavailable``, which the state machine retries; one that answers and refuses
        the token (401/403), or answers something that is not Jupyter, is ``LoginFailed``."""
        url = self.config.url or ""  # the jupyter kind requires it (config.TargetConfig.from_dict)
        http = JupyterHTTP(url, new_session(), token=self._token())
        try:
            http.get("api/status", retry_seconds=LOGIN_RETRY_SECONDS)
        except JupyterUnavailable as exc:  # its message names path and status only, never the token
            raise JupyterUnavailable(
                f"Target {self.config.name!r}: the Jupyter server at {safe_url(url)} "
                f"could not be reached: {exc}",
                target=self.config.name, status=exc.status, path="api/status") from None
        except JupyterHTTPError as exc:
            status = exc.status
            why = "refused the token" if status in (401, 403) else "did not answer as a Jupyter server"
            raise LoginFailed(f"Target {self.config.name!r} {why}: {exc}",
                              target=self.config.name, status=status) from None
        return http
