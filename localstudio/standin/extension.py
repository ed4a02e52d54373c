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
- kernel WebSockets that the server drops after ``drop_websockets_after_seconds``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from dataclasses import dataclass, field
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from jupyter_server.auth.identity import User
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.services.kernels.handlers import MainKernelHandler
from jupyter_server.services.kernels.websocket import KernelWebsocketHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.httputil import HTTPServerRequest
from tornado.ioloop import IOLoop
from tornado.routing import Matcher, Rule

from .sagemaker_api import INSTANCE_TYPE_RE, LoginTokens, SageMakerApi, SageMakerApiHandler
from .world import (
    DEFAULT_INSTANCE_TYPE,
    HOSTS,
    IDENTITY,
    ApiError,
    App,
    Faults,
    World,
    kernel_gateway_app_name,
)

log = logging.getLogger("localstudio.standin")

SAGEMAKER_PATH = "/_aws/sagemaker"
CONTROL_PATH = "/_standin"
AUTH_PATH = "/auth"

#: Flavor → Jupyter base_url (Studio's proxy paths).
BASE_URLS = {
    "studio-space": "/jupyterlab/default/",
    "studio-classic": "/jupyter/default/",
    "notebook-instance": "/",
    "jupyter": "/",
}

KERNEL_GATEWAY_WAIT_LIMIT = 900.0  # seconds; a real KernelGateway start takes minutes


@dataclass
class StandInState:
    """What the extension's handlers share (one per server)."""

    flavor: str
    world: World
    faults: Faults
    tokens: LoginTokens
    serverapp: Any
    kernel_apps: dict[str, str] = field(default_factory=dict)  # kernel id → KernelGateway app name

    @property
    def kernel_manager(self) -> Any:
        return self.serverapp.kernel_manager

    @property
    def terminal_manager(self) -> Any:
        return self.serverapp.web_app.settings.get("terminal_manager")

    async def snapshot(self) -> dict[str, Any]:
        km = self.kernel_manager
        kernels = []
        for model in await ensure_async(km.list_kernels()):
            try:
                kernel = km.get_kernel(model["id"])
            except KeyError:  # shut down between the listing and now
                continue
            ready = getattr(kernel, "ready", None)
            process = getattr(getattr(kernel, "provisioner", None), "process", None)
            kernels.append(
                {
                    "id": model["id"],
                    "name": model["name"],
                    "execution_state": model.get("execution_state"),
                    "connections": model.get("connections", 0),
                    "app_name": self.kernel_apps.get(model["id"]),
                    "pid": getattr(process, "pid", None),
                    # False while the kernel is (re)starting: a DELETE then gets a 500
                    # from jupyter_client, as it would on a real server.
                    "ready": bool(ready is not None and ready.done()),
                }
            )
        sessions = await ensure_async(self.serverapp.session_manager.list_sessions())
        tm = self.terminal_manager
        terminals = [t["name"] for t in tm.list()] if tm is not None else []
        nb = self.world.instance
        return {
            "flavor": self.flavor,
            "jupyter_available": self.world.jupyter_available(),
            "apps": [a.summary() for a in self.world.apps],
            "kernels": kernels,
            "sessions": [
                {"id": s["id"], "path": s.get("path"), "kernel_id": (s.get("kernel") or {}).get("id")}
                for s in sessions
            ],
            "terminals": terminals,
            "notebook_instances": [{"name": nb.name, "status": nb.status}]
            if self.flavor == "notebook-instance"
            else [],
            "faults": self.faults.to_dict(),
            "api_errors": list(self.world.api_errors),
        }

    def kernels_on(self, app_name: str) -> list[str]:
        """Ids of the running kernels on a KernelGateway app."""
        running = set(self.kernel_manager.list_kernel_ids())
        return sorted(k for k, name in self.kernel_apps.items() if name == app_name and k in running)

    # ---- consequences of apps going away --------------------------------------------

    def apps_gone(self, apps: list[App]) -> None:
        """An app being deleted takes its kernels (and, for the server app, terminals) with it."""
        for app in apps:
            if app.app_type == "KernelGateway":
                doomed = [k for k, name in self.kernel_apps.items() if name == app.app_name]
                for kernel_id in doomed:
                    IOLoop.current().add_callback(self._shutdown_kernel, kernel_id)
            else:
                IOLoop.current().add_callback(self.shutdown_everything)

    async def _shutdown_kernel(self, kernel_id: str) -> None:
        self.kernel_apps.pop(kernel_id, None)
        try:
            await ensure_async(self.kernel_manager.shutdown_kernel(kernel_id, now=True))
        except KeyError:
            pass  # already gone

    async def shutdown_everything(self) -> None:
        """What stopping the Jupyter server (app or instance) does to what runs in it."""
        for kernel_id in list(self.kernel_manager.list_kernel_ids()):
            await self._shutdown_kernel(kernel_id)
        tm = self.terminal_manager
        if tm is not None:
            await tm.terminate_all()


