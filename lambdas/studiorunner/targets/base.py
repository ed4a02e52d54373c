"""Where notebooks run: SageMaker Studio spaces, Studio Classic, notebook instances, plain Jupyter.

A :class:`Target` answers three questions for the steps, each safe to ask again from a
fresh process (every Lambda logs in afresh; nothing secret is kept between steps):

- ``ensure_started(progress)`` — is the Jupyter app up? Start it if not (once), and say
  whether this run started it, so cleanup removes only what the run created.
- ``login()`` — a logged-in :class:`~studiorunner.jupyter.http.JupyterHTTP` (presigned URL or token).
- ``release(progress, policy)`` — stop what this run started, per the cleanup policy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import boto3

from studiorunner.config import TargetConfig
from studiorunner.errors import JupyterHTTPError, LoginFailed, TargetFailed, TargetNotReady
from studiorunner.jupyter.http import RETRY_STATUSES, JupyterHTTP
from studiorunner.redact import quiet_secrets_in_logs


def _new_client(service: str, region: str | None = None) -> Any:
    return boto3.client(service, region_name=region or None)


def next_wait(attempt: int, *, first: float = 5.0, factor: float = 1.5, cap: float = 60.0) -> int:
    """Backoff for the state machine's Wait: 5, 7, 11, 16, … capped at a minute."""
    return int(min(cap, first * factor**attempt))


@dataclass
class Progress:
    """Something the state machine polls (Wait → step → Choice): a target's app, a kernel."""

    status: str = "pending"  # "pending" | "ready"
    detail: str = ""  # what was seen last, e.g. the SageMaker status "Pending"
    attempt: int = 0
    wait_seconds: int = 0
    started_at: float = 0.0  # epoch seconds of the first check

    def begin(self, now: float) -> None:
        if not self.started_at:
            self.started_at = now

    def ready(self, detail: str = "") -> None:
        self.status, self.wait_seconds = "ready", 0
        if detail:
            self.detail = detail

    def overdue(self, now: float, limit_seconds: float) -> bool:
        return now - self.started_at > limit_seconds

    def wait(self, detail: str, *, first: float = 5.0, cap: float = 60.0) -> None:
        """Still pending: ask the state machine to wait (backing off) and check again."""
        self.status, self.detail = "pending", detail
        self.wait_seconds = next_wait(self.attempt, first=first, cap=cap)
        self.attempt += 1


@dataclass
class TargetProgress(Progress):
    """What StartTarget returns into the state (small, no secrets)."""

    created: bool = False  # this run created the app / started the instance
    instance_type: str = ""  # what the app this run created runs on ("" = SageMaker's default)
    instance_type_source: str = ""  # "target config" | "space default" | "SageMaker's default"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> TargetProgress:
        raw = raw or {}
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


@dataclass
class ReleaseReport:
    """What was removed (``actions``) and what was left running on purpose (``kept``), and why."""

    actions: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def add(self, other: ReleaseReport) -> None:
        self.actions += other.actions
        self.kept += other.kept


def _keep_reason(progress: TargetProgress, policy: str, other_kernels: int, other_runs: int = 0) -> str | None:
    """Why cleanup must leave the app/instance running, or None to stop it."""
    if policy == "never":
        return "cleanup.app=never"
    if policy == "if_created" and not progress.created:
        return "not started by this run"
    if other_kernels:
        return f"{other_kernels} other kernel(s) still running on it"
    if other_runs and policy == "if_created":
        return f"{other_runs} other run(s) holding or waiting for a slot on it; the last of them stops it"
    return None


class Target(ABC):
    """One configured target. Subclasses talk to SageMaker; the steps only see this."""

    def __init__(self, config: TargetConfig, *, sagemaker=None,
                 clients: Callable[[str, str | None], Any] | None = None) -> None:
        self.config = config
        self._sagemaker = sagemaker
        # (service, region) -> boto3 client; the steps pass their per-container cache.
        self._clients = clients or _new_client

    @property
    def sagemaker(self):
        if self._sagemaker is None:
            self._sagemaker = self._clients("sagemaker", self.config.region or None)
        quiet_secrets_in_logs()  # the presigned URL calls are made through this client
        return self._sagemaker

    @abstractmethod
    def ensure_started(self, progress: TargetProgress, *, now: float, start_seconds: float) -> TargetProgress:
        """Check the app/instance, start it once if needed; ready, pending, or raise."""

    @abstractmethod
    def login(self) -> JupyterHTTP:
        """A logged-in REST client for the target's Jupyter server."""

    def release(self, progress: TargetProgress, policy: str, *, other_kernels: int = 0,
                other_runs: int = 0) -> ReleaseReport:
        """Stop the app/instance per ``policy`` ("if_created", "always", "never"); with
        "if_created", never while ``other_kernels`` run on it or ``other_runs`` (runs holding or
        waiting for a slot on the target) are about to use it."""
        return ReleaseReport()

    def lost_error(self) -> TargetFailed | None:
        """A TargetFailed when the app/instance is no longer running (idle shutdown, someone
        stopped it: REAL-STUDIO A10), else None. For a step whose kernel or server stopped
        answering, to say why instead of a bare connection error."""
        return None

    def _check_answers(self, http: JupyterHTTP) -> JupyterHTTP:
        """Make sure Jupyter itself answers behind the login (not a loading page while the
        app starts, A11): TargetNotReady if not yet, TargetFailed if the app is gone."""
        try:
            http.get("api/status", retry_seconds=3.0)
        except JupyterHTTPError as exc:
            status = exc.status
            if status in (401, 403):
                raise LoginFailed(
                    f"Target {self.config.name!r} refused the login: {exc}", target=self.config.name, status=status
                ) from None
            if not (exc.facts.get("html") or status in RETRY_STATUSES or status is None):
                # Jupyter itself answered (a JSON error, e.g. a 500 under load): it is up; the
                # step's own calls retry or name their errors. Seen with 20 fan-out runs.
                return http
            lost = self.lost_error()
            if lost is not None:
                raise lost from None
            raise TargetNotReady(
                f"Target {self.config.name!r} is running but its Jupyter server is not answering yet ({exc})",
                target=self.config.name, status="starting",
            ) from None
        return http

    def _ready_or_pending(self, progress: TargetProgress, status: str, *, now: float,
                          start_seconds: float) -> TargetProgress:
        """The app/instance says InService: ready once Jupyter answers behind the login."""
        try:
            self.login()
        except TargetNotReady:
            return self._pending(progress, f"{status}, Jupyter not answering yet", now=now, start_seconds=start_seconds)
        progress.status, progress.detail, progress.wait_seconds = "ready", status, 0
        return progress

    def _pending(self, progress: TargetProgress, detail: str, *, now: float, start_seconds: float) -> TargetProgress:
        if progress.overdue(now, start_seconds):
            raise TargetNotReady(
                f"Target {self.config.name!r} was still {detail} after {start_seconds:g} s "
                f"(timeouts.start_seconds)",
                target=self.config.name, status=detail,
            )
        progress.wait(detail)
        return progress
