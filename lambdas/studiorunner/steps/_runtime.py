"""What every handler shares: Powertools logger/tracer/metrics, the deploy config, boto3 clients.

Created once per Lambda container (module level), as Powertools recommends. Every handler
(the six steps, ExecutionEnded, the S3 trigger) goes through :func:`step`.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner.clients import ClientCache
from studiorunner.errors import StudioRunnerError
from studiorunner.redact import quiet_secrets_in_logs

if TYPE_CHECKING:
    from studiorunner.run.services import Services

# The deployment's resource prefix (the stack sets it), so a dev and a prod copy in one
# account keep their metrics apart (the metrics' "service" dimension).
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "studio-runner"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace="StudioRunner", service=SERVICE)

# Steps that add no metric (most of them) are normal, not worth a warning per invocation.
warnings.filterwarnings("ignore", message="No application metrics to publish")

_services: Services | None = None
_clients: ClientCache | None = None


def clients() -> ClientCache:
    """The container's boto3 clients, created on first use."""
    global _clients
    if _clients is None:
        _clients = ClientCache()
    return _clients


def services() -> Services:
    """The step's view of the deployment (config from the environment, S3 store, clients)."""
    global _services
    if _services is None:
        # Imported here: the S3 trigger shares this module and needs none of the run's code, which
        # (nbformat, the targets) would add 270-310 ms to its cold start (min-median of 7 fresh
        # processes importing studiorunner.run.services after steps.s3_trigger, no rfc3987_syntax
        # as in the bundle).
        from studiorunner.config import RunnerConfig
        from studiorunner.run.services import Services

        _services = Services(config=RunnerConfig.from_env(), clients=clients())
    return _services


def reset_services() -> None:
    """Forget the cached config and clients (the local stack calls this when it changes the environment)."""
    global _services, _clients
    _services = _clients = None


@runtime_checkable
class Record(Protocol):
    """A typed part of the state (run/state.py): the step wrapper writes it as JSON."""

    def to_dict(self) -> dict[str, Any]: ...


def serialised(result: Any) -> Any:
    """What Step Functions gets: a typed record as its dict (its one wire form), else as is."""
    return result.to_dict() if isinstance(result, Record) else result


def step(fn: Callable[[Any, LambdaContext], Any]) -> Callable[[dict[str, Any], LambdaContext], Any]:
    """Decorate a handler: log context, trace, flush metrics, log a named error once and re-raise;
    a handler may return a typed record (:class:`Record`), serialised here."""

    @functools.wraps(fn)
    def wrapper(event: dict[str, Any], context: LambdaContext) -> Any:
        # Every handler, whether or not it logs in: botocore's DEBUG lines of any call (S3,
        # DynamoDB, Secrets Manager) carry the session token (redact.quiet_secrets_in_logs).
        quiet_secrets_in_logs(logging.getLogger(logger.name))
        run = event.get("run") if isinstance(event, dict) else None
        if isinstance(run, dict):
            logger.append_keys(run_id=run.get("run_id"), target=run.get("target"))
        try:
            return serialised(fn(event, context))
        except StudioRunnerError as exc:
            logger.error("step failed", extra={"error": type(exc).__name__, "detail": exc.message})
            raise
        except Exception:
            logger.exception("step failed unexpectedly")
            raise

    wrapped = logger.inject_lambda_context(clear_state=True)(wrapper)
    wrapped = tracer.capture_lambda_handler(capture_response=False)(wrapped)
    return metrics.log_metrics(raise_on_empty_metrics=False)(wrapped)
