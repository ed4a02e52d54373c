"""The errors a run can end with.

Each class name is the error name a Step Functions ``Catch``, an alarm and a person see
(the Lambda runtime reports ``type(exc).__name__`` as ``errorType``), so names are part of
the product's interface: do not rename them. Messages carry the facts a person needs to
act (which cell, which target, what was found) and never a cookie, token or presigned URL.
"""

from __future__ import annotations

from typing import Any


class StudioRunnerError(Exception):
    """Base class. ``facts`` holds structured, non-secret details for logs and results."""

    def __init__(self, message: str, **facts: Any) -> None:
        super().__init__(message)
        self.message = message
        self.facts = facts

    def __str__(self) -> str:
        return self.message


class PayloadInvalid(StudioRunnerError, ValueError):
    """The execution input does not follow the payload schema (raised before anything starts)."""


class TargetNotAllowed(StudioRunnerError, PermissionError):
    """The payload names a target that is not in the deployment's configuration."""


class TargetFailed(StudioRunnerError):
    """The target (Studio app, notebook instance) went to Failed or could not be started."""


class TargetBusy(StudioRunnerError, TimeoutError):
    """Every slot of the target (``max_concurrent_runs``) stayed taken for ``timeouts.queue_seconds``."""


class TargetNotReady(StudioRunnerError, TimeoutError):
    """The target did not become ready before the start deadline."""


class LoginFailed(StudioRunnerError):
    """The presigned URL or token did not give a working Jupyter session."""


class JupyterHTTPError(StudioRunnerError):
    """A Jupyter REST call failed; carries method, path (no query string) and status."""

    @property
    def status(self) -> int | None:
        """The HTTP status the server answered (None: no answer, e.g. a timeout or refused connection)."""
        status = self.facts.get("status")
        return status if isinstance(status, int) else None

    @property
    def timed_out(self) -> bool:
        """The call gave up waiting for an answer (the server may still act on it)."""
        return bool(self.facts.get("timeout"))


class JupyterUnavailable(JupyterHTTPError):
    """The Jupyter server (or Studio's proxy in front of it) could not be reached, or kept
    answering 502/503/504 after the client's own retries: probably transient, so the state
    machine retries the step by this name."""


class NotebookNotFound(StudioRunnerError, FileNotFoundError):
    """The notebook (a path in the target's file tree, or an S3 object) does not exist."""


class NotebookInvalid(StudioRunnerError, ValueError):
    """The notebook exists but is not one we can run (not JSON, an unknown nbformat version…)."""


class NotebookAccessDenied(StudioRunnerError, PermissionError):
    """The notebook (an S3 object) exists or may exist, but this deployment may not read it."""


class KernelSpecNotFound(StudioRunnerError, LookupError):
    """Neither the requested kernelspec nor a close match is available on the target."""


class KernelNotReady(StudioRunnerError, TimeoutError):
    """The kernel did not start before the start deadline."""


class KernelDied(StudioRunnerError, RuntimeError):
    """The kernel died, restarted or disappeared while the run was using it (nbclient's
    ``DeadKernelError`` is a RuntimeError too); ``cell_index``: the cell it was running."""

    @property
    def cell_index(self) -> int | None:
        return self.facts.get("cell_index")


class CellTimeout(StudioRunnerError, TimeoutError):
    """A cell ran longer than ``timeouts.cell_seconds`` and was interrupted."""

    @property
    def cell_index(self) -> int | None:
        return self.facts.get("cell_index")


class CellExecutionError(StudioRunnerError):
    """A cell raised an error; ``cell_index``, ``execution_count``, ``ename`` and ``evalue``
    are attributes (as papermill's PapermillExecutionError has them) and facts."""

    @property
    def cell_index(self) -> int | None:
        return self.facts.get("cell_index")

    @property
    def execution_count(self) -> int | None:
        return self.facts.get("execution_count")

    @property
    def ename(self) -> str:
        return str(self.facts.get("ename") or "")

    @property
    def evalue(self) -> str:
        return str(self.facts.get("evalue") or "")


class RunTimeout(StudioRunnerError, TimeoutError):
    """The whole run went past ``timeouts.run_seconds``."""


class CommandFailed(StudioRunnerError):
    """A terminal command exited with a non-zero status."""


class CommandTimeout(StudioRunnerError, TimeoutError):
    """A terminal command did not finish within ``timeouts.command_seconds``."""


class OutputUnwritable(StudioRunnerError):
    """S3 refused the executed notebook (the bucket is gone, a bucket policy, a disabled KMS
    key…) however often it was tried; the message says where the notebook went instead."""


class CleanupFailed(StudioRunnerError):
    """Cleanup could not remove something the run started (it may still be billing)."""


class RunNotHeld(StudioRunnerError):
    """A resume names a run whose kernel is not held for it: the run succeeded or was never
    held, its hold expired, another resume took it, or its kernel is gone."""


class WriteBackFailed(StudioRunnerError):
    """``write_back`` could not write the executed notebook beside the source (the run's
    own output in S3 is complete; nothing is left running)."""


class BatchFailed(StudioRunnerError):
    """More child runs of a batch failed than ``tolerated_failure_percentage`` allows (the
    cause names each failing one). The batch's outcome, not raised: the children ran."""
