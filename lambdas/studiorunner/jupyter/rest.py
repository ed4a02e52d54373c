"""Jupyter Server REST API: contents, kernelspecs, kernels, sessions.

A thin typed layer over :class:`~studiorunner.jupyter.http.JupyterHTTP`; it turns HTTP statuses
into the run's named errors (a 404 on a notebook is ``NotebookNotFound``, not a stack
trace) and knows how to pick a kernelspec.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any

import nbformat

from studiorunner.errors import JupyterHTTPError, KernelSpecNotFound, NotebookInvalid, NotebookNotFound
from studiorunner.jupyter.http import JupyterHTTP, delete_if_present, quote_path

# Studio kernelspec names embed the image ARN, whose region and account differ between
# deployments: python3__SAGEMAKER_INTERNAL__arn:aws:sagemaker:us-east-1:081325390199:image/datascience-1.0
_ARN_REGION_ACCOUNT = re.compile(r"arn:(aws[a-z-]*):sagemaker:[a-z0-9-]*:\d*:")


#: What :meth:`JupyterClient.kernel_state` answers for a kernel that is gone for good.
DEAD_STATES = ("dead", "missing")


@dataclass(frozen=True)
class KernelChoice:
    name: str
    warning: str | None = None
    language: str | None = None  # the kernelspec's language (its translator's, when the notebook names none)


def _normalise_spec_name(name: str) -> str:
    return _ARN_REGION_ACCOUNT.sub(r"arn:\1:sagemaker:*:*:", name)


def _base_spec_name(name: str) -> str:
    return name.split("__SAGEMAKER_INTERNAL__", 1)[0]


class JupyterClient:
    """What a run needs from one Jupyter server."""

    def __init__(self, http: JupyterHTTP) -> None:
        self.http = http

    # -- contents -----------------------------------------------------------------
    def read_notebook(self, path: str) -> nbformat.NotebookNode:
        try:
            model = self.http.json("GET", f"api/contents/{quote_path(path)}", params={"type": "notebook", "content": 1})
        except JupyterHTTPError as exc:
            if exc.status == 404:
                raise NotebookNotFound(
                    f"Notebook {path!r} was not found in the target's file tree", path=path
                ) from None
            if exc.status == 400:
                # jupyter_server answers 400 "Unreadable Notebook: <why>" for a file that is not
                # JSON or not a notebook format it knows (nbformat 5…)
                reason = str(exc).split(" answered 400 ", 1)[-1]
                raise NotebookInvalid(f"{path!r} in the target's file tree is not a notebook Jupyter can read: "
                                      f"{reason}", path=path) from None
            raise
        return nbformat.from_dict(model["content"])

    def write_notebook(self, path: str, nb: nbformat.NotebookNode) -> None:
        self.ensure_directory(path.rsplit("/", 1)[0] if "/" in path else "")
        body = {"type": "notebook", "format": "json", "content": json.loads(nbformat.writes(nb))}
        self.http.put(f"api/contents/{quote_path(path)}", json=body)

    def read_text(self, path: str) -> str | None:
        """A text file's content, or None when it does not exist."""
        try:
            model = self.http.get(f"api/contents/{quote_path(path)}",
                                  params={"type": "file", "format": "text", "content": 1}).json()
        except JupyterHTTPError as exc:
            if exc.status == 404:
                return None
            raise
        return model.get("content") or ""

    def list_directory(self, path: str) -> list[str] | None:
        """The names in a folder of the tree (hidden ones included if the server shows them),
        or None when the folder does not exist."""
        try:
            model = self.http.get(f"api/contents/{quote_path(path)}", params={"type": "directory", "content": 1}).json()
        except JupyterHTTPError as exc:
            if exc.status == 404:
                return None
            raise
        return [item.get("name", "") for item in model.get("content") or []]

    def delete_file(self, path: str) -> bool:
        """Delete a file (or an empty folder) in the tree, for good; False when it was already gone.

        jupyter_server (by default, ``FileContentsManager.delete_to_trash``) and Studio move
        what the contents API deletes to the trash of the server's home
        (``~/.local/share/Trash``), where it stays; the API has no way around it (send2trash
        is used whenever ``delete_to_trash`` is on). A save, though, replaces a file for good.
        So a file is first overwritten with nothing, then deleted: what the trash keeps is
        an empty file, never the run's output.
        """
        url = f"api/contents/{quote_path(path)}"
        try:
            model = self.http.get(url, params={"content": 0}).json()
        except JupyterHTTPError as exc:
            if exc.status == 404:
                return False
            raise
        if model.get("type") != "directory":
            self.http.put(url, json={"type": "file", "format": "text", "content": ""})
        return self._delete(url)

    def delete_empty_folders(self, folder: str) -> None:
        """Delete ``folder``, then its parents, while each holds nothing (but the
        ``.ipynb_checkpoints`` jupyter_server may leave); stop at the first that holds
        something, is gone or cannot be read. Never the root, never raises."""
        while folder:
            try:
                names = self.list_directory(folder)
                if names is None or [n for n in names if n != ".ipynb_checkpoints"]:
                    return
                self.delete_file(folder)
            except Exception:  # noqa: BLE001 - another run's files came in, or it is gone: leave it
                return
            folder = folder.rpartition("/")[0]

    def ensure_directory(self, path: str) -> None:
        """Create ``path`` and its parents in the file tree if they are missing."""
        if not path:
            return
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            try:
                self.http.get(f"api/contents/{quote_path(sub)}", params={"content": 0})
            except JupyterHTTPError as exc:
                if exc.status != 404:
                    raise
                self.http.put(f"api/contents/{quote_path(sub)}", json={"type": "directory"})

    # -- kernelspecs ----------------------------------------------------------------
    def kernelspecs(self) -> tuple[str | None, dict[str, dict[str, Any]]]:
        body = self.http.get("api/kernelspecs").json()
        return body.get("default"), body.get("kernelspecs", {})

    def choose_kernel(self, requested: str | None, notebook_spec: dict[str, Any] | None) -> KernelChoice:
        """The kernelspec to start: the payload's, else the notebook's own, else the closest.

        A name asked for in the payload must exist (modulo the region/account inside a
        Studio image ARN). The notebook's own spec may be replaced by the closest
        available one (same image in another region, same base name, same language),
        with a warning saying so.
        """
        default, specs = self.kernelspecs()
        choice = self._choose_kernel(requested, notebook_spec, default, specs)
        spec = (specs.get(choice.name) or {}).get("spec") or {}
        return dataclasses.replace(choice, language=spec.get("language") if isinstance(spec, dict) else None)

    @staticmethod
    def _choose_kernel(requested: str | None, notebook_spec: dict[str, Any] | None, default: str | None,
                       specs: dict[str, dict[str, Any]]) -> KernelChoice:
        available = ", ".join(sorted(specs)) or "none"
        by_normalised = {_normalise_spec_name(n): n for n in specs}

        def exact_or_arn(name: str) -> str | None:
            if name in specs:
                return name
            return by_normalised.get(_normalise_spec_name(name))

        if requested:
            found = exact_or_arn(requested)
            if not found:
                raise KernelSpecNotFound(
                    f"Kernel {requested!r} is not available on the target (available: {available})",
                    requested=requested, available=sorted(specs),
                )
            warning = None if found == requested else f"Kernel {requested!r} not found; using {found!r} (same image)"
            return KernelChoice(found, warning)

        spec = notebook_spec or {}
        wanted = spec.get("name")
        if not wanted:
            if default in specs:
                return KernelChoice(default, "The notebook names no kernel; using the server's default")
            raise KernelSpecNotFound(f"The notebook names no kernel and the target has no default (available: {available})")
        found = exact_or_arn(wanted)
        if found is not None and found == wanted:
            return KernelChoice(found)
        if found:
            return KernelChoice(found, f"Kernel {wanted!r} not found; using {found!r} (same image in this region)")
        base = _base_spec_name(wanted)
        for name in sorted(specs):
            if _base_spec_name(name) == base:
                return KernelChoice(name, f"Kernel {wanted!r} not found; using {name!r} (same kernel, other image)")
        display = spec.get("display_name")
        for name, model in sorted(specs.items()):
            if display and model.get("spec", {}).get("display_name") == display:
                return KernelChoice(name, f"Kernel {wanted!r} not found; using {name!r} (same display name)")
        language = spec.get("language")
        if language:
            same_language = sorted(n for n, m in specs.items() if m.get("spec", {}).get("language") == language)
            if same_language:
                name = default if default in same_language else same_language[0]
                return KernelChoice(name, f"Kernel {wanted!r} not found; using {name!r} (same language, {language})")
        raise KernelSpecNotFound(
            f"The notebook's kernel {wanted!r} is not available on the target and none is close (available: {available})",
            requested=wanted, available=sorted(specs),
        )

    # -- kernels and sessions ------------------------------------------------------
    def list_kernels(self) -> list[dict[str, Any]]:
        return self.http.get("api/kernels").json()

    def get_kernel(self, kernel_id: str) -> dict[str, Any] | None:
        try:
            return self.http.get(f"api/kernels/{kernel_id}").json()
        except JupyterHTTPError as exc:
            if exc.status == 404:
                return None
            raise

    def kernel_state(self, kernel_id: str) -> str:
        """The kernel's execution_state ("idle", "busy", "starting", "dead"…), or "missing".

        A state in :data:`DEAD_STATES` means the kernel will never answer again."""
        model = self.get_kernel(kernel_id)
        return "missing" if model is None else str(model.get("execution_state", "unknown"))

    def create_kernel(self, name: str, *, instance_type: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name}
        if instance_type:
            body["instance_type"] = instance_type
        return self.http.json("POST", "api/kernels", json=body, timeout=(5.0, timeout))

    def interrupt_kernel(self, kernel_id: str) -> None:
        self.http.post(f"api/kernels/{kernel_id}/interrupt")

    def _delete(self, path: str) -> bool:
        return delete_if_present(self.http, path)

    def delete_kernel(self, kernel_id: str) -> bool:
        """Shut the kernel down; False when it was already gone."""
        return self._delete(f"api/kernels/{kernel_id}")

    def create_session(self, path: str, *, kernel_id: str | None = None, kernel_name: str | None = None) -> dict[str, Any]:
        kernel: dict[str, Any] = {"id": kernel_id} if kernel_id else {"name": kernel_name}
        body = {"path": path, "name": path.rsplit("/", 1)[-1], "type": "notebook", "kernel": kernel}
        return self.http.post("api/sessions", json=body).json()

    def list_sessions(self) -> list[dict[str, Any]]:
        return self.http.get("api/sessions").json()

    def delete_session(self, session_id: str) -> bool:
        """Delete the session (which also shuts its kernel down); False when already gone."""
        return self._delete(f"api/sessions/{session_id}")

    def channels(self, kernel_id: str, session_id: str):
        """WebSocket URL and headers for the kernel's channels (holds secrets: do not log)."""
        return self.http.websocket(f"api/kernels/{kernel_id}/channels", {"session_id": session_id})

    # -- Studio Classic KernelGateway apps -------------------------------------------
    def list_studio_apps(self) -> list[dict[str, Any]]:
        """Classic's KernelGateway apps: a bare list of ``app_name``, ``instance_type``, …
        (REAL-STUDIO A8; which kernels run on an app is not in it)."""
        body = self.http.get("sagemaker/api/apps").json()
        return [a for a in body if isinstance(a, dict)] if isinstance(body, list) else []

    def kernel_app_name(self, kernel_id: str) -> str | None:
        """The KernelGateway app a Classic kernel runs on, as Studio reports it:
        ``sessions[].kernel.app_name`` (A8)."""
        for session in self.list_sessions():
            kernel = session.get("kernel") or {}
            if kernel.get("id") == kernel_id and kernel.get("app_name"):
                return str(kernel["app_name"])
        return None

    def delete_studio_app(self, app_name: str) -> bool:
        return self._delete(f"sagemaker/api/apps/{app_name}")
