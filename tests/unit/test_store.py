"""The S3 notebook store (against moto) and the throttled saver (against a fake clock)."""

from __future__ import annotations

import copy
import json

import boto3
import nbformat
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from nbformat.v4 import new_code_cell, new_notebook

from studiorunner.errors import NotebookAccessDenied, NotebookInvalid, NotebookNotFound
from studiorunner.store import (
    IPYNB_CONTENT_TYPE,
    NotebookStore,
    S3NotebookStore,
    S3Uri,
    ThrottledSaver,
    notebook_from_bytes,
    notebook_to_bytes,
)
from tests.peer_suites import MISSING, PEER_SUITES, peer_file

BUCKET = "runs-bucket"


@pytest.fixture(scope="module")
def s3():
    # One moto for the module (starting it costs ~0.5 s); tests use distinct keys.
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_write_then_read_round_trips_with_the_ipynb_content_type(s3):
    store = S3NotebookStore(s3)
    nb = nbformat.read(peer_file("nbclient", "Unicode.ipynb"), as_version=4)
    uri = f"s3://{BUCKET}/runs/r1/Unicode.ipynb"

    store.write(uri, nb)

    head = s3.head_object(Bucket=BUCKET, Key="runs/r1/Unicode.ipynb")
    assert head["ContentType"] == IPYNB_CONTENT_TYPE
    assert store.read(uri) == nb
    # Same bytes as nbformat.write, so a diff against a Jupyter-saved file is clean.
    assert store.read_bytes(uri) == nbformat.writes(nb).encode("utf-8")


def test_missing_object_raises_notebook_not_found_naming_the_uri(s3):
    store = S3NotebookStore(s3)
    with pytest.raises(NotebookNotFound, match=f"s3://{BUCKET}/nope.ipynb") as info:
        store.read(f"s3://{BUCKET}/nope.ipynb")
    assert info.value.facts["uri"] == f"s3://{BUCKET}/nope.ipynb"
    with pytest.raises(NotebookNotFound, match="s3://no-such-bucket/x.ipynb"):
        store.read("s3://no-such-bucket/x.ipynb")


def test_an_object_that_is_not_a_notebook_is_notebook_invalid_with_the_reason(s3):
    store = S3NotebookStore(s3)
    store.write_bytes(f"s3://{BUCKET}/a.ipynb", b"not json", content_type="text/plain")
    store.write_bytes(f"s3://{BUCKET}/b.ipynb", json.dumps({"hello": 1}).encode())
    store.write_bytes(f"s3://{BUCKET}/c.ipynb", json.dumps({"nbformat": 5, "nbformat_minor": 0, "cells": [],
                                                            "metadata": {}}).encode())
    reasons = {"a.ipynb": "does not appear to be JSON", "b.ipynb": "missing a key", "c.ipynb": "nbformat version 5"}
    for key, reason in reasons.items():
        with pytest.raises(NotebookInvalid, match=f"s3://{BUCKET}/{key} is not a Jupyter notebook: .*{reason}"):
            store.read(f"s3://{BUCKET}/{key}")


class _DeniedS3:
    def get_object(self, **kwargs):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")


def test_access_denied_is_a_named_error_naming_the_object_and_the_permission():
    with pytest.raises(NotebookAccessDenied) as info:
        S3NotebookStore(_DeniedS3()).read("s3://their-bucket/reports/x.ipynb")
    message = str(info.value)
    assert "s3://their-bucket/reports/x.ipynb" in message and "s3:GetObject" in message
    assert "arn:aws:s3:::their-bucket/reports/x.ipynb" in message
    assert info.value.facts["bucket"] == "their-bucket" and info.value.facts["code"] == "AccessDenied"


def test_bytes_round_trip(s3):
    store = S3NotebookStore(s3)
    store.write_bytes(f"s3://{BUCKET}/raw/data.bin", b"\x00\x01", content_type="application/octet-stream")
    assert store.read_bytes(f"s3://{BUCKET}/raw/data.bin") == b"\x00\x01"


@pytest.mark.parametrize("bad", ["bucket/key", "s3://bucket", "s3://bucket/", "s3:///key"])
def test_bad_uris_are_refused(bad):
    with pytest.raises(ValueError):
        S3Uri.parse(bad)


