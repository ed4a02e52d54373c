"""Reading and writing notebooks in S3, and saving a running notebook without O(cells²).

The steps talk to ``NotebookStore``; tests replace it with an in-memory fake, and
``S3NotebookStore`` is the real one over boto3.

Serialisation gives the same bytes as ``nbformat.write`` but skips the JSON-schema
validation ``nbformat.writes`` runs on every call and the deep copy its writer makes.
Measured on a 2,000-cell notebook with two outputs per cell (1.2 MB), quiet 2-core
machine: ``nbformat.writes`` 221 ms, of which validation 85–88 ms (the fastjsonschema
validator is no faster: the cost is in nbformat's wrapping, not the schema check); the
v4 writer alone 133 ms, of which the deep copy 54 ms; ``notebook_to_bytes`` 65 ms (a
third of ``nbformat.writes``; about half under load, 131 vs 418 ms). Validation catches
bugs in our own code, which builds notebooks only with ``nbformat.v4`` constructors; it
runs in the tests and, optionally (``validate=True``), before a write, where a failure
is logged and the notebook still saved: an output notebook must never be lost to a
schema complaint.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
import nbformat
from botocore.exceptions import ClientError
from nbformat import NotebookNode
from nbformat.v4 import nbjson

from studiorunner.errors import NotebookAccessDenied, NotebookInvalid, NotebookNotFound, OutputUnwritable

logger = logging.getLogger(__name__)

IPYNB_CONTENT_TYPE = "application/x-ipynb+json"
#: A streamed upload's part size: S3 wants at least 5 MiB for every part but the last; one
#: part is the most of a log held in memory at once (bench/README.md, "commandlog").
PART_BYTES = 8 * 1024 * 1024
_MISSING_CODES = {"NoSuchKey", "NoSuchBucket", "404", "NotFound"}
_DENIED_CODES = {"AccessDenied", "403", "Forbidden", "AllAccessDisabled", "KMS.AccessDeniedException",
                 "KMS.DisabledException", "InvalidObjectState"}


# What nbformat's v4 writer does to a notebook before json.dumps (nbformat/v4/rwbase.py:
# split_lines, strip_transient), done on a shallow view instead of on a deep copy.
_NON_TEXT_SPLIT_MIMES = {"application/javascript", "image/svg+xml"}
_TRANSIENT_NB_METADATA = {"orig_nbformat", "orig_nbformat_minor", "signature"}


def _split_bundle(data: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value.splitlines(True)
        if isinstance(value, str) and (key.startswith("text/") or key in _NON_TEXT_SPLIT_MIMES)
        else value
        for key, value in data.items()
    }


def _output_view(output: dict[str, Any]) -> dict[str, Any]:
    kind = output.get("output_type")
    if kind in {"execute_result", "display_data"} and "data" in output:
        return {**output, "data": _split_bundle(output["data"])}
    if kind == "stream" and isinstance(output.get("text"), str):
        return {**output, "text": output["text"].splitlines(True)}
    return output


def _cell_view(cell: dict[str, Any]) -> dict[str, Any]:
    view = dict(cell)
    if isinstance(cell.get("source"), str):
        view["source"] = cell["source"].splitlines(True)
    if cell.get("attachments"):
        view["attachments"] = {name: _split_bundle(b) for name, b in cell["attachments"].items()}
    if "trusted" in cell.get("metadata", {}):
        view["metadata"] = {k: v for k, v in cell["metadata"].items() if k != "trusted"}
    if cell.get("cell_type") == "code" and cell.get("outputs"):
        view["outputs"] = [_output_view(o) for o in cell["outputs"]]
    return view


def notebook_to_bytes(nb: NotebookNode, *, validate: bool = False) -> bytes:
    """The notebook exactly as ``nbformat.write`` stores it (UTF-8 JSON, indent 1).

    nbformat's writer deep-copies the notebook before splitting lines; a shallow view of
    what changes gives the same bytes in half the time (see the module docstring).
    ``test_store`` checks the bytes against nbformat's on every peer-suite notebook.
    """
    if validate:
        try:
            nbformat.validate(nb)
        except nbformat.ValidationError as e:
            logger.warning("Notebook does not match the nbformat schema; saving it anyway: %s", str(e).splitlines()[0])
    view = dict(nb)
    view["metadata"] = {k: v for k, v in nb.get("metadata", {}).items() if k not in _TRANSIENT_NB_METADATA}
    view["cells"] = [_cell_view(cell) for cell in nb.get("cells", [])]
    text = json.dumps(
        view, cls=nbjson.BytesEncoder, indent=1, sort_keys=True, separators=(",", ": "), ensure_ascii=False
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate got in (issue 20): U+FFFD rather than no notebook at all
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")


def notebook_from_bytes(data: bytes, *, source: str) -> NotebookNode:
    """Parse a stored notebook (any nbformat version, converted to v4)."""
    try:
        return nbformat.reads(data.decode("utf-8"), as_version=4)
    except (ValueError, KeyError, AttributeError, TypeError, nbformat.ValidationError) as e:
        # NotJSONError is a ValueError; JSON that is not a notebook fails with a
        # ValidationError (or KeyError/AttributeError) in nbformat's version conversion.
        raise NotebookInvalid(f"{source} is not a Jupyter notebook: {str(e)[:300]}", uri=source) from e


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Uri:
        if not uri.startswith("s3://"):
            raise ValueError(f"not an s3:// URI: {uri!r}")
        bucket, _, key = uri[len("s3://") :].partition("/")
        if not bucket or not key:
            raise ValueError(f"an S3 URI needs a bucket and a key: {uri!r}")
        return cls(bucket, key)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class NotebookStore(Protocol):
    """Where notebooks live. ``read`` raises NotebookNotFound for a missing one."""

    def read_bytes(self, uri: str) -> bytes: ...

    def write_bytes(self, uri: str, data: bytes, *, content_type: str = IPYNB_CONTENT_TYPE) -> None: ...

    def read(self, uri: str) -> NotebookNode: ...

    def write(self, uri: str, nb: NotebookNode) -> None: ...


class S3NotebookStore:
    """Notebooks as S3 objects addressed by ``s3://bucket/key`` URIs."""

    def __init__(self, s3_client: Any = None, *, validate: bool = False) -> None:
        if s3_client is None:
            s3_client = boto3.client("s3")
        self._s3 = s3_client
        self._validate = validate

    def read_bytes(self, uri: str) -> bytes:
        loc = S3Uri.parse(uri)
        try:
            response = self._s3.get_object(Bucket=loc.bucket, Key=loc.key)
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in _MISSING_CODES:
                raise NotebookNotFound(f"Notebook not found: {loc}", uri=str(loc)) from e
            if code in _DENIED_CODES:
                # S3 also answers 403 for a missing key when s3:ListBucket is not granted.
                raise NotebookAccessDenied(
                    f"Access denied reading {loc} ({code}): the runner's role needs s3:GetObject on "
                    f"arn:aws:s3:::{loc.bucket}/{loc.key} (and kms:Decrypt if the object is KMS-encrypted); "
                    f"without s3:ListBucket on {loc.bucket}, S3 also says this for a key that does not exist",
                    uri=str(loc), bucket=loc.bucket, key=loc.key, code=code,
                ) from e
            raise
        return response["Body"].read()

    def write_bytes(self, uri: str, data: bytes, *, content_type: str = IPYNB_CONTENT_TYPE) -> None:
        """Store ``data``; OutputUnwritable when S3 refuses it (botocore has retried what it retries)."""
        loc = S3Uri.parse(uri)
        try:
            self._s3.put_object(Bucket=loc.bucket, Key=loc.key, Body=data, ContentType=content_type)
        except ClientError as e:
            error = e.response.get("Error", {})
            code = str(error.get("Code", ""))
            raise OutputUnwritable(
                f"S3 refused to write {loc} ({code}: {error.get('Message') or 'no message'})",
                uri=str(loc), bucket=loc.bucket, key=loc.key, code=code,
            ) from e

    def open_text_upload(self, uri: str, *, content_type: str, part_bytes: int = PART_BYTES) -> S3TextUpload:
        """A text object streamed to ``uri`` as it is written (see :class:`S3TextUpload`)."""
        return S3TextUpload(self._s3, uri, content_type=content_type, part_bytes=part_bytes)

    def read(self, uri: str) -> NotebookNode:
        return notebook_from_bytes(self.read_bytes(uri), source=uri)

    def write(self, uri: str, nb: NotebookNode) -> None:
        self.write_bytes(uri, notebook_to_bytes(nb, validate=self._validate))