# ---- the front door: hosts, the loading page, injected HTTP errors ----------------------

LOADING_PAGE = (
    "<!doctype html><html><head><title>SageMaker Studio</title></head>"
    "<body><p>Loading JupyterLab… (the app is starting)</p></body></html>"
)
SIGNIN_PAGE = (
    "<!doctype html><html><head><title>Amazon Web Services Sign-In</title></head>"
    "<body><form action=\"/signin\" method=\"post\"><p>Sign in as IAM user</p></form></body></html>"
)


def _host_role(request: HTTPServerRequest) -> str | None:
    host = (request.host or "").rsplit(":", 1)[0]
    for role, address in HOSTS.items():
        if host == address:
            return role
    return None


class _FrontDoorMatcher(Matcher):
    """Plays what stands in front of Jupyter in AWS, host by host (see HOSTS):

    - the API host answers only the SageMaker API and the control calls;
    - the sign-in host answers every GET with the console's sign-in page (HTTP 200);
    - the app's host passes /auth and Jupyter through, except while the app is not
      running, when Jupyter's paths answer a loading page (HTTP 200 HTML, or 503 with
      the ``loading_page`` knob) — never JSON.
    """

    def __init__(self, state: StandInState, base_url: str) -> None:
        self.state = state
        self.base_url = base_url

    def _answer(self, request: HTTPServerRequest, status: int, message: str, kind: str = "json") -> dict[str, Any]:
        request._standin_answer = (status, message, kind)  # type: ignore[attr-defined]
        return {}

    def match(self, request: HTTPServerRequest) -> dict[str, Any] | None:
        path = request.path or "/"
        role = _host_role(request)
        ours = path.startswith((SAGEMAKER_PATH, CONTROL_PATH))
        if role == "api":
            return None if ours else self._answer(request, 404, "Not found (this is the SageMaker API's host)")
        if role == "signin":
            return self._answer(request, 200, SIGNIN_PAGE, "html")
        if role is None or ours:
            return self._answer(request, 404, "Not found on this host")
        rule = self.state.faults.take_http_error(request.method or "GET", path)
        if rule is not None and rule.html:
            return self._answer(request, rule.status, LOADING_PAGE, "html")
        if rule is not None:
            return self._answer(request, rule.status, "stand-in fault: http_errors")
        if path == AUTH_PATH or not path.startswith(self.base_url):
            return None
        if not self.state.world.jupyter_available():
            if self.state.faults.loading_page == "503":
                return self._answer(request, 503, "The app is not running (it is starting, stopping or deleted)")
            return self._answer(request, 200, LOADING_PAGE, "html")
        return None


class FrontDoorAnswer(web.RequestHandler):
    """Answers what the matcher decided, for any method (WebSocket handshakes included)."""

    def check_xsrf_cookie(self) -> None:
        """Nothing behind this answer changes state."""

    def prepare(self) -> None:
        status, message, kind = getattr(self.request, "_standin_answer", (503, "unavailable", "json"))
        self.set_status(status)
        if kind == "html":
            self.set_header("Content-Type", "text/html; charset=UTF-8")
            self.finish(message)
            return
        self.set_header("Content-Type", "application/json")
        if status == 503:
            self.set_header("Retry-After", "1")
        self.finish(json.dumps({"message": message}))


# ---- login ------------------------------------------------------------------------------


class PresignedLoginHandler(JupyterHandler):
    """GET /auth?token=…: redeem a one-time presigned token for the login cookie.

    A bad, used or expired token ends, as in AWS (REAL-STUDIO L3), with a redirect to the
    console's sign-in page on another host, which answers HTTP 200. The login sets no
    ``_xsrf``: Jupyter sets that only when it renders a page (L4).
    """

    def initialize(self, state: StandInState) -> None:
        self.state = state

    def _request_summary(self) -> str:
        # Tornado logs the full URI on errors; this one carries a credential.
        return f"{self.request.method} {self.request.path} ({self.request.remote_ip})"

    def check_xsrf_cookie(self) -> None:
        """GET only."""

    def get(self) -> None:
        login = self.state.tokens.redeem(self.get_argument("token", ""))
        if login is not None and self.state.faults.login_refusals > 0:
            self.state.faults.login_refusals -= 1
            login = None
        if login is None:
            self.log.warning("GET %s: invalid, used or expired presigned URL: to the sign-in page", AUTH_PATH)
            port = (self.request.host or "").rsplit(":", 1)[-1]
            self.redirect(f"{self.request.protocol}://{HOSTS['signin']}:{port}/signin?client_id=arn%3Aaws%3Asignin")
            return
        user = User(
            username=IDENTITY["user_profile"],
            name=IDENTITY["user_profile"],
            display_name=IDENTITY["user_profile"],
        )
        self.identity_provider.set_login_cookie(self, user)
        self.redirect(login.redirect_path)