def test_s3_uri_keeps_the_key_whole():
    assert S3Uri.parse("s3://b/runs/r1/My Report.ipynb") == S3Uri("b", "runs/r1/My Report.ipynb")
    assert str(S3Uri("b", "k/x.ipynb")) == "s3://b/k/x.ipynb"


PEER_NOTEBOOKS = [pytest.param(p, id=f"{p.parent.name}/{p.name}") for p in sorted(PEER_SUITES.glob("*/*.ipynb"))] \
    or [pytest.param(None, marks=pytest.mark.skip(reason=MISSING), id="peer-suites")]


@pytest.mark.parametrize("path", PEER_NOTEBOOKS)
def test_serialisation_is_byte_identical_to_nbformat(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.v4.upgrade(nb)  # adds ids and the transient orig_nbformat_minor
    before = copy.deepcopy(nb)
    assert notebook_to_bytes(nb) == nbformat.writes(nb).encode("utf-8")
    assert nb == before  # the notebook itself is not modified


def test_serialisation_matches_nbformat_on_the_odd_parts():
    nb = new_notebook(metadata={"signature": "sha256:x", "orig_nbformat": 3, "kernelspec": {"name": "python3", "display_name": "Python 3"}})
    md = nbformat.v4.new_markdown_cell("![a](attachment:a.png)\nline two")
    md["attachments"] = {"a.png": {"image/png": "iVBORw0KGgo=", "text/plain": "one\ntwo\n"}}
    md.metadata["trusted"] = True
    code = new_code_cell("print(1)\nprint(2)\n", metadata={"trusted": False, "tags": ["t"]})
    code.outputs = [
        nbformat.from_dict({"output_type": "stream", "name": "stdout", "text": ["already\n", "split\n"]}),
        nbformat.from_dict({"output_type": "display_data", "metadata": {}, "data": {
            "application/json": {"a": "multi\nline"}, "application/vnd.custom+json": {"b": 1},
            "image/svg+xml": "<svg>\n</svg>", "application/javascript": "a;\nb;", "image/png": b"iVBORw0KGgo=",
            "text/html": "<p>\n</p>"}}),
        nbformat.from_dict({"output_type": "error", "ename": "E", "evalue": "v\nw", "traceback": ["t\n"]}),
    ]
    nb.cells = [md, code, nbformat.v4.new_raw_cell("raw\ntext")]
    assert notebook_to_bytes(nb) == nbformat.writes(nb).encode("utf-8")


def test_invalid_notebook_is_still_saved_with_validation_on(caplog):
    nb = new_notebook()
    nb.cells.append(new_code_cell("x"))
    nb.cells[0]["outputs"] = [nbformat.from_dict({"output_type": "not-a-type"})]
    data = notebook_to_bytes(nb, validate=True)
    assert json.loads(data)["cells"][0]["outputs"] == [{"output_type": "not-a-type"}]
    assert "does not match the nbformat schema" in caplog.text


def test_from_bytes_reads_older_formats():
    data = peer_file("papermill", "no_parameters.ipynb").read_bytes()  # v4.1
    nb = notebook_from_bytes(data, source="test")
    assert nb.nbformat == 4 and nb.cells[0].source == "msg = None"


# --- ThrottledSaver ----------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeStore:
    """Records writes; each write costs simulated time proportional to the notebook size,
    as serialising and uploading a real one does."""

    def __init__(self, clock: FakeClock, seconds_per_cell: float = 0.0) -> None:
        self.clock = clock
        self.seconds_per_cell = seconds_per_cell
        self.writes: list[tuple[str, int, float]] = []
        self.fail_next = False

    def read_bytes(self, uri: str) -> bytes:
        raise NotImplementedError

    def write_bytes(self, uri: str, data: bytes, *, content_type: str = IPYNB_CONTENT_TYPE) -> None:
        raise NotImplementedError

    def read(self, uri: str) -> nbformat.NotebookNode:
        raise NotImplementedError

    def write(self, uri: str, nb: nbformat.NotebookNode) -> None:
        self.clock.advance(self.seconds_per_cell * len(nb.cells))
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("S3 said no")
        self.writes.append((uri, len(nb.cells), self.clock.now))


def simulate_run(cells: int, seconds_per_cell: float, save_seconds_per_cell: float):
    """A run that grows the notebook by one cell per step and asks to save after each."""
    clock = FakeClock()
    store = FakeStore(clock, save_seconds_per_cell)
    saver = ThrottledSaver(store, "s3://b/runs/r/nb.ipynb", clock=clock)
    nb = new_notebook()
    saver.flush(nb)  # saved at start
    for i in range(cells):
        # (from_dict, not new_code_cell: the constructors validate, 2,000 times is slow)
        nb.cells.append(nbformat.from_dict({"cell_type": "code", "source": f"x = {i}", "metadata": {},
                                            "outputs": [], "execution_count": None}))
        clock.advance(seconds_per_cell)  # the cell runs
        saver.save_if_due(nb)
    saver.flush(nb)  # saved at the end
    return clock, store, saver


def test_fake_store_satisfies_the_protocol():
    store: NotebookStore = FakeStore(FakeClock())
    assert callable(store.write)


def test_2000_quick_cells_do_a_bounded_number_of_saves():
    # 2,000 cells of 5 ms; a save costs 0.1 ms per cell (0.2 s at 2,000 cells).
    clock, store, saver = simulate_run(2000, 0.005, 0.0001)

    run_seconds = clock.now
    saves = len(store.writes)
    # Per-cell saving would be 2,002 writes; time-based saving is bounded by the duration.
    assert saves <= run_seconds / saver.min_interval + 2
    assert saves < 40, saves
    total_save_seconds = sum(0.0001 * n for _, n, _ in store.writes)
    assert total_save_seconds < 0.15 * run_seconds  # saving stays a small share of the run
    assert store.writes[-1][1] == 2000  # the final flush wrote everything


def test_expensive_saves_space_themselves_out():
    # Saves that cost 1 ms per cell: at 2,000 cells one save takes 2 s, so the saver
    # waits ~20 s between saves instead of 1 s.
    clock, store, saver = simulate_run(2000, 0.05, 0.001)
    assert saver.last_save_seconds == pytest.approx(2.0)
    assert saver.interval() == pytest.approx(20.0)
    throttled = store.writes[1:-1]  # not the flushes at start and end
    assert len(throttled) >= 5
    for (_, cells_a, end_a), (_, _, end_b) in zip(throttled, throttled[1:], strict=False):
        # the next save waited at least 10x what the previous one cost
        assert end_b - end_a >= max(1.0, 10 * 0.001 * cells_a) - 1e-9
    total_save_seconds = sum(0.001 * n for _, n, _ in store.writes)
    assert total_save_seconds < 0.15 * clock.now


def test_save_if_due_first_call_saves_then_waits_for_the_interval():
    clock = FakeClock()
    store = FakeStore(clock)
    saver = ThrottledSaver(store, "s3://b/k", clock=clock)
    nb = new_notebook()
    assert saver.save_if_due(nb) is True
    assert saver.save_if_due(nb) is False
    clock.advance(0.999)
    assert saver.save_if_due(nb) is False
    clock.advance(0.001)
    assert saver.save_if_due(nb) is True
    assert len(store.writes) == 2


def test_flush_always_writes():
    clock = FakeClock()
    store = FakeStore(clock)
    saver = ThrottledSaver(store, "s3://b/k", clock=clock)
    nb = new_notebook()
    for _ in range(5):
        saver.flush(nb)
    assert len(store.writes) == 5 and saver.saves == 5


def test_a_failed_save_propagates_and_the_next_call_retries():
    clock = FakeClock()
    store = FakeStore(clock)
    saver = ThrottledSaver(store, "s3://b/k", clock=clock)
    nb = new_notebook()
    store.fail_next = True
    with pytest.raises(ConnectionError):
        saver.save_if_due(nb)
    assert saver.save_if_due(nb) is True
    assert len(store.writes) == 1


def test_throttled_saver_against_moto(s3):
    saver = ThrottledSaver(S3NotebookStore(s3), f"s3://{BUCKET}/runs/r1/out.ipynb")
    nb = new_notebook()
    nb.cells.append(new_code_cell("print(1)"))
    saver.flush(nb)
    assert S3NotebookStore(s3).read(f"s3://{BUCKET}/runs/r1/out.ipynb").cells[0].source == "print(1)"
    assert saver.last_save_seconds > 0


def test_a_lone_surrogate_in_a_notebook_is_saved_as_a_replacement_character():
    nb = new_notebook(cells=[new_code_cell("print(name)", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="file-\udc80.csv\n")])])
    saved = notebook_from_bytes(notebook_to_bytes(nb), source="test")
    assert saved.cells[0].outputs[0].text == "file-\ufffd.csv\n"


