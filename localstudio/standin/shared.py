"""What the stand-in's server extension shares: its paths, and the state its handlers hold."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from jupyter_core.utils import ensure_async
from tornado.ioloop import IOLoop

from studiorunner import catalog

from .sagemaker_api import LoginTokens
from .world import App, Faults, World

log = logging.getLogger("localstudio.standin")

SAGEMAKER_PATH = "/_aws/sagemaker"
CONTROL_PATH = "/_standin"
AUTH_PATH = "/auth"

#: Flavor → Jupyter base_url (Studio's proxy paths).
BASE_URLS = {name: kind.standin.base_url for name, kind in catalog.TARGET_KINDS.items()}

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
    idle_lost: set[str] = field(default_factory=set)  # kernels whose last idle was lost: REST says busy

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
            if self.world.plays.notebook_instance
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
