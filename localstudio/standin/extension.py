"""The server extension that makes a plain jupyter_server look like SageMaker Studio.

The server listens on three loopback addresses (world.HOSTS), one per host AWS has:

- API host: ``/_aws/sagemaker`` (the SageMaker JSON API, see sagemaker_api.py) and
  ``/_standin/…`` (control endpoints for tests: state, fault knobs, killing a kernel,
  idle shutdown). Nothing else.
- sign-in host: the console's sign-in page, HTTP 200 HTML, where a bad, used or expired
  presigned URL ends (REAL-STUDIO L3).
- the app's host: ``/auth?token=…`` (the presigned-URL login: sets the login cookie,
  no ``_xsrf``, redirects to ``{base_url}lab``) and Jupyter under its base URL; ``_xsrf``
  only from a rendered page, cookie path the base URL (L4/L5); a loading page (HTTP 200
  HTML, or 503 by knob) while the app is not running (A11); the ``http_errors`` faults.
- Studio Classic (retired, A7/A8): ``POST {base_url}api/kernels`` runs the kernel on the
  running KernelGateway app of its ``instance_type`` and refuses when there is none (no
  new app can be created); kernel models carry ``app_name``; ``sagemaker/api/apps`` is a
  bare list.
- kernel WebSockets that the server drops after ``drop_websockets_after_seconds``, and
  that lose a rate-limited cell's ``status: idle`` (``iopub_idle_lost_when_rate_limited``).

One module per concern: shared.py (paths, the handlers' state), front_door.py, login.py,
classic.py, control.py (test controls and the droppable WebSocket); this one wires them.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.utils import url_path_join
from tornado.ioloop import IOLoop
from tornado.routing import Rule

from .classic import ClassicAppHandler, ClassicAppsHandler, ClassicKernelsHandler
from .control import (
    DroppableKernelWebsocketHandler,
    FaultsHandler,
    IdleShutdownHandler,
    KillKernelHandler,
    StateHandler,
)
from .front_door import FrontDoorAnswer, FrontDoorMatcher
from .login import LabPageHandler, PresignedLoginHandler
from .sagemaker_api import LoginTokens, SageMakerApi, SageMakerApiHandler
from .shared import AUTH_PATH, BASE_URLS, CONTROL_PATH, SAGEMAKER_PATH, StandInState
from .world import Faults, World

__all__ = ["AUTH_PATH", "BASE_URLS", "CONTROL_PATH", "SAGEMAKER_PATH", "StandInState", "install"]


def install(
    serverapp: Any,
    *,
    flavor: str,
    faults: Faults,
    app_initially: str = "present",
    instance_initially: str = "InService",
    legacy: bool = False,
) -> StandInState:
    """Add the stand-in's handlers and front door to an initialized ServerApp."""
    web_app = serverapp.web_app
    base_url = web_app.settings["base_url"]
    state_holder: list[StandInState] = []
    world = World(
        flavor=flavor,
        faults=faults,
        app_initially=app_initially,
        instance_initially=instance_initially,
        legacy=legacy,
        on_apps_gone=lambda apps: state_holder[0].apps_gone(apps),
        on_instance_stopping=lambda: IOLoop.current().add_callback(state_holder[0].shutdown_everything),
    )
    tokens = LoginTokens()
    state = StandInState(flavor=flavor, world=world, faults=faults, tokens=tokens, serverapp=serverapp)
    state_holder.append(state)

    # /auth (outside base_url) sets the login cookie for the whole host; _xsrf keeps
    # jupyter_server's own path, the base URL (REAL-STUDIO L4/L5).
    serverapp.identity_provider.cookie_options = {**serverapp.identity_provider.cookie_options, "path": "/"}
    web_app.settings["xsrf_cookie_kwargs"] = {"path": base_url}

    km = serverapp.kernel_manager
    plain_kernel_model = km.kernel_model

    def kernel_model(kernel_id: str) -> dict[str, Any]:
        model = plain_kernel_model(kernel_id)
        if kernel_id in state.kernel_apps:
            # Studio reports each kernel's KernelGateway app in the kernel model, which is
            # what sessions[].kernel.app_name shows (A8).
            model["app_name"] = state.kernel_apps[kernel_id]
        if kernel_id in state.idle_lost:
            model["execution_state"] = "busy"  # the server never saw the lost idle either
        return model

    km.kernel_model = kernel_model

    api = SageMakerApi(world, tokens, base_url)
    kernel_id = r"(?P<kernel_id>\w+-\w+-\w+-\w+-\w+)"
    s = {"state": state}
    handlers: list[tuple[Any, ...]] = [
        (SAGEMAKER_PATH + "/?", SageMakerApiHandler, {"api": api}),
        (CONTROL_PATH + "/state", StateHandler, s),
        (CONTROL_PATH + "/faults", FaultsHandler, s),
        (CONTROL_PATH + f"/kernels/{kernel_id}/kill", KillKernelHandler, s),
        (CONTROL_PATH + "/idle-shutdown", IdleShutdownHandler, s),
        (AUTH_PATH, PresignedLoginHandler, s),
        (url_path_join(base_url, "lab"), LabPageHandler),
        (url_path_join(base_url, f"api/kernels/{kernel_id}/channels"), DroppableKernelWebsocketHandler, s),
    ]
    if world.plays.kernel_gateway_apps:
        handlers += [
            (url_path_join(base_url, "api/kernels"), ClassicKernelsHandler, s),
            (url_path_join(base_url, "sagemaker/api/apps"), ClassicAppsHandler, s),
            (url_path_join(base_url, "sagemaker/api/apps/(?P<app_name>[^/]+)"), ClassicAppHandler, s),
        ]
    web_app.add_handlers(".*$", handlers)

    # The front door sees every request first, like Studio's proxy in front of Jupyter.
    router = web_app.default_router
    router.rules.insert(0, router.process_rule(Rule(FrontDoorMatcher(state, base_url), FrontDoorAnswer)))
    return state