def test_s3_refusing_the_notebook_keeps_the_run_going_then_writes_it_elsewhere_and_says_where(s3):
    from studiorunner.errors import OutputUnwritable

    uri = "s3://no-such-output-bucket/runs/r9/out.ipynb"
    kept: list = []
    saver = ThrottledSaver(S3NotebookStore(s3), uri, min_interval=0.0,
                           fallback=lambda nb: kept.append(nb) or "reports/out.output.ipynb")
    nb = new_notebook(cells=[new_code_cell("print(1)")])

    assert saver.save_if_due(nb) is False  # refused: the run goes on
    assert saver.refused is not None and saver.refused.facts["code"] == "NoSuchBucket"
    with pytest.raises(OutputUnwritable) as info:
        saver.flush(nb)
    assert "NoSuchBucket" in info.value.message and "reports/out.output.ipynb" in info.value.message
    assert info.value.facts["written_to"] == "reports/out.output.ipynb" and kept == [nb]


def test_a_fallback_that_fails_too_says_the_notebook_is_lost(s3):
    from studiorunner.errors import OutputUnwritable

    def refuse(nb):
        raise PermissionError("read-only")

    saver = ThrottledSaver(S3NotebookStore(s3), "s3://no-such-output-bucket/x.ipynb", fallback=refuse)
    with pytest.raises(OutputUnwritable, match="it is lost") as info:
        saver.flush(new_notebook())
    assert info.value.facts["written_to"] is None


