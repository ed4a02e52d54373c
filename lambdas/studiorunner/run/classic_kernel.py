"""Studio Classic's kernel hook (``catalog.TARGET_KINDS["studio-classic"].kernel_start``).

On Classic a kernel runs on a KernelGateway app of its own, chosen by instance type, and a
kernel POST blocks while that app starts. Studio Classic is retired (REAL-STUDIO A7): a
kernel goes only on a KernelGateway app that still runs.
"""

from __future__ import annotations

from typing import Any

from studiorunner.errors import JupyterHTTPError, TargetFailed
from studiorunner.jupyter.rest import JupyterClient
from studiorunner.run.context import StepContext
from studiorunner.run.services import KERNEL_POST_TIMEOUT_SECONDS
from studiorunner.run.state import KernelProgress, present


def start_kernel(jupyter: JupyterClient, kernel: KernelProgress, ctx: StepContext) -> dict[str, Any] | str:
    """Start the run's kernel on a running KernelGateway app, then its session; or say what it waits for."""
    _start_classic_kernel(jupyter, kernel, ctx)
    if not kernel.id:
        return "waiting for the KernelGateway app"
    session = jupyter.create_session(present(kernel.session_path, "kernel.session_path"), kernel_id=kernel.id)
    if not kernel.app_name:  # Studio names the kernel's app in its sessions (A8)
        kernel.app_name = (session.get("kernel") or {}).get("app_name") or jupyter.kernel_app_name(kernel.id)
        kernel.app_created = bool(kernel.app_name) and kernel.app_name not in (kernel.apps_before or [])
    return session


def _classic_instance_type(jupyter: JupyterClient, ctx: StepContext) -> str:
    """The instance type of a running KernelGateway app to put the kernel on.

    Studio Classic is retired (REAL-STUDIO A7): a kernel for an instance type without a
    running KernelGateway app would need a new app, which AWS no longer creates.
    """
    running: dict[str, Any] = {a["instance_type"]: a.get("app_name") for a in jupyter.list_studio_apps()
                               if a.get("status", "InService") == "InService" and a.get("instance_type")}
    wanted = ctx.spec.instance_type
    if wanted and wanted in running:
        return wanted
    if not wanted and running:
        return sorted(running)[0]
    have = ", ".join(f"{app} ({itype})" for itype, app in sorted(running.items())) or "none"
    name = ctx.run.target
    raise TargetFailed(
        f"Target {name!r} is Studio Classic, which AWS has retired: a kernel{' on ' + wanted if wanted else ''} "
        f"would need a new KernelGateway app, and AWS no longer creates them (running KernelGateway apps: {have}). "
        f"Use kernel.instance_type of a running app, or a studio-space target.",
        target=name, instance_type=wanted, retired=True,
    )


def _start_classic_kernel(jupyter: JupyterClient, kernel: KernelProgress, ctx: StepContext) -> None:
    """POST a kernel on Studio Classic without letting a slow KernelGateway start hold the Lambda.

    The POST blocks while the app starts. If it times out the server keeps starting the
    app and the kernel; the next call adopts the kernel that appeared since, rather than
    POSTing again and starting a second one. The kernel's app is read from the POST's
    answer, else from ``sessions[].kernel.app_name`` once the session exists (A8:
    ``sagemaker/api/apps`` says nothing about kernels).
    """
    if kernel.kernels_before is None:
        kernel.kernels_before = [k["id"] for k in jupyter.list_kernels()]
        kernel.apps_before = sorted(a.get("app_name", "") for a in jupyter.list_studio_apps())
    before, apps_before = set(kernel.kernels_before), set(kernel.apps_before or [])
    if kernel.posted:
        for model in jupyter.list_kernels():
            if model["id"] not in before and model.get("name") == kernel.name:
                kernel.id = model["id"]
                break
    else:
        instance_type = _classic_instance_type(jupyter, ctx)
        kernel.posted = True
        try:
            model = jupyter.create_kernel(present(kernel.name, "kernel.name"), instance_type=instance_type,
                                          timeout=KERNEL_POST_TIMEOUT_SECONDS)
        except JupyterHTTPError as exc:
            if exc.timed_out:
                return
            if "deprecated" in str(exc).lower():
                raise TargetFailed(
                    f"Studio Classic refused a kernel on {instance_type}: AWS no longer creates KernelGateway apps ({exc})",
                    target=ctx.run.target, retired=True,
                ) from None
            raise
        kernel.id = model["id"]
        if model.get("app_name"):
            kernel.app_name = model["app_name"]
    if kernel.app_name:
        kernel.app_created = kernel.app_name not in apps_before
