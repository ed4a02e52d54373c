"""Every moto internal the local stack touches, in one place, for the moto versions tested.

moto's public API (``mock_aws``) runs the state machine, but a local run needs more than it
offers: Lambda tasks routed to our handlers in this process, Wait states shortened, the
interpreter kept inside the mocks, Step Functions' parameter names as AWS spells them,
DynamoDB's atomic conditional writes, the interpreter's threads joined, and its HTTP server
for ``local up``. Each reaches into a private module or method that moto may change in any
release, so this module checks the installed moto against ``TESTED`` when it is imported and
fails with a message naming both, rather than failing somewhere inside a run.

``pyproject.toml``'s ``[local]`` extra caps moto to the same range (a test checks they agree).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import threading
import types
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from typing import Any
from unittest import mock

#: The moto releases these shims were written for and tested with: >= LOW, < HIGH.
TESTED = ((5, 2, 5), (5, 3))
TESTED_SPEC = ">=5.2.5,<5.3"


class MotoVersionUnsupported(RuntimeError):
    """The installed moto is not one the local stack's shims were tested with."""


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text.split("+")[0])[:3])


def check_moto_version(version: str | None = None) -> str:
    """The installed moto's version, if it is in ``TESTED``; else ``MotoVersionUnsupported``."""
    if version is None:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as installed

        try:
            version = installed("moto")
        except PackageNotFoundError:
            raise MotoVersionUnsupported(
                "the local stack needs moto, which is not installed: pip install 'studio-runner[local]'") from None
    low, high = TESTED
    if not low <= _version_tuple(version) < high:
        raise MotoVersionUnsupported(
            f"the local stack was written for moto{TESTED_SPEC} (it patches moto internals); moto {version} is "
            f"installed: pip install 'moto{TESTED_SPEC}' (or reinstall 'studio-runner[local]')")
    return version


check_moto_version()


def light_moto_batch() -> None:
    """Import ``moto.batch`` as a bare package, without its ``__init__``.

    moto's Step Functions interpreter imports its AWS Batch integration, which imports
    ``moto.batch``, whose ``__init__`` loads the Batch and EC2 models with EC2's regions,
    zones and instance types: 1.6 s of every local process's 10 s of fixed costs
    (``python -X importtime``), for a service no run of ours calls. The integration needs
    only ``moto.batch.utils``; that and the models (should anything ask for them) still
    load from the package's folder. Done before anything imports the interpreter, and
    only if nothing imported ``moto.batch`` already.
    """
    if "moto.batch" in sys.modules:
        return
    spec = importlib.util.find_spec("moto.batch")
    if spec is None or not spec.submodule_search_locations:
        return
    package = types.ModuleType("moto.batch")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    package.__file__ = spec.origin
    package.__package__ = "moto.batch"

    def _models_on_demand(name: str) -> Any:  # what the real __init__ exports, loaded when asked for
        if name == "batch_backends":
            return importlib.import_module("moto.batch.models").batch_backends
        raise AttributeError(f"module 'moto.batch' has no attribute {name!r}")

    package.__getattr__ = _models_on_demand  # type: ignore[attr-defined]
    sys.modules["moto.batch"] = package


_guard_lock = threading.Lock()
_guarded = False


def keep_interpreter_inside_mocks() -> None:
    """Make moto's Step Functions interpreter unable to reach anything but the in-process mocks.

    moto builds a boto3 client for every Task state; when its mock is not active (a run's
    worker thread outliving the ``with LocalStack``), it points that client at
    ``http://localhost:5000`` (moto's server default) and sends the Lambda invocation, state
    included, there. Patched for the life of the process, never undone: such a client
    now fails instead of leaving the process.
    """
    global _guarded
    with _guard_lock:
        if _guarded:
            return
        from moto.core.models import botocore_stubber
        from moto.stepfunctions.parser.asl.utils import boto_client as boto_client_module

        original = boto_client_module.boto_client_for

        def boto_client_for(region: str, service: str, state_credentials: Any = None):
            if not botocore_stubber.enabled:
                raise RuntimeError(f"local run: no {service} call may leave this process's mocks")
            return original(region, service, state_credentials)

        for name, module in list(sys.modules.items()):
            if name.startswith("moto.stepfunctions.parser") and getattr(module, "boto_client_for", None) is original:
                module.boto_client_for = boto_client_for
        boto_client_module.boto_client_for = boto_client_for
        _guarded = True


