"""Studio Classic (retired, A7/A8): kernels on KernelGateway apps, ``sagemaker/api/apps``."""

from __future__ import annotations

import asyncio
import json

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.services.kernels.handlers import MainKernelHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .sagemaker_api import INSTANCE_TYPE_RE
from .shared import KERNEL_GATEWAY_WAIT_LIMIT, StandInState
from .world import DEFAULT_INSTANCE_TYPE, IDENTITY, ApiError, App, kernel_gateway_app_name


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
