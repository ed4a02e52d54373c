"""The one HTTP chokepoint to a Jupyter server.

Every REST call to Jupyter goes through :class:`JupyterHTTP`: bounded timeouts, retries
of idempotent verbs on 502/503/504 and connection failures within a time budget that
rides out a short outage (a proxy restarting), the ``_xsrf`` cookie echoed as
``X-XSRFToken`` on every non-GET (obtained from a rendered page when the login did not
set it), an HTML page where JSON was expected (a loading or sign-in page) turned into a
named error, and errors that name the method, the path and the status — never the query
string (a presigned URL's token lives there), cookies or headers.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.cookiejar import Cookie
from typing import Any, cast
from urllib.parse import quote, urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from studiorunner.errors import JupyterHTTPError, JupyterUnavailable
from studiorunner.redact import safe_url

DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = (502, 503, 504)
#: How long idempotent requests keep retrying through 502/503/504 and refused
#: connections: a proxy restart takes seconds to tens of seconds.
RETRY_SECONDS = 30.0
BACKOFF_FIRST, BACKOFF_CAP = 0.5, 8.0  # 0.5, 1, 2, 4, 8, 8, … seconds
#: jupyter_client refuses to shut down a kernel while it is restarting (after a crash)
#: with a 500; a moment later the same DELETE works. Retried this many times.
DELETE_500_RETRIES = 4
#: Pages that Jupyter renders from a template (so they set ``_xsrf``), tried in order.
XSRF_PAGES = ("tree", "")

_sleep = time.sleep  # tests replace it


def new_session(retries: int = 2, backoff: float = 0.2) -> requests.Session:
    """A requests session that retries refused connections (nothing was sent) quickly;
    :class:`JupyterHTTP` adds the time-budgeted retries on statuses."""
    session = requests.Session()
    retry = Retry(
        total=retries,
        connect=retries,
        read=0,  # a read timeout may mean the server is still working: never replay it blindly
        status=0,
        redirect=None,
        other=0,
        backoff_factor=backoff,
        raise_on_status=False,
    )
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "studio-runner"
    return session


def cookie_for(jar: Iterable[Cookie], name: str, url: str) -> Cookie | None:
    """The cookie ``name`` a browser would send first to ``url``: its host, the longest
    matching path. (``requests``' ``cookies.get`` raises CookieConflictError when two
    hosts or paths each set one.)"""
    parts = urlsplit(url)
    host, path = (parts.hostname or "").lower(), parts.path or "/"
    best: Cookie | None = None
    for cookie in jar:
        if cookie.name != name or not _cookie_applies(cookie, host, path):
            continue
        if best is None or len(cookie.path or "/") > len(best.path or "/"):
            best = cookie
    return best


def _cookie_applies(cookie: Cookie, host: str, path: str) -> bool:
    domain = (cookie.domain or "").lower()
    if domain:
        if domain.startswith("."):
            if not (host == domain[1:] or host.endswith(domain)):
                return False
        elif host != domain and not (domain.endswith(".local") and host == domain[: -len(".local")]):
            return False
    cpath = cookie.path or "/"
    if not (path + "/").startswith(cpath.rstrip("/") + "/") and path != cpath:
        return False
    return not cookie.is_expired()


def _is_html(response: requests.Response) -> bool:
    return response.headers.get("Content-Type", "").split(";")[0].strip().lower() == "text/html"


def _retry_after(response: requests.Response | None) -> float | None:
    raw = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _message_of(response: requests.Response) -> str:
    if _is_html(response):
        return "(an HTML page)"
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
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session or new_session()
        self._token = token
        self.timeout = timeout
        self.retry_seconds = retry_seconds

    def __repr__(self) -> str:
        return f"JupyterHTTP({self.base_url!r})"

    # -- cookies --------------------------------------------------------------------
    def xsrf_cookie(self) -> str | None:
        """The ``_xsrf`` cookie that applies to the base URL (by host and path), if any."""
        # A CookieJar iterates its cookies (the MutableMapping in requests' typing says names).
        cookie = cookie_for(cast(Iterable[Cookie], self.session.cookies), "_xsrf", self.base_url + "/")
        return cookie.value if cookie is not None else None

    def ensure_xsrf(self) -> str | None:
        """The ``_xsrf`` value, GETting a rendered page under the base URL when the login
        did not set it: jupyter_server sets it only when it renders a page (any HTML page,
        even a 404), with the base URL as its path; API calls never set it."""
        value = self.xsrf_cookie()
        for page in XSRF_PAGES:
            if value:
                break
            try:
                self.session.get(self.url(page), timeout=self.timeout, allow_redirects=True)
            except requests.RequestException:
                pass  # the request that needs it will report the server as unreachable
            value = self.xsrf_cookie()
        return value

    # -- requests -----------------------------------------------------------------
    def _headers(self, method: str) -> dict[str, str]:
        headers = {}
        if self._token:
            headers["Authorization"] = f"token {self._token}"
        elif method not in ("GET", "HEAD"):
            # A token-authenticated request needs no XSRF (jupyter_server skips the check).
            xsrf = self.ensure_xsrf()
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
        retry_seconds: float | None = None,
    ) -> requests.Response:
        """Send one request; raise JupyterHTTPError unless the status is in ``ok``.

        Idempotent verbs are retried on 502/503/504 and failed connections with
        exponential backoff (or the server's Retry-After) for up to ``retry_seconds``.
        An HTML answer (a loading page while the app starts, a sign-in page) is a
        JupyterHTTPError with ``html=True``, never a JSON decoding error later.
        """
        method = method.upper()
        budget = self.retry_seconds if retry_seconds is None else retry_seconds
        started, waited, attempt = time.monotonic(), 0.0, 0

        def may_retry(response: requests.Response | None) -> bool:
            nonlocal waited, attempt
            delay = _retry_after(response)
            delay = min(BACKOFF_CAP, BACKOFF_FIRST * 2**attempt if delay is None else delay)
            if max(waited, time.monotonic() - started) + delay > budget:
                return False
            _sleep(delay)
            waited += delay
            attempt += 1
            return True

        while True:
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
            except requests.ConnectTimeout:
                if method in IDEMPOTENT and may_retry(None):
                    continue
                raise JupyterHTTPError(
                    f"{method} {path} could not connect to the Jupyter server (timed out)",
                    method=method, path=path, status=None, timeout=True,
                ) from None
            except requests.Timeout:
                raise JupyterHTTPError(
                    f"{method} {path} timed out after {timeout or self.timeout} s",
                    method=method, path=path, status=None, timeout=True,
                ) from None
            except requests.RequestException as exc:
                if method in IDEMPOTENT and isinstance(exc, requests.ConnectionError) and may_retry(None):
                    continue
                # The exception text would include the full URL; keep only its kind.
                raise JupyterUnavailable(
                    f"{method} {path} could not reach the Jupyter server ({type(exc).__name__})",
                    method=method, path=path, status=None,
                ) from None
            status = response.status_code
            transient = status in RETRY_STATUSES or (
                method == "DELETE" and status == 500 and attempt < DELETE_500_RETRIES
            )
            if transient and method in IDEMPOTENT and may_retry(response):
                continue
            break
        if status not in tuple(ok):
            # 502/503/504 left after the retries (or on a POST, never retried here): a proxy or
            # app restarting; named so the state machine can retry the step.
            error = JupyterUnavailable if status in RETRY_STATUSES else JupyterHTTPError
            raise error(
                f"{method} {path} answered {status} {_message_of(response)}".rstrip(),
                method=method, path=path, status=status, html=_is_html(response),
            )
        if _is_html(response):
            raise JupyterHTTPError(
                f"{method} {path} answered an HTML page where Jupyter answers JSON: the app is "
                f"not ready yet (a loading page), or the session ended on a sign-in page",
                method=method, path=path, status=status, html=True,
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

    def json(self, method: str, path: str, **kw: Any) -> Any:
        """The request's JSON body; a body that is not JSON is a JupyterHTTPError, not a ValueError."""
        response = self.request(method, path, **kw)
        try:
            return response.json()
        except ValueError:
            raise JupyterHTTPError(
                f"{method.upper()} {path} answered {response.status_code} with a body that is not JSON",
                method=method.upper(), path=path, status=response.status_code,
            ) from None

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
        # The cookies a browser would send to this URL: its host, paths that contain it,
        # one per name (the most specific path), so the server never sees two _xsrf.
        http_url = self.url(path)
        parts = urlsplit(http_url)
        host, upath = (parts.hostname or "").lower(), parts.path or "/"
        chosen: dict[str, Cookie] = {}
        for cookie in self.session.cookies:
            if _cookie_applies(cookie, host, upath):
                known = chosen.get(cookie.name)
                if known is None or len(cookie.path or "/") > len(known.path or "/"):
                    chosen[cookie.name] = cookie
        if chosen:
            headers["Cookie"] = "; ".join(f"{c.name}={c.value}" for c in chosen.values())
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
