"""The front door: what stands in front of Jupyter in AWS, host by host (see world.HOSTS):
the API host, the console's sign-in host, the app's host with its loading page, and the
injected ``http_errors``."""

from __future__ import annotations

import json
from typing import Any

from tornado import web
from tornado.httputil import HTTPServerRequest
from tornado.routing import Matcher

from .shared import AUTH_PATH, CONTROL_PATH, SAGEMAKER_PATH, StandInState
from .world import HOSTS

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


class FrontDoorMatcher(Matcher):
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
