"""The SageMaker side of the stand-in: domain, user profile, space, apps, notebook instance.

Everything here lives in the server process and is only touched from its tornado loop,
so there are no locks. Status changes happen on timers (``IOLoop.call_later``) so a
poller sees ``Pending`` before ``InService`` exactly as it would against AWS.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tornado.ioloop import IOLoop

from studiorunner import catalog

#: What the stand-in can play: every kind of target (how, is each kind's ``standin`` in the catalog).
FLAVORS = catalog.TARGET_KIND_NAMES

#: The fixed names of the one-of-everything world the stand-in plays.
IDENTITY: dict[str, str] = {
    "domain_id": "d-localstudio",
    "user_profile": "local-user",
    "space_name": "local-space",
    "notebook_instance": "local-instance",
    "region": "us-east-1",
}
ACCOUNT = "123456789012"

#: Each role on a loopback address of its own (same port), so that, as in AWS, no cookie
#: can cross between the SageMaker API, the console's sign-in page and the app's host.
HOSTS: dict[str, str] = {
    "api": "127.0.0.1",  # the SageMaker API endpoint and the stand-in's control calls
    "signin": "127.0.0.2",  # the AWS console sign-in page a bad presigned URL ends on
    "app": "127.0.0.3",  # the space's (or domain's, or instance's) own host: /auth and Jupyter
}
DEFAULT_INSTANCE_TYPE = "ml.t3.medium"

LOADING_PAGES = ("html", "503")
#: AWS's answer to CreateApp for a Studio Classic app type (REAL-STUDIO A7).
CLASSIC_RETIRED = "Invalid AppType [{app_type}]. This AppType has been deprecated."
#: What StartNotebookInstance answers on a retired platform (REAL-STUDIO A9).
PLATFORM_RETIRED = (
    "Notebook instance platform notebook-al2-v1 (JupyterLab 1) reached end of support on 2025-06-30: "
    "notebook instances on it can no longer be created or started. Update the instance to notebook-al2-v3."
)

#: App statuses that mean "exists and may be billing".
LIVE_STATUSES = ("Pending", "InService", "Deleting")


class ApiError(Exception):
    """An AWS-style error: ``__type`` code, message, HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class HttpErrorRule:
    """The next ``count`` requests whose method and path match answer ``status`` (with
    ``html``: an HTML page, as Studio's proxy answers while an app settles, REAL-STUDIO A11)."""

    path_regex: str
    status: int = 503
    count: int = 1
    method: str | None = None  # None: any method
    html: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.count <= 0:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        return re.search(self.path_regex, path) is not None