class TextUpload(Protocol):
    """A text object written as it grows (``write``), stored for good by ``close``."""

    def write(self, text: str) -> int: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class S3TextUpload:
    """A text object streamed to S3 (a multipart upload in ``part_bytes`` parts), never whole
    in memory: a command printing 100 MB must not take a 1 GB Lambda's heap (issue 21.3).

    ``write`` never raises: a refused part is remembered, the rest of the text discarded, and
    ``close`` raises OutputUnwritable (after aborting the upload, so S3 keeps no orphan parts).
    Small texts (under one part) are one PutObject, as before.
    """

    def __init__(self, s3: Any, uri: str, *, content_type: str, part_bytes: int = PART_BYTES) -> None:
        self._s3 = s3
        self.loc = S3Uri.parse(uri)
        self.content_type = content_type
        self.part_bytes = part_bytes
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self.bytes_written = 0
        self.failed: OutputUnwritable | None = None

    def write(self, text: str) -> int:
        if self.failed is None:
            self._buffer += text.encode("utf-8", "surrogateescape")
            if len(self._buffer) >= self.part_bytes:
                self._guarded(self._send_part)
        return len(text)

    def flush(self) -> None:
        """Nothing: a part goes when it is full, the rest at ``close``."""

    def close(self) -> None:
        if self.failed is None:
            self._guarded(self._finish)
        if self.failed is not None:
            if self._upload_id is not None:
                try:
                    self._s3.abort_multipart_upload(Bucket=self.loc.bucket, Key=self.loc.key, UploadId=self._upload_id)
                except ClientError:
                    logger.warning("could not abort the multipart upload of %s", self.loc)
            raise self.failed

    def _finish(self) -> None:
        if self._upload_id is None:
            self._s3.put_object(Bucket=self.loc.bucket, Key=self.loc.key, Body=bytes(self._buffer),
                                ContentType=self.content_type)
            self.bytes_written += len(self._buffer)
            self._buffer.clear()
            return
        if self._buffer:
            self._send_part()
        self._s3.complete_multipart_upload(Bucket=self.loc.bucket, Key=self.loc.key, UploadId=self._upload_id,
                                           MultipartUpload={"Parts": self._parts})

    def _send_part(self) -> None:
        if self._upload_id is None:
            self._upload_id = self._s3.create_multipart_upload(
                Bucket=self.loc.bucket, Key=self.loc.key, ContentType=self.content_type)["UploadId"]
        number = len(self._parts) + 1
        body, self._buffer = bytes(self._buffer), bytearray()
        answer = self._s3.upload_part(Bucket=self.loc.bucket, Key=self.loc.key, UploadId=self._upload_id,
                                      PartNumber=number, Body=body)
        self._parts.append({"ETag": answer["ETag"], "PartNumber": number})
        self.bytes_written += len(body)

    def _guarded(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except ClientError as e:
            error = e.response.get("Error", {})
            code = str(error.get("Code", ""))
            self.failed = OutputUnwritable(
                f"S3 refused to write {self.loc} ({code}: {error.get('Message') or 'no message'})",
                uri=str(self.loc), bucket=self.loc.bucket, key=self.loc.key, code=code)
            self.failed.__cause__ = e
            self._buffer = bytearray()


class BufferedTextUpload:
    """The same for a store that has no streaming (tests' in-memory stores): kept, then written."""

    def __init__(self, store: NotebookStore, uri: str, *, content_type: str) -> None:
        self.store, self.uri, self.content_type = store, uri, content_type
        self._parts: list[str] = []

    def write(self, text: str) -> int:
        self._parts.append(text)
        return len(text)

    def flush(self) -> None:
        """Nothing: written at ``close``."""

    def close(self) -> None:
        self.store.write_bytes(self.uri, "".join(self._parts).encode("utf-8", "surrogateescape"),
                               content_type=self.content_type)


def open_text_upload(store: NotebookStore, uri: str, *, content_type: str) -> TextUpload:
    """A text object at ``uri`` written as it grows: streamed to S3 in parts when the store is
    S3, else kept and written at ``close``."""
    if isinstance(store, S3NotebookStore):
        return store.open_text_upload(uri, content_type=content_type)
    return BufferedTextUpload(store, uri, content_type=content_type)


class ThrottledSaver:
    """Saves a running notebook often enough to lose little, rarely enough to stay cheap.

    Rule: ``save_if_due`` writes when at least ``max(min_interval, cost_factor × cost of
    the last save)`` seconds (defaults 1 s and 10×) have passed since the last save
    ended. Why: saving after every cell, as papermill does, rewrites the whole notebook
    per cell, O(cells²) in total (papermill: 14 → 95 ms per cell from 50 to 500 cells).
    Tying the interval to elapsed time bounds the number of saves by the run's duration,
    not its cell count; tying it to the measured cost of a save keeps saving to about a
    tenth of the run's time however big the notebook grows (each save is followed by at
    least ten times its cost without one), with no size threshold to tune. In the unit
    test's simulation, 2,000 cells with saves growing to 2 s each: 23 writes instead of
    2,002, 12 % of the run. ``flush`` always writes (run start, failure, end).

    A failed write leaves the saver due, so the next call tries again. S3 refusing the
    notebook (``OutputUnwritable``: the bucket deleted mid-run, a policy, a KMS key) does not
    stop the run at ``save_if_due``: the cells go on, and ``flush`` (the run's end, or its
    failure) tries S3 again, then ``fallback`` — RunCells writes the notebook into the
    target's tree — and raises OutputUnwritable saying where the notebook is.
    """

    def __init__(
        self,
        store: NotebookStore,
        uri: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        min_interval: float = 1.0,
        cost_factor: float = 10.0,
        fallback: Callable[[NotebookNode], str] | None = None,
    ) -> None:
        self.store = store
        self.fallback = fallback  # writes the notebook elsewhere; says where
        self.refused: OutputUnwritable | None = None  # S3's last refusal, while it lasts
        self.uri = uri
        self._clock = clock
        self.min_interval = min_interval
        self.cost_factor = cost_factor
        self.saves = 0
        self.last_save_seconds = 0.0
        self._last_save_end: float | None = None

    def interval(self) -> float:
        """Seconds that must pass after a save before ``save_if_due`` saves again."""
        return max(self.min_interval, self.cost_factor * self.last_save_seconds)

    def due(self) -> bool:
        if self._last_save_end is None:
            return True
        return self._clock() - self._last_save_end >= self.interval()

    def save_if_due(self, nb: NotebookNode) -> bool:
        """Save if the interval has passed; True if it saved."""
        if not self.due():
            return False
        try:
            self._write(nb)
        except OutputUnwritable as exc:
            if self.refused is None:
                logger.warning("could not save the running notebook (the run goes on; tried again at its end): %s",
                               exc.message)
            self.refused = exc
            self._last_save_end = self._clock()  # try again after the interval, not after every cell
            return False
        return True

    def flush(self, nb: NotebookNode) -> None:
        """Save now, whatever the interval; OutputUnwritable, once the fallback is written,
        when S3 still refuses."""
        try:
            self._write(nb)
        except OutputUnwritable as exc:
            self.refused = exc
            if self.fallback is None:
                raise
            try:
                where = self.fallback(nb)
            except Exception as fallback_exc:  # noqa: BLE001 - named in the error, which keeps S3's cause
                kind = getattr(fallback_exc, "message", None) or type(fallback_exc).__name__
                raise OutputUnwritable(
                    f"{exc.message}; the executed notebook could not be written to the target's tree "
                    f"either ({kind}): it is lost", **exc.facts, written_to=None) from exc
            raise OutputUnwritable(
                f"{exc.message}; the executed notebook was written to {where} in the target's tree instead",
                **exc.facts, written_to=where) from exc

    def _write(self, nb: NotebookNode) -> None:
        started = self._clock()
        self.store.write(self.uri, nb)
        self.refused = None
        ended = self._clock()
        self.last_save_seconds = max(0.0, ended - started)
        self._last_save_end = ended
        self.saves += 1
