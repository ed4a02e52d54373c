"""The presigned-URL login (``/auth?token=…``) and the page it lands on."""

from __future__ import annotations

from jupyter_server.auth.identity import User
from jupyter_server.base.handlers import JupyterHandler
from tornado import web

from .shared import AUTH_PATH, StandInState
from .world import HOSTS, IDENTITY


class PresignedLoginHandler(JupyterHandler):
    """GET /auth?token=…: redeem a one-time presigned token for the login cookie.

    A bad, used or expired token ends, as in AWS (REAL-STUDIO L3), with a redirect to the
    console's sign-in page on another host, which answers HTTP 200. The login sets no
    ``_xsrf``: Jupyter sets that only when it renders a page (L4).
    """

    def initialize(self, state: StandInState) -> None:
        self.state = state

    def _request_summary(self) -> str:
        # Tornado logs the full URI on errors; this one carries a credential.
        return f"{self.request.method} {self.request.path} ({self.request.remote_ip})"

    def check_xsrf_cookie(self) -> None:
        """GET only."""

    def get(self) -> None:
        login = self.state.tokens.redeem(self.get_argument("token", ""))
        if login is not None and self.state.faults.login_refusals > 0:
            self.state.faults.login_refusals -= 1
            login = None
        if login is None:
            self.log.warning("GET %s: invalid, used or expired presigned URL: to the sign-in page", AUTH_PATH)
            port = (self.request.host or "").rsplit(":", 1)[-1]
            self.redirect(f"{self.request.protocol}://{HOSTS['signin']}:{port}/signin?client_id=arn%3Aaws%3Asignin")
            return
        user = User(
            username=IDENTITY["user_profile"],
            name=IDENTITY["user_profile"],
            display_name=IDENTITY["user_profile"],
        )
        self.identity_provider.set_login_cookie(self, user)
        self.redirect(login.redirect_path)


class LabPageHandler(JupyterHandler):
    """{base_url}lab: where the login redirects (JupyterLab itself is not installed).

    Not rendered from a template, so it sets no ``_xsrf`` (what Studio's landing sets is
    unknown; a client must be able to obtain it from any rendered page).
    """

    @web.authenticated
    def get(self) -> None:
        self.set_header("Content-Type", "text/html")
        self.finish("<!doctype html><title>JupyterLab (Studio stand-in)</title><p>JupyterLab stand-in</p>")
