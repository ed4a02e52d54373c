"""The SageMaker API calls moto lacks, spoken in AWS's JSON protocol.

boto3 reaches this through ``AWS_ENDPOINT_URL_SAGEMAKER``: every call is a POST with
``X-Amz-Target: SageMaker.<Operation>`` and a JSON body. Errors are answered the way
AWS answers them (``{"__type": code, "message": …}`` with 400) so botocore raises
``ClientError`` with the same ``Error.Code`` a real account would give. Signatures are
not checked: the stand-in only listens on 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tornado import web

from .world import ACCOUNT, DEFAULT_INSTANCE_TYPE, HOSTS, IDENTITY, ApiError, World

INSTANCE_TYPE_RE = re.compile(r"^(ml\.[a-z0-9]+\.[a-z0-9]+|system)$")


@dataclass
class LoginToken:
    expires_at: float
    redirect_path: str


class LoginTokens:
    """One-time login tokens behind presigned URLs."""

    def __init__(self) -> None:
        self._tokens: dict[str, LoginToken] = {}

    def issue(self, expires_in: float, redirect_path: str) -> str:
        now = time.monotonic()
        # Forget the expired ones so the dict does not grow for ever.
        self._tokens = {k: v for k, v in self._tokens.items() if v.expires_at > now}
        token = secrets.token_urlsafe(32)
        self._tokens[token] = LoginToken(now + expires_in, redirect_path)
        return token

    def redeem(self, token: str) -> LoginToken | None:
        """The token's login, once; None when unknown, used or expired."""
        login = self._tokens.pop(token, None)
        if login is None or login.expires_at <= time.monotonic():
            return None
        return login


def on_host(host_url: str, role: str) -> str:
    """``host_url`` (http://ip:port of the request) moved to the address of ``role`` (see HOSTS)."""
    scheme, _, rest = host_url.partition("://")
    port = rest.rsplit(":", 1)[1] if ":" in rest else "80"
    return f"{scheme}://{HOSTS[role]}:{port}"


def _require(body: dict[str, Any], name: str) -> Any:
    value = body.get(name)
    if value in (None, ""):
        raise ApiError("ValidationException", f"1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null")
    return value


def _int_in(body: dict[str, Any], name: str, low: int, high: int, default: int) -> int:
    value = body.get(name, default)
    if not isinstance(value, int) or not low <= value <= high:
        raise ApiError(
            "ValidationException",
            f"1 validation error detected: Value '{value}' at '{name}' failed to satisfy "
            f"constraint: Member must have value between {low} and {high}",
        )
    return value