def test_a_big_text_streams_to_s3_in_parts_never_whole_in_memory(s3):
    from studiorunner.store import S3TextUpload

    part = 5 * 1024 * 1024  # S3's smallest part but the last
    uri = f"s3://{BUCKET}/runs/r10/commands.log"
    upload = S3NotebookStore(s3).open_text_upload(uri, content_type="text/plain; charset=utf-8", part_bytes=part)
    assert isinstance(upload, S3TextUpload)
    line = "é" + "x" * 1022 + "\n"  # 1,025 bytes in UTF-8
    held = 0
    for _ in range(12 * 1024):
        upload.write(line)
        held = max(held, len(upload._buffer))
    upload.close()

    assert held < part + len(line.encode())  # at most one part in memory
    assert len(upload._parts) == 3  # two full parts and the rest
    body = s3.get_object(Bucket=BUCKET, Key="runs/r10/commands.log")
    assert body["ContentType"] == "text/plain; charset=utf-8"
    assert body["Body"].read().decode() == line * (12 * 1024)


def test_a_small_text_is_one_put_and_a_refused_upload_fails_at_close_only(s3):
    from studiorunner.errors import OutputUnwritable

    upload = S3NotebookStore(s3).open_text_upload(f"s3://{BUCKET}/runs/r11/small.log", content_type="text/plain")
    upload.write("hello\n")
    upload.close()
    assert s3.get_object(Bucket=BUCKET, Key="runs/r11/small.log")["Body"].read() == b"hello\n"

    refused = S3NotebookStore(s3).open_text_upload("s3://no-such-log-bucket/x.log", content_type="text/plain",
                                                   part_bytes=5 * 1024 * 1024)
    refused.write("y" * (6 * 1024 * 1024))  # a part is refused: remembered, never raised here
    refused.write("more\n")
    with pytest.raises(OutputUnwritable, match="NoSuchBucket"):
        refused.close()