def step_functions_parameter_names() -> AbstractContextManager:
    """moto's interpreter passes a ``states:startExecution`` task's parameters to boto3 as
    the ASL spells them (``StateMachineArn``), where boto3 wants ``stateMachineArn``, and reads
    the answer back the same way: translate, as Step Functions does (its DynamoDB integration
    needs nothing: DynamoDB's own names are capitalised). The ASL stays the deployed one."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )

    to_boto = StateTaskServiceSfn._normalise_parameters

    def normalise_parameters(self, parameters, boto_service_name=None, service_action_name=None):
        to_boto(self, parameters, boto_service_name, service_action_name)
        for key in list(parameters):
            parameters[key[:1].lower() + key[1:]] = parameters.pop(key)

    def normalise_response(self, response, boto_service_name=None, service_action_name=None):
        if isinstance(response, dict):
            for key in list(response):
                response[key[:1].upper() + key[1:]] = response.pop(key)

    stack = ExitStack()
    stack.enter_context(mock.patch.object(StateTaskServiceSfn, "_normalise_parameters", normalise_parameters))
    stack.enter_context(mock.patch.object(StateTaskServiceSfn, "_normalise_response", normalise_response))
    return stack


#: ``invoke(function_name, body, response_headers) -> bytes``: a Lambda invocation, answered.
Invoke = Callable[[str, bytes, dict[str, str]], bytes]


def route_lambda_invocations(invoke: Invoke) -> AbstractContextManager:
    """Lambda Invoke calls (the state machine's Task states) answered by ``invoke`` in this
    process instead of moto's simple Lambda backend."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def _invoke(backend, function_name_or_arn, qualifier, body, headers, response_headers):
        name = function_name_or_arn.rsplit(":", 1)[-1] if ":function:" in function_name_or_arn else function_name_or_arn
        return invoke(name, body, response_headers)

    return mock.patch.object(LambdaSimpleBackend, "invoke", _invoke)


def shorten_waits(scale: float) -> AbstractContextManager:
    """Wait states last ``scale`` times their seconds (and still end at once on a stop)."""
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

    def _wait_interval(fn, env, wait_seconds):
        if wait_seconds > 0:
            env.program_state_event.wait(wait_seconds * scale)

    return mock.patch.object(WaitFunction, "_wait_interval", _wait_interval)


def atomic_dynamodb_writes() -> AbstractContextManager:
    """DynamoDB applies a conditional write atomically; moto does not when several threads
    (executions) write the same item at once, so serialise its writes, as DynamoDB does per item."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    stack = ExitStack()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        def atomic(self, *args, _original=original, **kwargs):
            with lock:
                return _original(self, *args, **kwargs)

        stack.enter_context(mock.patch.object(DynamoDBBackend, name, atomic))
    return stack


def interpreter_threads() -> list[threading.Thread]:
    """The threads moto's Step Functions interpreter runs executions in (to join them)."""
    from moto.stepfunctions.parser.utils import TMP_THREADS

    return TMP_THREADS


def http_server(port: int) -> Any:
    """moto's threaded HTTP server on 127.0.0.1:``port``, started (``.stop()`` to end it).
    It needs Flask (``[local]`` installs it)."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server


def on_stop_execution(callback: Callable[[str], None]) -> AbstractContextManager:
    """``callback(execution_arn)`` after every StopExecution moto accepts, whoever sent it (this
    process, or another through ``http_server``): Step Functions' EventBridge rule, in short."""
    from moto.stepfunctions.models import StepFunctionBackend

    original = StepFunctionBackend.stop_execution

    def stop_execution(self, execution_arn: str, *args: Any, **kwargs: Any) -> Any:
        execution = original(self, execution_arn, *args, **kwargs)
        callback(execution_arn)
        return execution

    return mock.patch.object(StepFunctionBackend, "stop_execution", stop_execution)