class SageMakerApi:
    """Operations over a World; ``host_url`` is the stand-in's http://host:port."""

    def __init__(self, world: World, tokens: LoginTokens, jupyter_path: str) -> None:
        self.space_instance_type = DEFAULT_INSTANCE_TYPE  # the space's DefaultResourceSpec
        self.world = world
        self.tokens = tokens
        self.jupyter_path = jupyter_path  # base_url of Jupyter, ends with "/"
        self.ops: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
            name[3:]: getattr(self, name) for name in dir(self) if name.startswith("op_")
        }

    # ---- identity checks ------------------------------------------------------------

    @staticmethod
    def _domain(body: dict[str, Any], key: str = "DomainId") -> None:
        domain = _require(body, key)
        if domain != IDENTITY["domain_id"]:
            raise ApiError("ResourceNotFound", f"Domain {domain} not found")

    @staticmethod
    def _user(name: str) -> None:
        if name != IDENTITY["user_profile"]:
            raise ApiError("ResourceNotFound", f"User profile {name} does not exist in domain {IDENTITY['domain_id']}")

    @staticmethod
    def _space(name: str) -> None:
        if name != IDENTITY["space_name"]:
            raise ApiError("ResourceNotFound", f"Space {name} does not exist in domain {IDENTITY['domain_id']}")

    def _instance(self, body: dict[str, Any]) -> None:
        name = _require(body, "NotebookInstanceName")
        if name != IDENTITY["notebook_instance"]:
            raise ApiError("ValidationException", f"RecordNotFound: Notebook Instance {name} does not exist")

    def _app_owner(self, body: dict[str, Any]) -> tuple[str | None, str | None]:
        space, user = body.get("SpaceName"), body.get("UserProfileName")
        if bool(space) == bool(user):
            raise ApiError("ValidationException", "Exactly one of SpaceName or UserProfileName must be specified")
        if space:
            self._space(space)
        else:
            self._user(user)
        return space, user

    def _find_app(self, body: dict[str, Any]):
        self._domain(body)
        space, user = self._app_owner(body)
        app_type, app_name = _require(body, "AppType"), _require(body, "AppName")
        app = self.world.find_app(app_type, app_name, space_name=space, user_profile=user)
        if app is None:
            owner = space or user
            raise ApiError("ResourceNotFound", f"App [{app_name}] of type [{app_type}] for [{owner}] does not exist")
        return app

    # ---- login ----------------------------------------------------------------------

    def op_CreatePresignedDomainUrl(self, body: dict[str, Any], host_url: str) -> dict[str, Any]:
        self._domain(body)
        self._user(_require(body, "UserProfileName"))
        if body.get("SpaceName"):
            self._space(body["SpaceName"])
        expires = _int_in(body, "ExpiresInSeconds", 5, 300, 300)
        _int_in(body, "SessionExpirationDurationInSeconds", 1800, 43200, 43200)
        token = self.tokens.issue(expires, self.jupyter_path + "lab")
        # The URL is on the space's (Classic: the domain's) own host, not the API's (L1).
        return {"AuthorizedUrl": f"{on_host(host_url, 'app')}/auth?token={token}"}

    def op_CreatePresignedNotebookInstanceUrl(self, body: dict[str, Any], host_url: str) -> dict[str, Any]:
        self._instance(body)
        _int_in(body, "SessionExpirationDurationInSeconds", 1800, 43200, 43200)
        # Notebook instance URLs are valid for five minutes.
        token = self.tokens.issue(300, self.jupyter_path + "lab")
        return {"AuthorizedUrl": f"{on_host(host_url, 'app')}/auth?token={token}"}

    # ---- apps -----------------------------------------------------------------------

    def op_DescribeApp(self, body: dict[str, Any], host_url: str) -> dict[str, Any]:
        return self._find_app(body).describe()

    def op_CreateApp(self, body: dict[str, Any], host_url: str) -> dict[str, Any]:
        self._domain(body)
        space, user = self._app_owner(body)
        app_type, app_name = _require(body, "AppType"), _require(body, "AppName")
        allowed = ("JupyterLab", "CodeEditor") if space else ("JupyterServer", "KernelGateway")
        if app_type not in allowed:
            raise ApiError("ValidationException", f"AppType {app_type} is not supported for this owner")
        if app_type != "KernelGateway" and app_name != "default":
            raise ApiError("ValidationException", f"AppName must be 'default' for AppType {app_type}")
        spec = body.get("ResourceSpec") or {}
        # Without an InstanceType a JupyterLab app takes the space's default (A6).
        instance_type = spec.get("InstanceType") or ("system" if app_type == "JupyterServer" else self.space_instance_type)
        if not INSTANCE_TYPE_RE.match(instance_type):
            raise ApiError("ValidationException", f"Invalid InstanceType {instance_type}")
        tags = {t["Key"]: t.get("Value", "") for t in body.get("Tags") or [] if isinstance(t, dict) and t.get("Key")}
        app = self.world.create_app(app_type, app_name, space_name=space, user_profile=user,
                                    instance_type=instance_type, tags=tags)
        return {"AppArn": app.arn}

    def op_DeleteApp(self, body: dict[str, Any], host_url: str) -> dict[str, Any]:
        app = self._find_app(body)
        self.world.delete_app(app)  # a Deleted or Failed app: ValidationException (A3)
        return {}

    def op_ListApps(self, body: dict[str, Any], host_url: str) -> dict[str, Any]:
        if body.get("DomainIdEquals"):
            self._domain(body, "DomainIdEquals")
        apps = []
        for app in self.world.apps:
            if body.get("UserProfileNameEquals") and app.user_profile != body["UserProfileNameEquals"]:
                continue
            if body.get("SpaceNameEquals") and app.space_name != body["SpaceNameEquals"]:
                continue
            d = app.describe()
            apps.append({k: d[k] for k in d if k not in ("LastHealthCheckTimestamp", "LastUserActivityTimestamp", "FailureReason")})
        apps.sort(key=lambda a: a["CreationTime"], reverse=body.get("SortOrder", "Descending") == "Descending")
        return {"Apps": apps}

    # ---- tags (apps only: what the runner uses) ---------------------------------------

    def _tagged_app(self, body: dict[str, Any]):
        arn = _require(body, "ResourceArn")
        app = self.world.app_by_arn(arn)
        if app is None:
            raise ApiError("ResourceNotFound", f"Resource {arn} does not exist")
        return app

    def op_AddTags(self, body: dict[str, Any], host_url: str) -> dict[str, Any]:
        app = self._tagged_app(body)
        for tag in body.get("Tags") or []:
            app.tags[tag["Key"]] = tag.get("Value", "")
        return {"Tags": [{"Key": k, "Value": v} for k, v in app.tags.items()]}

    def op_ListTags(self, body: dict[str, Any], host_url: str) -> dict[str, Any]:
        app = self._tagged_app(body)
        return {"Tags": [{"Key": k, "Value": v} for k, v in app.tags.items()]}

    # ---- domain, profile, space -----------------------------------------------------

    def _domain_arn(self) -> str:
        return f"arn:aws:sagemaker:{IDENTITY['region']}:{ACCOUNT}:domain/{IDENTITY['domain_id']}"

    def op_DescribeDomain(self, body: dict[str, Any], host_url: str) -> dict[str, Any]:
        self._domain(body)
        return {
            "DomainId": IDENTITY["domain_id"],
            "DomainArn": self._domain_arn(),
            "DomainName": "localstudio",
            "Status": "InService",
            "AuthMode": "IAM",
            "Url": on_host(host_url, "app"),
            "AppNetworkAccessType": "PublicInternetOnly",
        }

    def op_DescribeUserProfile(self, body: dict[str, Any], host_url: str) -> dict[str, Any]:
        self._domain(body)
        self._user(_require(body, "UserProfileName"))
        return {
            "DomainId": IDENTITY["domain_id"],
            "UserProfileName": IDENTITY["user_profile"],
            "UserProfileArn": f"{self._domain_arn().replace(':domain/', ':user-profile/')}/{IDENTITY['user_profile']}",
            "Status": "InService",
        }

    def _space_model(self, host_url: str) -> dict[str, Any]:
        return {
            "DomainId": IDENTITY["domain_id"],
            "SpaceName": IDENTITY["space_name"],
            "SpaceArn": f"{self._domain_arn().replace(':domain/', ':space/')}/{IDENTITY['space_name']}",
            "Status": "InService",
            "SpaceSettings": {
                "AppType": "JupyterLab",
                "JupyterLabAppSettings": {"DefaultResourceSpec": {"InstanceType": self.space_instance_type}},
            },
            "OwnershipSettings": {"OwnerUserProfileName": IDENTITY["user_profile"]},
            "SpaceSharingSettings": {"SharingType": "Private"},
            "Url": on_host(host_url, "app") + self.jupyter_path.rstrip("/"),
        }

    def op_DescribeSpace(self, body: dict[str, Any], host_url: str) -> dict[str, Any]:
        self._domain(body)
        self._space(_require(body, "SpaceName"))
        return self._space_model(host_url)

    def op_ListSpaces(self, body: dict[str, Any], host_url: str) -> dict[str, Any]:
        if body.get("DomainIdEquals"):
            self._domain(body, "DomainIdEquals")
        space = self._space_model(host_url)
        return {"Spaces": [{k: space[k] for k in ("DomainId", "SpaceName", "Status", "SpaceSettings", "OwnershipSettings", "SpaceSharingSettings")}]}

    # ---- notebook instance ----------------------------------------------------------

    def op_DescribeNotebookInstance(self, body: dict[str, Any], host_url: str) -> dict[str, Any]:
        self._instance(body)
        nb = self.world.instance
        out = {
            "NotebookInstanceArn": self.world.instance_arn,
            "NotebookInstanceName": nb.name,
            "NotebookInstanceStatus": nb.status,
            "InstanceType": nb.instance_type,
            "Url": on_host(host_url, "app").split("://", 1)[1],
            "CreationTime": nb.created,
            "LastModifiedTime": nb.modified,
        }
        if nb.failure_reason:
            out["FailureReason"] = nb.failure_reason
        return out

    def op_StartNotebookInstance(self, body: dict[str, Any], host_url: str) -> dict[str, Any]:
        self._instance(body)
        self.world.start_instance()
        return {}

    def op_StopNotebookInstance(self, body: dict[str, Any], host_url: str) -> dict[str, Any]:
        self._instance(body)
        self.world.stop_instance()
        return {}


