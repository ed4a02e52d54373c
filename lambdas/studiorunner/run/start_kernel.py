"""StartKernel: load the notebook, save the pending output, start a kernel and wait until it answers."""

from __future__ import annotations

import logging
import time
from typing import Any

from studiorunner import notebook as nbtools
from studiorunner.errors import JupyterHTTPError, KernelDied, KernelNotReady
from studiorunner.jupyter.rest import JupyterClient, new_client_session_id
from studiorunner.parameters import inject_parameters
from studiorunner.payload import RunSpec
from studiorunner.run.services import (KERNEL_POST_TIMEOUT_SECONDS, KERNEL_PROBE_SECONDS, UPLOAD_DIR, Services,
                                       check_deadline)
from studiorunner.targets import next_wait

log = logging.getLogger(__name__)

def _load_source(run: dict[str, Any], spec: RunSpec, jupyter: JupyterClient, services: Services):
    """The notebook to run and its path in the target's file tree (uploaded if from S3)."""
    if spec.notebook:
        return jupyter.read_notebook(spec.notebook), spec.notebook
    nb = services.notebooks().read(spec.notebook_s3)
    path = f"{UPLOAD_DIR}/{run['run_id']}/{spec.notebook_s3.rsplit('/', 1)[-1]}"
    jupyter.write_notebook(path, nb)
    return nb, path


def start_kernel(state: dict[str, Any], services: Services) -> dict[str, Any]:
    """First call: load the notebook, save the pending output, start a kernel. Later calls: wait for it."""
    run = state["run"]
    now = services.clock()
    check_deadline(run, now)
    spec = RunSpec.from_dict(run["spec"])
    kernel = dict(state.get("kernel") or {})
    target = services.target(run)
    jupyter = JupyterClient(target.login())

    if not kernel.get("id"):
        kernel.setdefault("started_at", now)
        kernel.setdefault("attempt", 0)
        if not kernel.get("name"):
            nb, path = _load_source(run, spec, jupyter, services)
            choice = jupyter.choose_kernel(spec.kernel_name, nb.metadata.get("kernelspec"))
            warnings = [choice.warning] if choice.warning else []
            language = (nb.metadata.get("kernelspec") or {}).get("language") or \
                (nb.metadata.get("language_info") or {}).get("name") or "python"
            if spec.parameters:
                warnings += inject_parameters(nb, spec.parameters, language=language)
            nbtools.prepare_for_run(
                nb, run_id=run["run_id"], input_path=spec.notebook or spec.notebook_s3,
                output_uri=run["output_uri"], parameters=spec.parameters, kernel_name=choice.name,
            )
            if warnings:
                nb.metadata.setdefault("studio_runner", {}).setdefault("warnings", []).extend(
                    w for w in warnings if w not in nb.metadata["studio_runner"].get("warnings", [])
                )
                for warning in warnings:
                    log.warning(warning)
            services.notebooks().write(run["output_uri"], nb)
            kernel.update(name=choice.name, path=path, warnings=warnings,
                          cells_total=len(nbtools.code_cells_to_run(nb)))
        if target.uses_kernel_gateway_apps:
            kernel.update(_start_classic_kernel(jupyter, kernel, spec))
            if not kernel.get("id"):
                return _kernel_pending(kernel, "waiting for the KernelGateway app", now, spec)
            session = jupyter.create_session(kernel["path"], kernel_id=kernel["id"])
        else:
            session = jupyter.create_session(kernel["path"], kernel_name=kernel["name"])
            kernel["id"] = session["kernel"]["id"]
        kernel["session_id"] = session["id"]
        kernel["client_session_id"] = new_client_session_id()

    state_now = jupyter.kernel_state(kernel["id"])
    if state_now in ("dead", "missing"):
        raise KernelDied(f"Kernel {kernel['name']!r} died while starting (state: {state_now})", kernel=kernel["name"])
    if not _kernel_answers(jupyter, kernel["id"]):
        return _kernel_pending(kernel, "kernel not answering kernel_info yet", now, spec)
    kernel.update(status="ready", wait_seconds=0)
    return kernel


def _kernel_answers(jupyter: JupyterClient, kernel_id: str, timeout: float = KERNEL_PROBE_SECONDS) -> bool:
    """True when the kernel answers a kernel_info_request (nbclient's ``wait_for_ready``).

    jupyter_server reports ``execution_state: starting`` until a client talks to the
    kernel, so the REST model alone cannot say whether it is ready. The probe uses its
    own WebSocket session id so it never touches the run's replay buffer.
    """
    from studiorunner.jupyter.kernel_protocol import kernel_info_request
    from studiorunner.jupyter.connection import ChannelClosed, KernelChannel

    ws = jupyter.channels(kernel_id, new_client_session_id())
    deadline = time.monotonic() + timeout
    try:
        with KernelChannel.open(ws.url, headers=ws.headers, timeout=timeout) as channel:
            request = kernel_info_request(session=new_client_session_id())
            channel.send(request)
            while (left := deadline - time.monotonic()) > 0:
                msg = channel.recv(left)
                if msg and msg.get("msg_type") == "kernel_info_reply" and \
                        msg.get("parent_header", {}).get("msg_id") == request["header"]["msg_id"]:
                    return True
    except ChannelClosed:
        return False
    return False


def _kernel_pending(kernel: dict[str, Any], detail: str, now: float, spec: RunSpec) -> dict[str, Any]:
    if now - kernel["started_at"] > spec.timeouts.start_seconds:
        raise KernelNotReady(
            f"Kernel {kernel.get('name')!r} was not ready after {spec.timeouts.start_seconds:g} s ({detail})",
            kernel=kernel.get("name"),
        )
    kernel.update(status="pending", detail=detail, wait_seconds=next_wait(kernel["attempt"], first=2.0, cap=30.0))
    kernel["attempt"] += 1
    return kernel


def _start_classic_kernel(jupyter: JupyterClient, kernel: dict[str, Any], spec: RunSpec) -> dict[str, Any]:
    """POST a kernel on Studio Classic without letting a slow KernelGateway start hold the Lambda.

    The POST blocks while the app starts. If it times out the server keeps starting the
    app and the kernel; the next call adopts the kernel that appeared since, rather than
    POSTing again and starting a second one.
    """
    update: dict[str, Any] = {}
    if "kernels_before" not in kernel:
        update["kernels_before"] = [k["id"] for k in jupyter.list_kernels()]
        update["apps_before"] = sorted(a.get("app_name") or a.get("AppName", "") for a in jupyter.list_studio_apps())
    before = set(kernel.get("kernels_before") or update.get("kernels_before", []))
    apps_before = set(kernel.get("apps_before") or update.get("apps_before", []))
    if kernel.get("posted"):
        for model in jupyter.list_kernels():
            if model["id"] not in before and model.get("name") == kernel["name"]:
                update["id"] = model["id"]
                break
    else:
        update["posted"] = True
        try:
            model = jupyter.create_kernel(kernel["name"], instance_type=spec.instance_type, timeout=KERNEL_POST_TIMEOUT_SECONDS)
        except JupyterHTTPError as exc:
            if not exc.facts.get("timeout"):
                raise
            return update
        update["id"] = model["id"]
        if model.get("app_name"):
            update["app_name"] = model["app_name"]
    if update.get("id") and not update.get("app_name"):
        for app in jupyter.list_studio_apps():
            if any(k == update["id"] for k in app.get("kernels", [])):
                update["app_name"] = app.get("app_name")
    if update.get("app_name"):
        update["app_created"] = update["app_name"] not in apps_before
    return update