class LabPageHandler(JupyterHandler):
    """{base_url}lab: where the login redirects (JupyterLab itself is not installed).

    Not rendered from a template, so it sets no ``_xsrf`` (what Studio's landing sets is
    unknown; a client must be able to obtain it from any rendered page).
    """

    @web.authenticated
    def get(self) -> None:
        self.set_header("Content-Type", "text/html")
        self.finish("<!doctype html><title>JupyterLab (Studio stand-in)</title><p>JupyterLab stand-in</p>")


# ---- Studio Classic ---------------------------------------------------------------------


class ClassicKernelsHandler(MainKernelHandler):
    """POST api/kernels: Classic runs each kernel on the KernelGateway app of its instance type.

    Studio Classic is retired (A7): a KernelGateway app can no longer be created, so a
    kernel for an instance type without a running app is refused with AWS's reason.
    """

    def initialize(self, state: StandInState) -> None:
        self.state = state

    async def _kernel_gateway(self, instance_type: str) -> App:
        world = self.state.world
        user = IDENTITY["user_profile"]
        app = next((a for a in reversed(world.apps) if a.app_type == "KernelGateway" and a.user_profile == user
                    and a.instance_type == instance_type and a.status in ("Pending", "InService")), None)
        if app is None:
            try:
                app = world.create_app(
                    "KernelGateway", kernel_gateway_app_name(user, instance_type), space_name=None,
                    user_profile=user, instance_type=instance_type,
                    start_seconds=self.state.faults.kernel_gateway_start_seconds,
                )
            except ApiError as e:
                raise web.HTTPError(400, f"Could not start a KernelGateway app ({instance_type}): {e.message}") from None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + KERNEL_GATEWAY_WAIT_LIMIT
        while app.status == "Pending" and loop.time() < deadline:
            await asyncio.sleep(0.05)  # yields to the loop: other requests go on meanwhile
        if app.status != "InService":
            reason = app.failure_reason or f"status {app.status}"
            raise web.HTTPError(500, f"KernelGateway app {app.app_name} did not start: {reason}")
        return app

    @web.authenticated
    @authorized
    async def post(self) -> None:
        model = self.get_json_body() or {}
        instance_type = model.get("instance_type") or DEFAULT_INSTANCE_TYPE
        if not isinstance(instance_type, str) or not INSTANCE_TYPE_RE.match(instance_type) or instance_type == "system":
            raise web.HTTPError(400, f"Invalid instance_type {instance_type!r}")
        app = await self._kernel_gateway(instance_type)
        km = self.kernel_manager
        kernel_id = await ensure_async(
            km.start_kernel(kernel_name=model.get("name") or km.default_kernel_name, path=model.get("path"))
        )
        self.state.kernel_apps[kernel_id] = app.app_name
        reply = await ensure_async(km.kernel_model(kernel_id))
        self.set_header("Location", url_path_join(self.base_url, "api", "kernels", kernel_id))
        self.set_status(201)
        self.finish(json.dumps(reply, default=str))


class ClassicAppsHandler(APIHandler):
    """GET sagemaker/api/apps: the user's KernelGateway apps, a bare list (A8: no kernels field)."""

    def initialize(self, state: StandInState) -> None:
        self.state = state

    @web.authenticated
    def get(self) -> None:
        apps = [
            {
                "app_name": a.app_name,
                "app_type": a.app_type,
                "environment_arn": f"arn:aws:sagemaker:{IDENTITY['region']}:081325390199:image/sagemaker-base-python-310",
                "instance_type": a.instance_type,
                "status": a.status,
            }
            for a in self.state.world.apps
            if a.app_type == "KernelGateway" and a.status != "Deleted"
        ]
        self.finish(json.dumps(apps))


