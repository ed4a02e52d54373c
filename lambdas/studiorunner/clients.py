"""boto3 clients, shared: one cache per Lambda container (kept apart so that importing it costs nothing)."""

from __future__ import annotations

from typing import Any

import boto3


class ClientCache:
    """boto3 clients, each created on first use and then kept (for a Lambda container's life).

    Creating a client costs tens of milliseconds; a step may be invoked many times in one
    container (RunCells, the Wait loops), so every step shares one cache.
    """

    def __init__(self, clients: dict[tuple[str, str | None], Any] | None = None) -> None:
        self._clients: dict[tuple[str, str | None], Any] = dict(clients or {})

    def __call__(self, service: str, region: str | None = None) -> Any:
        key = (service, region or None)
        if key not in self._clients:
            self._clients[key] = boto3.client(service, region_name=region or None)
        return self._clients[key]
