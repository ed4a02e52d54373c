"""Jupyter kernel messages: building them, and the two wire encodings jupyter_server speaks.

Like jupyter_client's ``Session.msg`` / ``Session.serialize`` split: the functions that
*build* a message return a plain dict and know nothing about sockets; the
``encode_*``/``decode_*`` functions turn such a dict into a WebSocket frame and back.

A message dict has the keys ``header``, ``msg_id``, ``msg_type``, ``parent_header``,
``metadata``, ``content``, ``buffers`` and ``channel`` (``shell``/``iopub``/``stdin``/
``control``). Dates stay ISO-8601 strings: nothing here needs them as datetimes.

Wire encodings (see jupyter_server/services/kernels/connection/base.py):

* legacy (no subprotocol): a JSON text frame holding the message with its ``channel``;
  a message with binary buffers arrives as a binary frame (``serialize_binary_message``:
  big-endian uint32 count and offsets, JSON, then the buffers).
* ``v1.kernel.websocket.jupyter.org``: every message is a binary frame: a little-endian
  uint64 count of offsets, the uint64 offsets, the channel name, then the JSON-encoded
  header, parent_header, metadata, content, then any buffers.
"""

from __future__ import annotations

import json
import struct
import uuid
from typing import Any

from studiorunner.timestamps import utc_iso

#: Version of the messaging protocol the messages we build follow.
PROTOCOL_VERSION = "5.4"
#: The binary WebSocket subprotocol of jupyter_server >= 2.
V1_SUBPROTOCOL = "v1.kernel.websocket.jupyter.org"
USERNAME = "studio-runner"

_PARTS = ("header", "parent_header", "metadata", "content")


def new_session_id() -> str:
    """A new client session id (also what goes into the WebSocket ``session_id`` parameter)."""
    return uuid.uuid4().hex


def utcnow_iso() -> str:
    return utc_iso()