class ClassicAppHandler(APIHandler):
    """DELETE sagemaker/api/apps/{app_name}: delete a KernelGateway app and its kernels."""

    def initialize(self, state: StandInState) -> None:
        self.state = state

    @web.authenticated
    def delete(self, app_name: str) -> None:
        app = self.state.world.find_app("KernelGateway", app_name, user_profile=IDENTITY["user_profile"])
        if app is None or app.status in ("Deleted", "Deleting"):
            raise web.HTTPError(404, f"No KernelGateway app {app_name}")
        self.state.world.delete_app(app)
        self.set_status(204)
        self.finish()


# ---- kernel WebSockets that can be dropped ----------------------------------------------


class DroppableKernelWebsocketHandler(KernelWebsocketHandler):
    """The kernel WebSocket, closed by the server after drop_websockets_after_seconds."""

    def initialize(self, state: StandInState) -> None:
        self.state = state
        self._drop_handle: object | None = None

    async def open(self, kernel_id: str) -> None:  # type: ignore[override]
        after = self.state.faults.drop_websockets_after_seconds
        if after is not None:
            self._drop_handle = IOLoop.current().call_later(after, self._drop)
        await super().open(kernel_id)

    def _drop(self) -> None:
        self._drop_handle = None
        if self.ws_connection is not None:
            self.log.info("stand-in fault: dropping kernel WebSocket %s", self.kernel_id)
            self.close(1001, "stand-in fault: drop_websockets_after_seconds")

    def on_close(self) -> None:
        if self._drop_handle is not None:
            IOLoop.current().remove_timeout(self._drop_handle)
            self._drop_handle = None
        super().on_close()


# ---- control endpoints ------------------------------------------------------------------


class _ControlHandler(web.RequestHandler):
    """Plain handlers for tests; the stand-in only listens on 127.0.0.1."""

    def initialize(self, state: StandInState) -> None:
        self.state = state

    def check_xsrf_cookie(self) -> None:
        """Control calls come from test code, not from a browser page."""

    def reply(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload, default=str))


class StateHandler(_ControlHandler):
    async def get(self) -> None:
        self.reply(await self.state.snapshot())


class FaultsHandler(_ControlHandler):
    def get(self) -> None:
        self.reply(self.state.faults.to_dict())

    def post(self) -> None:
        try:
            knobs = json.loads(self.request.body or b"{}")
            if not isinstance(knobs, dict):
                raise ValueError("body must be a JSON object of knobs")
            self.state.faults.update(knobs)
        except (ValueError, TypeError) as e:
            self.reply({"message": str(e)}, 400)
            return
        self.reply(self.state.faults.to_dict())


class IdleShutdownHandler(_ControlHandler):
    def post(self) -> None:
        self.reply({"stopped": self.state.world.idle_shutdown()})


class KillKernelHandler(_ControlHandler):
    def post(self, kernel_id: str) -> None:
        try:
            kernel = self.state.kernel_manager.get_kernel(kernel_id)
        except KeyError:
            self.reply({"message": f"no kernel {kernel_id}"}, 404)
            return
        process = getattr(getattr(kernel, "provisioner", None), "process", None)
        if process is None:
            self.reply({"message": f"kernel {kernel_id} has no local process"}, 409)
            return
        os.kill(process.pid, signal.SIGKILL)
        self.reply({"killed": kernel_id, "pid": process.pid})


# ---- wiring -----------------------------------------------------------------------------


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

    if flavor == "studio-classic":
        # Studio reports each kernel's KernelGateway app in the kernel model, which is
        # what sessions[].kernel.app_name shows (A8).
        km = serverapp.kernel_manager
        plain_kernel_model = km.kernel_model

        def kernel_model(kernel_id: str) -> dict[str, Any]:
            model = plain_kernel_model(kernel_id)
            if kernel_id in state.kernel_apps:
                model["app_name"] = state.kernel_apps[kernel_id]
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
    if flavor == "studio-classic":
        handlers += [
            (url_path_join(base_url, "api/kernels"), ClassicKernelsHandler, s),
            (url_path_join(base_url, "sagemaker/api/apps"), ClassicAppsHandler, s),
            (url_path_join(base_url, "sagemaker/api/apps/(?P<app_name>[^/]+)"), ClassicAppHandler, s),
        ]
    web_app.add_handlers(".*$", handlers)

    # The front door sees every request first, like Studio's proxy in front of Jupyter.
    router = web_app.default_router
    router.rules.insert(0, router.process_rule(Rule(_FrontDoorMatcher(state, base_url), FrontDoorAnswer)))
    return state