class SageMakerApiHandler(web.RequestHandler):
    """POST / with X-Amz-Target: SageMaker.<Op>."""

    def initialize(self, api: SageMakerApi) -> None:
        self.api = api

    def check_xsrf_cookie(self) -> None:
        """AWS API calls carry SigV4, not Jupyter's XSRF cookie."""

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/x-amz-json-1.1")
        self.set_header("x-amzn-RequestId", secrets.token_hex(16))
        self.finish(json.dumps(payload))

    def post(self, *_: Any) -> None:
        target = self.request.headers.get("X-Amz-Target", "")
        prefix, _, op = target.partition(".")
        handler = self.api.ops.get(op) if prefix == "SageMaker" else None
        if handler is None:
            self._answer(400, {"__type": "UnknownOperationException", "message": f"Unknown operation {target!r}"})
            return
        try:
            body = json.loads(self.request.body or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body is not an object")
        except ValueError:
            self._answer(400, {"__type": "SerializationException", "message": "Request body is not a JSON object"})
            return
        host_url = f"{self.request.protocol}://{self.request.host}"
        try:
            result = handler(body, host_url)
        except ApiError as e:
            self.api.world.api_errors.append(f"{op}: {e.code}")
            self._answer(e.status, {"__type": e.code, "message": e.message})
            return
        self._answer(200, result)
