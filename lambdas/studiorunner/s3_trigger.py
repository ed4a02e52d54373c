"""Start a run for an object uploaded under the inbox prefix.

``<inbox>/<target>/path/x.ipynb`` runs that notebook on ``<target>``; ``<inbox>/<target>/x.json``
is a payload (its ``target`` wins over the path's). An object directly under the inbox runs
on the default target. The execution name is derived from the object (key, ETag and the S3
sequencer), so a duplicated event for the same upload names the same execution and cannot
start a second run, while uploading the same file again later is a new run.

This module knows nothing of Lambda: it takes plain values and boto3-style clients.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import unquote_plus

from studiorunner.errors import PayloadInvalid
from studiorunner.naming import run_name

logger = logging.getLogger(__name__)

# Step Functions input is limited to 256 KiB; a payload file is far smaller than that.
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_EXECUTION_NAME = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


class S3Client(Protocol):
    def get_object(self, **kwargs: Any) -> dict[str, Any]: ...


class StepFunctionsClient(Protocol):
    def start_execution(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class InboxObject:
    """An uploaded object, as the ``Object Created`` event describes it (key decoded)."""

    bucket: str
    key: str
    etag: str
    sequencer: str = ""
    version_id: str = ""
    event_time: str = ""  # the event's ``time`` (ISO 8601), the same on every delivery of it

    @classmethod
    def uploaded(cls, *, bucket: str, key: str, etag: str = "", sequencer: str = "", version_id: str = "",
                 event_time: str = "") -> InboxObject:
        """From the fields of an ``Object Created`` event; its key arrives URL-encoded."""
        if not bucket or not key:
            raise PayloadInvalid("not an S3 Object Created event: no bucket or key")
        return cls(bucket=bucket, key=unquote_plus(key), etag=str(etag or ""), sequencer=str(sequencer or ""),
                   version_id=str(version_id or ""), event_time=str(event_time or ""))

    @classmethod
    def from_event_detail(cls, detail: dict[str, Any]) -> InboxObject:
        """From an EventBridge S3 ``Object Created`` event's ``detail``."""
        try:
            bucket = detail["bucket"]["name"]
            obj = detail["object"]
            key = obj["key"]
        except (KeyError, TypeError) as error:
            raise PayloadInvalid(f"not an S3 Object Created event: missing {error}") from error
        return cls.uploaded(bucket=bucket, key=key, etag=obj.get("etag", ""), sequencer=obj.get("sequencer", ""),
                            version_id=obj.get("version-id") or "")


@dataclass(frozen=True)
class TriggerSettings:
    state_machine_arn: str
    inbox_prefix: str

    @classmethod
    def from_env(cls, env: dict[str, str] | Any) -> TriggerSettings:
        return cls(state_machine_arn=env["STUDIO_RUNNER_STATE_MACHINE_ARN"],
                   inbox_prefix=env.get("STUDIO_RUNNER_INBOX_PREFIX", "inbox/"))


@dataclass(frozen=True)
class TriggerResult:
    """What the trigger did: ``started``, ``duplicate`` (this upload already started a run) or ``ignored``."""

    status: str
    key: str
    execution_name: str | None = None
    execution_arn: str | None = None
    reason: str | None = None


def target_from_key(key: str, inbox_prefix: str) -> str | None:
    """``inbox/<target>/…/x.ipynb`` → ``<target>``; a file directly under the inbox → None."""
    relative = key[len(inbox_prefix):] if key.startswith(inbox_prefix) else key
    parts = relative.split("/")
    return parts[0] if len(parts) > 1 and parts[0] else None


def execution_name(obj: InboxObject) -> str:
    """A Step Functions execution name (≤ 80 chars of ``[A-Za-z0-9_-]``) unique to this upload.

    Readable prefix from the file name, uniqueness from a hash of bucket, key, ETag, version
    and sequencer: the same upload delivered twice gives the same name.
    """
    identity = "\n".join((obj.bucket, obj.key, obj.etag, obj.version_id, obj.sequencer))
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    when = _event_time(obj.event_time)
    if when is not None:
        # Named for people as every run is (<stem>-<UTC time>-<suffix>, studiorunner.naming): the
        # time is the event's, the suffix the upload's digest, so a re-delivery names the same run.

        return run_name(obj.key, when=when, suffix=digest[:8], default_stem="object")
    stem = obj.key.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    readable = _UNSAFE.sub("-", stem).strip("-")[: MAX_EXECUTION_NAME - len(digest) - len("s3--")] or "object"
    return f"s3-{readable}-{digest}"


def _event_time(text: str):
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def build_payload(obj: InboxObject, *, inbox_prefix: str, s3: S3Client) -> dict[str, Any] | None:
    """The run's input for this object, or None when the object is not a run request."""
    target = target_from_key(obj.key, inbox_prefix)
    lower = obj.key.lower()
    if lower.endswith(".ipynb"):
        payload: dict[str, Any] = {"notebook_s3": f"s3://{obj.bucket}/{obj.key}"}
        if target:
            payload["target"] = target
        return payload
    if lower.endswith(".json"):
        payload = _read_json_payload(obj, s3)
        if target and "target" not in payload:
            payload["target"] = target
        return payload
    return None


def start_run(obj: InboxObject, *, settings: TriggerSettings, s3: S3Client,
              stepfunctions: StepFunctionsClient) -> TriggerResult:
    """Start the run this upload asks for, at most once per upload."""
    if not obj.key.startswith(settings.inbox_prefix) or obj.key.endswith("/"):
        return TriggerResult(status="ignored", key=obj.key, reason="not a file under the inbox prefix")
    payload = build_payload(obj, inbox_prefix=settings.inbox_prefix, s3=s3)
    if payload is None:
        return TriggerResult(status="ignored", key=obj.key, reason="neither .ipynb nor .json")
    name = execution_name(obj)
    try:
        response = stepfunctions.start_execution(stateMachineArn=settings.state_machine_arn, name=name,
                                                 input=json.dumps(payload))
    except Exception as error:
        # A Standard workflow answers ExecutionAlreadyExists when the name was used by an
        # execution that has finished: this upload already had its run.
        if _error_code(error) == "ExecutionAlreadyExists":
            logger.info("duplicate event for s3://%s/%s: execution %s already exists", obj.bucket, obj.key, name)
            return TriggerResult(status="duplicate", key=obj.key, execution_name=name)
        raise
    return TriggerResult(status="started", key=obj.key, execution_name=name,
                         execution_arn=response.get("executionArn"))


def _read_json_payload(obj: InboxObject, s3: S3Client) -> dict[str, Any]:
    where = f"s3://{obj.bucket}/{obj.key}"
    kwargs: dict[str, Any] = {"Bucket": obj.bucket, "Key": obj.key}
    if obj.version_id:
        kwargs["VersionId"] = obj.version_id
    response = s3.get_object(**kwargs)
    body = response["Body"].read(MAX_PAYLOAD_BYTES + 1)
    if len(body) > MAX_PAYLOAD_BYTES:
        raise PayloadInvalid(f"{where} is larger than {MAX_PAYLOAD_BYTES} bytes; a payload must be small JSON",
                             key=obj.key)
    try:
        payload = json.loads(body)
    except ValueError as error:
        raise PayloadInvalid(f"{where} is not valid JSON: {error}", key=obj.key) from error
    if not isinstance(payload, dict):
        raise PayloadInvalid(f"{where} must hold a JSON object (the run payload)", key=obj.key)
    return payload


def _error_code(error: Exception) -> str | None:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None
