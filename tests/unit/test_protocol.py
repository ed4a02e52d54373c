"""Message building and the two wire encodings, checked against jupyter_server's own code."""

from __future__ import annotations

import json

import pytest
from jupyter_server.services.kernels.connection.base import (
    deserialize_msg_from_ws_v1,
    serialize_binary_message,
    serialize_msg_to_ws_v1,
)

from studiorunner.jupyter import kernel_protocol as protocol


def test_execute_request_defaults_fail_input_fast() -> None:
    msg = protocol.execute_request("1 + 1", session="s1")
    assert msg["msg_type"] == msg["header"]["msg_type"] == "execute_request"
    assert msg["channel"] == "shell" and msg["header"]["session"] == "s1"
    assert msg["content"] == {"code": "1 + 1", "silent": False, "store_history": True,
                              "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}
    assert msg["parent_header"] == {} and msg["msg_id"] == msg["header"]["msg_id"]


def test_new_msg_parent() -> None:
    parent = protocol.kernel_info_request(session="s")
    child = protocol.new_msg("status", {"execution_state": "idle"}, session="k", channel="iopub", parent=parent)
    assert child["parent_header"]["msg_id"] == parent["msg_id"]
    assert protocol.parent_msg_id(child) == parent["msg_id"]


def test_v1_frame_is_what_jupyter_server_reads() -> None:
    msg = protocol.execute_request("print('é')", session="s")
    channel, parts = deserialize_msg_from_ws_v1(protocol.encode_v1_frame(msg))
    assert channel == "shell"
    assert [json.loads(p) for p in parts] == [msg["header"], {}, {}, msg["content"]]


def test_v1_frame_from_jupyter_server_with_buffers() -> None:
    header = {"msg_id": "m1", "msg_type": "comm_msg", "date": "2024-01-01T00:00:00Z"}
    parts = [json.dumps(x).encode() for x in (header, {"msg_id": "p1"}, {}, {"data": {}})]
    frame = serialize_msg_to_ws_v1([*parts, b"\x00\x01"], "iopub")
    msg = protocol.decode_frame(frame, protocol.V1_SUBPROTOCOL)
    assert msg["channel"] == "iopub" and msg["msg_type"] == "comm_msg" and msg["msg_id"] == "m1"
    assert msg["parent_header"] == {"msg_id": "p1"} and msg["buffers"] == [b"\x00\x01"]


def test_round_trip_v1() -> None:
    msg = protocol.execute_request("x", session="s")
    back = protocol.decode_v1_frame(protocol.encode_v1_frame(msg))
    assert {k: back[k] for k in msg} == msg


def test_json_frames() -> None:
    msg = protocol.execute_request("x", session="s")
    text = protocol.encode_frame(msg, None)
    assert isinstance(text, str) and json.loads(text)["channel"] == "shell"
    back = protocol.decode_frame(text, None)
    assert back["content"] == msg["content"] and back["channel"] == "shell"


def test_legacy_binary_frame_with_buffers() -> None:
    wire = {"header": {"msg_id": "a", "msg_type": "display_data"}, "parent_header": {}, "metadata": {},
            "content": {"data": {}}, "channel": "iopub", "buffers": [b"abc", b"de"]}
    msg = protocol.decode_frame(serialize_binary_message(wire), None)
    assert msg["channel"] == "iopub" and msg["buffers"] == [b"abc", b"de"] and msg["msg_type"] == "display_data"


# -- the handshake retry rule of the one connection module (no server) -----------------------

def _refusing(monkeypatch, statuses: list[int]) -> list[str]:
    """Make WebSocketConnection._connect answer ``statuses`` in turn, then succeed."""
    from studiorunner.jupyter import connection

    calls: list[str] = []

    def connect(cls, url, **kw):
        calls.append(url)
        if len(calls) <= len(statuses):
            raise connection._HandshakeRefused(statuses[len(calls) - 1], None)
        return "connected"

    monkeypatch.setattr(connection.WebSocketConnection, "_connect", classmethod(connect))
    return calls


def test_handshake_retries_transient_statuses_and_one_401(monkeypatch) -> None:
    from studiorunner.jupyter.connection import WebSocketConnection

    calls = _refusing(monkeypatch, [503, 502, 504, 401])
    pauses: list[float] = []
    assert WebSocketConnection.open("ws://h/p?session_id=s", headers={}, sleep=pauses.append) == "connected"
    assert len(calls) == 5 and pauses == [0.25, 0.5, 1.0, 2.0]


@pytest.mark.parametrize("statuses, error, attempts", [
    ([403], "LoginFailed", 1),          # a refused login is not transient
    ([401, 401], "LoginFailed", 2),     # a second 401 is a login that does not work
    ([404], "JupyterHTTPError", 1),     # no such kernel or terminal
    ([503] * 50, "JupyterHTTPError", 6),  # the budget (10 s) runs out: 0.25+0.5+1+2+4 then give up
])
def test_handshake_gives_up_with_one_named_error(monkeypatch, statuses, error, attempts) -> None:
    from studiorunner.jupyter import connection

    calls = _refusing(monkeypatch, statuses)
    clock = [0.0]
    monkeypatch.setattr(connection.time, "monotonic", lambda: clock[0])

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    with pytest.raises(Exception) as caught:
        connection.WebSocketConnection.open("ws://h/api/kernels/k/channels?session_id=secret", headers={},
                                            what="kernel WebSocket", sleep=sleep)
    assert type(caught.value).__name__ == error and len(calls) == attempts
    assert caught.value.facts["status"] == statuses[0] and caught.value.facts["path"] == "ws://h/api/kernels/k/channels"
    assert "secret" not in str(caught.value)


def test_a_lone_surrogate_a_kernel_sends_decodes_as_a_replacement_character() -> None:
    """jupyter_client packs '\\udc80' as the byte 0x80 (surrogateescape), which is not UTF-8: it
    decodes as U+FFFD, as jupyter_client's own unpacker does, never as a UnicodeDecodeError."""
    from jupyter_client.session import json_packer

    header = {"msg_id": "m1", "msg_type": "stream", "date": "2024-01-01T00:00:00Z"}
    parts = [json_packer(x) for x in (header, {"msg_id": "p1"}, {}, {"name": "stdout", "text": "file-\udc80.csv"})]
    msg = protocol.decode_frame(serialize_msg_to_ws_v1(parts, "iopub"), protocol.V1_SUBPROTOCOL)
    assert msg["content"]["text"] == "file-\ufffd.csv"
    legacy = serialize_binary_message({"header": header, "parent_header": {}, "metadata": {}, "channel": "iopub",
                                       "content": {"text": "ok"}, "buffers": [b"\x00"]})
    assert protocol.decode_frame(legacy, None)["content"] == {"text": "ok"}
