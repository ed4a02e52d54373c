"""Logging in to a target's Jupyter server with a presigned URL."""

from __future__ import annotations

from urllib.parse import urlsplit

from studiorunner.errors import LoginFailed
from studiorunner.jupyter.http import DEFAULT_TIMEOUT, new_session

PRESIGNED_URL_SECONDS = 60  # the URL is used at once; the shorter it lives, the better
SESSION_SECONDS = 1800


def presigned_login(url: str, target: str, *, timeout: tuple[float, float] = DEFAULT_TIMEOUT):
    """GET the presigned URL with a fresh session; return it and the final URL's origin."""
    session = new_session()
    try:
        response = session.get(url, timeout=timeout, allow_redirects=True)
    except Exception as exc:  # the exception text holds the presigned URL
        raise LoginFailed(f"Could not reach target {target!r} to log in ({type(exc).__name__})", target=target) from None
    if response.status_code >= 400:
        raise LoginFailed(
            f"Logging in to target {target!r} with a presigned URL answered {response.status_code}",
            target=target, status=response.status_code,
        )
    parts = urlsplit(response.url)
    return session, f"{parts.scheme}://{parts.netloc}"