def new_msg(
    msg_type: str,
    content: dict[str, Any],
    *,
    session: str,
    channel: str,
    parent: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a message as jupyter_client's ``Session.msg`` does (plus its ``channel``)."""
    header = {
        "msg_id": uuid.uuid4().hex,
        "msg_type": msg_type,
        "username": USERNAME,
        "session": session,
        "date": utcnow_iso(),
        "version": PROTOCOL_VERSION,
    }
    return {
        "header": header,
        "msg_id": header["msg_id"],
        "msg_type": msg_type,
        "parent_header": dict(parent["header"]) if parent else {},
        "metadata": dict(metadata or {}),
        "content": content,
        "buffers": [],
        "channel": channel,
    }


def execute_request(
    code: str,
    *,
    session: str,
    stop_on_error: bool = True,
    allow_stdin: bool = False,
    silent: bool = False,
    store_history: bool = True,
) -> dict[str, Any]:
    """An ``execute_request`` for the shell channel.

    ``allow_stdin`` defaults to False so ``input()`` fails at once instead of waiting
    for a person who is not there.
    """
    content = {
        "code": code,
        "silent": silent,
        "store_history": store_history,
        "user_expressions": {},
        "allow_stdin": allow_stdin,
        "stop_on_error": stop_on_error,
    }
    return new_msg("execute_request", content, session=session, channel="shell")


def kernel_info_request(*, session: str, channel: str = "shell") -> dict[str, Any]:
    """A ``kernel_info_request`` (shell by default; ``control`` is answered even while busy)."""
    return new_msg("kernel_info_request", {}, session=session, channel=channel)


def _complete(msg: dict[str, Any], channel: str | None, buffers: list[bytes]) -> dict[str, Any]:
    """Fill the convenience keys jupyter_client's ``Session.deserialize`` adds."""
    header = msg.get("header") or {}
    msg["header"] = header
    msg["parent_header"] = msg.get("parent_header") or {}
    msg["metadata"] = msg.get("metadata") or {}
    msg["content"] = msg.get("content") if msg.get("content") is not None else {}
    msg["msg_id"] = header.get("msg_id")
    msg["msg_type"] = header.get("msg_type")
    msg["buffers"] = buffers
    msg["channel"] = channel
    return msg


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# -- legacy JSON text frames -------------------------------------------------------------


def encode_json_frame(msg: dict[str, Any]) -> str:
    """The legacy text frame: the message with its channel, without buffers."""
    if msg.get("buffers"):
        raise ValueError("a message with binary buffers cannot go in a JSON text frame")
    return _dumps({key: msg[key] for key in (*_PARTS, "channel")})


def decode_json_frame(text: str | bytes) -> dict[str, Any]:
    msg = json.loads(text)
    return _complete(msg, msg.pop("channel", None), [])


def decode_legacy_binary_frame(data: bytes) -> dict[str, Any]:
    """A legacy-protocol binary frame (a message that carries buffers)."""
    nbufs = struct.unpack("!I", data[:4])[0]
    offsets = list(struct.unpack("!" + "I" * nbufs, data[4 : 4 * (nbufs + 1)]))
    offsets.append(len(data))
    parts = [data[start:stop] for start, stop in zip(offsets[:-1], offsets[1:], strict=False)]
    msg = json.loads(parts[0].decode("utf-8", "replace"))
    return _complete(msg, msg.pop("channel", None), [bytes(p) for p in parts[1:]])


# -- v1.kernel.websocket.jupyter.org -----------------------------------------------------


def encode_v1_frame(msg: dict[str, Any]) -> bytes:
    """Serialise as jupyter_server's ``serialize_msg_to_ws_v1`` does."""
    parts = [_dumps(msg[key]).encode("utf-8") for key in _PARTS]
    parts.extend(bytes(b) for b in msg.get("buffers") or [])
    channel = str(msg["channel"]).encode("utf-8")
    offsets = [8 * (1 + 1 + len(parts) + 1)]
    offsets.append(offsets[-1] + len(channel))
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    head = len(offsets).to_bytes(8, "little") + b"".join(o.to_bytes(8, "little") for o in offsets)
    return b"".join([head, channel, *parts])


def decode_v1_frame(data: bytes) -> dict[str, Any]:
    """Parse a v1 binary frame (``deserialize_msg_from_ws_v1`` plus JSON decoding)."""
    count = int.from_bytes(data[:8], "little")
    if count < 2 or len(data) < 8 * (count + 1):
        raise ValueError("malformed v1 kernel WebSocket frame")
    offsets = [int.from_bytes(data[8 * (i + 1) : 8 * (i + 2)], "little") for i in range(count)]
    # Slices of a memoryview are not copies: a 50 MB output is decoded straight from the
    # frame into a str, instead of frame → slice → str (measured: 265 → 215 MiB peak).
    view = memoryview(data)
    channel = str(view[offsets[0] : offsets[1]], "utf-8")
    # The last offset is the end of the last part, as jupyter_server writes it.
    parts = [view[offsets[i] : offsets[i + 1]] for i in range(1, count - 1)]
    if len(parts) < 4:
        raise ValueError("v1 kernel WebSocket frame has fewer than 4 message parts")
    # errors="replace": a kernel encodes a lone surrogate in its output ('\udc80', a file name
    # read with surrogateescape) as the byte it stands for, which is not UTF-8; jupyter_client
    # decodes such bytes the same way (U+FFFD). Bug fix: the run died of UnicodeDecodeError (issue 20).
    msg = {key: json.loads(str(part, "utf-8", "replace")) for key, part in zip(_PARTS, parts, strict=False)}
    return _complete(msg, channel, [bytes(p) for p in parts[4:]])


def encode_frame(msg: dict[str, Any], subprotocol: str | None) -> str | bytes:
    """The frame payload for ``msg`` in the negotiated subprotocol (bytes means binary)."""
    if subprotocol == V1_SUBPROTOCOL:
        return encode_v1_frame(msg)
    return encode_json_frame(msg)


def decode_frame(data: str | bytes, subprotocol: str | None) -> dict[str, Any]:
    """Parse one received frame (text or binary) in the negotiated subprotocol."""
    if isinstance(data, str):
        return decode_json_frame(data)
    if subprotocol == V1_SUBPROTOCOL:
        return decode_v1_frame(data)
    return decode_legacy_binary_frame(data)


def parent_msg_id(msg: dict[str, Any]) -> str | None:
    return (msg.get("parent_header") or {}).get("msg_id")