@dataclass
class Faults:
    """Fault knobs. Times are seconds; set them small in tests."""

    app_start_seconds: float = 1.0
    app_fails: bool = False
    app_delete_seconds: float = 0.5
    kernel_gateway_start_seconds: float = 1.0
    instance_start_seconds: float = 1.0
    instance_stop_seconds: float = 0.5
    http_errors: list[HttpErrorRule] = field(default_factory=list)
    drop_websockets_after_seconds: float | None = None
    #: What the app's URL answers while the app is not running (REAL-STUDIO A11 is
    #: unknown): "html" (HTTP 200, a loading page) or "503".
    loading_page: str = "html"
    #: How long the app's URL keeps answering the loading page after DescribeApp says
    #: InService (the proxy's route is not ready at the same instant).
    proxy_ready_seconds: float = 0.5
    #: How long after a delete CreateApp answers ResourceInUse (the space's volume is
    #: still detaching, REAL-STUDIO A4).
    storage_busy_seconds: float = 2.0
    #: The notebook instance runs on a retired platform: StartNotebookInstance is refused (A9).
    instance_platform_retired: bool = False
    #: The next N presigned URLs are spent before they are used (as if used twice,
    #: expired, or refused by IAM): they end on the sign-in page (L3).
    login_refusals: int = 0
    #: A cell some of whose output the server's iopub rate limiter dropped loses its ``status: idle``
    #: (and the server's kernel state stays ``busy``). jupyter_server's rate limiter itself
    #: never drops a status message; on a loaded server the kernel's ZMQ queue overflows and
    #: drops the end of a flood, idle included (seen with a 50,000-step ``clear_output`` loop
    #: and no rate limit at all). This knob makes that loss deterministic (issue 20, 1.1).
    iopub_idle_lost_when_rate_limited: bool = False

    def update(self, knobs: dict[str, Any]) -> None:
        """Apply knobs; unknown names or bad values raise ValueError (nothing is applied)."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(knobs) - names)
        if unknown:
            raise ValueError(f"unknown fault knobs: {', '.join(unknown)}")
        new: dict[str, Any] = {}
        for name, value in knobs.items():
            if name == "http_errors":
                rules = []
                for raw in value or []:
                    if not isinstance(raw, dict) or "path_regex" not in raw:
                        raise ValueError("http_errors entries need at least path_regex")
                    rule = HttpErrorRule(**raw)
                    re.compile(rule.path_regex)
                    rules.append(rule)
                new[name] = rules
            elif name in ("app_fails", "instance_platform_retired", "iopub_idle_lost_when_rate_limited"):
                new[name] = bool(value)
            elif name == "login_refusals":
                if int(value) < 0:
                    raise ValueError("login_refusals must be >= 0")
                new[name] = int(value)
            elif name == "loading_page":
                if value not in LOADING_PAGES:
                    raise ValueError(f"loading_page must be one of {LOADING_PAGES}")
                new[name] = value
            elif value is None:
                if name != "drop_websockets_after_seconds":
                    raise ValueError(f"{name} cannot be null")
                new[name] = None
            else:
                seconds = float(value)
                if seconds < 0:
                    raise ValueError(f"{name} must be >= 0")
                new[name] = seconds
        for name, value in new.items():
            setattr(self, name, value)

    def take_http_error(self, method: str, path: str) -> HttpErrorRule | None:
        """Consume one matching http_errors rule; return it or None."""
        for rule in self.http_errors:
            if rule.matches(method, path):
                rule.count -= 1
                return rule
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class App:
    app_type: str  # JupyterLab | JupyterServer | KernelGateway
    app_name: str
    space_name: str | None
    user_profile: str | None
    instance_type: str
    status: str = "Pending"
    failure_reason: str | None = None
    created: float = field(default_factory=time.time)
    in_service_at: float = 0.0  # monotonic time it became InService
    deleted_at: float = 0.0  # monotonic time it became Deleted
    tags: dict[str, str] = field(default_factory=dict)  # AddTags/ListTags on the app's ARN

    @property
    def arn(self) -> str:
        owner = self.space_name or self.user_profile
        return (
            f"arn:aws:sagemaker:{IDENTITY['region']}:{ACCOUNT}:app/{IDENTITY['domain_id']}/"
            f"{owner}/{self.app_type.lower()}/{self.app_name}"
        )

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "AppArn": self.arn,
            "AppType": self.app_type,
            "AppName": self.app_name,
            "DomainId": IDENTITY["domain_id"],
            "Status": self.status,
            "CreationTime": self.created,
            "LastHealthCheckTimestamp": time.time(),
            "LastUserActivityTimestamp": time.time(),
            "ResourceSpec": {"InstanceType": self.instance_type},
        }
        if self.space_name:
            out["SpaceName"] = self.space_name
        if self.user_profile:
            out["UserProfileName"] = self.user_profile
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "app_type": self.app_type,
            "app_name": self.app_name,
            "space_name": self.space_name,
            "user_profile": self.user_profile,
            "instance_type": self.instance_type,
            "status": self.status,
            "failure_reason": self.failure_reason,
            "tags": dict(self.tags),
        }


@dataclass
class NotebookInstance:
    name: str
    status: str
    instance_type: str = "ml.t3.medium"
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    failure_reason: str | None = None


def kernel_gateway_app_name(user_profile: str, instance_type: str) -> str:
    """Classic names KernelGateway apps after image and instance type plus a hash."""
    digest = hashlib.sha1(f"{user_profile}/{instance_type}".encode()).hexdigest()[:12]
    return f"sagemaker-base-python-{instance_type.replace('.', '-')}-{digest}"


class World:
    """The SageMaker resources of one stand-in."""

    def __init__(
        self,
        *,
        flavor: str,
        faults: Faults,
        app_initially: str = "present",
        instance_initially: str = "InService",
        legacy: bool = False,
        on_apps_gone: Callable[[list[App]], None] | None = None,
        on_instance_stopping: Callable[[], None] | None = None,
    ) -> None:
        if flavor not in FLAVORS:
            raise ValueError(f"flavor must be one of {FLAVORS}")
        if app_initially not in ("present", "absent"):
            raise ValueError("app_initially must be 'present' or 'absent'")
        if instance_initially not in ("InService", "Stopped"):
            raise ValueError("instance_initially must be 'InService' or 'Stopped'")
        self.flavor = flavor
        self.plays = catalog.kind(flavor).standin
        self.faults = faults
        self.apps: list[App] = []
        self.api_errors: list[str] = []  # "Operation: Code" of every SageMaker API error answered
        self.on_apps_gone = on_apps_gone or (lambda apps: None)
        self.on_instance_stopping = on_instance_stopping or (lambda: None)
        server_app = self.plays.server_app
        if server_app and self.plays.kernel_gateway_apps:
            if legacy:
                # Studio Classic is retired (A7): only a "legacy" domain still has its apps.
                self.apps.append(App(server_app, "default", None, IDENTITY["user_profile"], "system",
                                     status="InService"))
                self.apps.append(
                    App("KernelGateway", kernel_gateway_app_name(IDENTITY["user_profile"], DEFAULT_INSTANCE_TYPE),
                        None, IDENTITY["user_profile"], DEFAULT_INSTANCE_TYPE, status="InService")
                )
        elif server_app and app_initially == "present":
            owner = self._owner()
            self.apps.append(App(server_app, "default", owner["space_name"], owner["user_profile"],
                                 DEFAULT_INSTANCE_TYPE, status="InService"))
        status = instance_initially if self.plays.notebook_instance else "Stopped"
        self.instance = NotebookInstance(IDENTITY["notebook_instance"], status)

    def _owner(self) -> dict[str, str | None]:
        """The flavor's server app's owner: its space, or (Classic) its user profile."""
        owner = self.plays.app_owner
        return {"space_name": IDENTITY[owner] if owner == "space_name" else None,
                "user_profile": IDENTITY[owner] if owner == "user_profile" else None}

    # ---- readiness ------------------------------------------------------------------

    def server_app(self) -> App | None:
        """The app that runs the flavor's Jupyter server (None for instances and plain Jupyter)."""
        if not self.plays.server_app:
            return None
        return self.find_app(self.plays.server_app, "default", **self._owner())

    def jupyter_available(self) -> bool:
        """Whether Studio's proxy would pass requests through to Jupyter right now."""
        if self.plays.server_app:
            app = self.server_app()
            return (app is not None and app.status == "InService"
                    and time.monotonic() - app.in_service_at >= self.faults.proxy_ready_seconds)
        if self.plays.notebook_instance:
            return self.instance.status == "InService"
        return True

    # ---- apps -----------------------------------------------------------------------

    def find_app(
        self,
        app_type: str,
        app_name: str,
        *,
        space_name: str | None = None,
        user_profile: str | None = None,
    ) -> App | None:
        """The newest app record with this identity (deleted ones included)."""
        for app in reversed(self.apps):
            if (
                app.app_type == app_type
                and app.app_name == app_name
                and app.space_name == space_name
                and (space_name is not None or app.user_profile == user_profile)
            ):
                return app
        return None

    def create_app(
        self,
        app_type: str,
        app_name: str,
        *,
        space_name: str | None,
        user_profile: str | None,
        instance_type: str,
        start_seconds: float | None = None,
        tags: dict[str, str] | None = None,
    ) -> App:
        if app_type in ("JupyterServer", "KernelGateway"):
            raise ApiError("ValidationException", CLASSIC_RETIRED.format(app_type=app_type))
        existing = self.find_app(app_type, app_name, space_name=space_name, user_profile=user_profile)
        if existing is not None and existing.status in LIVE_STATUSES:
            raise ApiError("ResourceInUse", f"App {existing.arn} already exists with status {existing.status}")
        if existing is not None and existing.status == "Deleted" and space_name and \
                time.monotonic() - existing.deleted_at < self.faults.storage_busy_seconds:
            raise ApiError(
                "ResourceInUse",
                f"The space {space_name} storage is not in Available status: it is still in use by a "
                f"deleted app. Try again later.",
            )
        app = App(app_type, app_name, space_name, user_profile, instance_type, tags=dict(tags or {}))
        self.apps.append(app)
        delay = self.faults.app_start_seconds if start_seconds is None else start_seconds
        fails = self.faults.app_fails
        IOLoop.current().call_later(delay, self._finish_start, app, fails)
        return app

    def _finish_start(self, app: App, fails: bool) -> None:
        if app.status != "Pending":
            return
        if fails:
            app.status = "Failed"
            app.failure_reason = "stand-in fault: app_fails is set (the app could not be started)"
        else:
            app.status = "InService"
            app.in_service_at = time.monotonic()

    def delete_app(self, app: App) -> None:
        # Deleting an app that is gone or failed is a ValidationException (A3).
        if app.status == "Failed":
            raise ApiError("ValidationException", f"App {app.arn} previously failed and cannot be deleted")
        if app.status not in ("Pending", "InService"):
            raise ApiError("ValidationException", f"App {app.arn} does not exist or is already {app.status}")
        app.status = "Deleting"
        self.on_apps_gone([app])
        IOLoop.current().call_later(self.faults.app_delete_seconds, self._finish_delete, app)

    @staticmethod
    def _finish_delete(app: App) -> None:
        app.status = "Deleted"  # the record stays, listed as Deleted (A2)
        app.deleted_at = time.monotonic()

    def idle_shutdown(self) -> bool:
        """What SageMaker's idle shutdown does (A10): the flavor's app (or instance) goes away
        under whatever runs on it. True when something was running."""
        app = self.server_app()
        if app is not None and app.status in ("Pending", "InService"):
            self.delete_app(app)
            return True
        if self.plays.notebook_instance and self.instance.status == "InService":
            self.stop_instance()
            return True
        return False

    def app_by_arn(self, arn: str) -> App | None:
        """The newest app record with this ARN (what AddTags/ListTags address)."""
        for app in reversed(self.apps):
            if app.arn == arn:
                return app
        return None

    # ---- notebook instance ----------------------------------------------------------

    def start_instance(self) -> None:
        if self.faults.instance_platform_retired:
            raise ApiError("ValidationException", PLATFORM_RETIRED)
        if self.instance.status not in ("Stopped", "Failed"):
            raise ApiError(
                "ValidationException",
                f"Status ({self.instance.status}) not in ([Stopped, Failed]). "
                f"Unable to transition to (Pending) for Notebook Instance ({self.instance_arn}).",
            )
        self.instance.status = "Pending"
        self.instance.failure_reason = None
        self.instance.modified = time.time()
        fails = self.faults.app_fails
        IOLoop.current().call_later(self.faults.instance_start_seconds, self._instance_started, fails)

    def _instance_started(self, fails: bool) -> None:
        if self.instance.status != "Pending":
            return
        if fails:
            self.instance.status = "Failed"
            self.instance.failure_reason = "stand-in fault: app_fails is set (the instance could not be started)"
        else:
            self.instance.status = "InService"
        self.instance.modified = time.time()

    def stop_instance(self) -> None:
        if self.instance.status != "InService":
            raise ApiError(
                "ValidationException",
                f"Status ({self.instance.status}) not in ([InService]). "
                f"Unable to transition to (Stopping) for Notebook Instance ({self.instance_arn}).",
            )
        self.instance.status = "Stopping"
        self.instance.modified = time.time()
        self.on_instance_stopping()
        IOLoop.current().call_later(self.faults.instance_stop_seconds, self._instance_stopped)

    def _instance_stopped(self) -> None:
        self.instance.status = "Stopped"
        self.instance.modified = time.time()

    @property
    def instance_arn(self) -> str:
        return (
            f"arn:aws:sagemaker:{IDENTITY['region']}:{ACCOUNT}:notebook-instance/"
            f"{self.instance.name}"
        )
