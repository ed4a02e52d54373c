"""The one HTTP chokepoint to a Jupyter server.

Every REST call to Jupyter goes through :class:`JupyterHTTP`: bounded timeouts, retries
with backoff for idempotent verbs on 502/503/504 and connection resets, the ``_xsrf``
cookie echoed as ``X-XSRFToken`` on every non-GET, and errors that name the method, the
path and the status — never the query string (a presigned URL's token lives there),
cookies or headers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from studiorunner.errors import JupyterHTTPError
from studiorunner.redact import safe_url

DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = (502, 503, 504)


class _Retry(Retry):
    """Also retry a DELETE that answers 500: jupyter_client refuses to shut down a kernel
    while it is restarting (after a crash), and a moment later the same DELETE works."""

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if method == "DELETE" and status_code == 500 and self.total:
            return True
        return super().is_retry(method, status_code, has_retry_after)


def new_session(retries: int = 3, backoff: float = 0.3) -> requests.Session:
    """A requests session that retries idempotent verbs on 502/503/504 and resets."""
    session = requests.Session()
    retry = _Retry(
        total=retries,
        connect=retries,
        read=0,  # a read timeout may mean the server is still working: never replay it blindly
        status=retries,
        backoff_factor=backoff,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=IDEMPOTENT,
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "studio-runner"
    return session


def _message_of(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return (response.reason or "").strip()
    if isinstance(body, dict):
        return str(body.get("message") or body.get("reason") or response.reason or "")[:300]
    return (response.reason or "").strip()


@dataclass(frozen=True)
class WebSocketTarget:
    """What a WebSocket client needs to connect: the URL and the handshake headers.

    Holds cookies/tokens: never log or return it from a step.
    """

    url: str
    headers: dict[str, str]

    def __repr__(self) -> str:  # keep secrets out of accidental logs and tracebacks
        return f"WebSocketTarget(url={safe_url(self.url)!r}, headers=<{len(self.headers)} hidden>)"


class JupyterHTTP:
    """REST access to one Jupyter server at ``base_url`` (no trailing slash)."""

    def __init__(
        self,
        base_url: str,
        session: requests.Session | None = None,
        *,
        token: str | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session or new_session()
        self._token = token
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"JupyterHTTP({self.base_url!r})"

    # -- requests -----------------------------------------------------------------
    def _headers(self, method: str) -> dict[str, str]:
        headers = {}
        if self._token:
            headers["Authorization"] = f"token {self._token}"
        if method not in ("GET", "HEAD"):
            xsrf = self.session.cookies.get("_xsrf")
            if xsrf:
                headers["X-XSRFToken"] = xsrf
        return headers

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | tuple[float, float] | None = None,
        ok: Iterable[int] = (200, 201, 204),
    ) -> requests.Response:
        """Send one request; raise JupyterHTTPError unless the status is in ``ok``."""
        method = method.upper()
        try:
            response = self.session.request(
                method,
                self.url(path),
                json=json,
                params=params,
                headers=self._headers(method),
                timeout=timeout or self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise JupyterHTTPError(
                f"{method} {path} timed out after {timeout or self.timeout} s",
                method=method, path=path, status=None, timeout=True,
            ) from None
        except requests.RequestException as exc:
            # The exception text would include the full URL; keep only its kind.
            raise JupyterHTTPError(
                f"{method} {path} could not reach the Jupyter server ({type(exc).__name__})",
                method=method, path=path, status=None,
            ) from None
        if response.status_code not in tuple(ok):
            raise JupyterHTTPError(
                f"{method} {path} answered {response.status_code} {_message_of(response)}".rstrip(),
                method=method, path=path, status=response.status_code,
            )
        return response

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> requests.Response:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> requests.Response:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)

    # -- WebSockets -----------------------------------------------------------------
    def websocket(self, path: str, params: dict[str, str] | None = None) -> WebSocketTarget:
        """URL and handshake headers (cookies, XSRF, token) for a WebSocket at ``path``."""
        url = self.url(path)
        if url.startswith("https://"):
            url = "wss://" + url[len("https://"):]
        elif url.startswith("http://"):
            url = "ws://" + url[len("http://"):]
        if params:
            url += "?" + urlencode(params)
        headers = self._headers("POST")
        host = urlsplit(self.base_url).hostname or ""
        cookies = [f"{c.name}={c.value}" for c in self.session.cookies if not c.domain or host.endswith(c.domain.lstrip("."))]
        if cookies:
            headers["Cookie"] = "; ".join(cookies)
        return WebSocketTarget(url=url, headers=headers)


def delete_if_present(http: Any, path: str) -> bool:
    """DELETE ``path``; False when it was already gone (404), so cleanup can run twice.

    ``http`` is anything with ``delete(path)`` raising an error that carries the HTTP status
    as ``facts["status"]`` (:class:`JupyterHTTP` does) or ``response.status_code``
    (requests' ``HTTPError``); other errors propagate.
    """
    try:
        http.delete(path)
    except Exception as exc:
        facts = getattr(exc, "facts", None)
        status = facts.get("status") if isinstance(facts, dict) else None
        if status is None:
            status = getattr(getattr(exc, "response", None), "status_code", None)
        if status == 404:
            return False
        raise
    return True


def quote_path(path: str) -> str:
    """Quote a contents path for use in a URL (keeps '/')."""
    return quote(path, safe="/")
