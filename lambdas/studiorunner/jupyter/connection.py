"""A kernel's WebSocket (``/api/kernels/{id}/channels``) over websocket-client.

Only framing and the socket live here; messages are built and parsed by
:mod:`studiorunner.jupyter.kernel_protocol`. The URL's query string and the headers (cookies, tokens,
XSRF) never appear in a log line or an exception message.

Why the socket options (DESIGN.md "Performance facts"): jupyter_server does not set
TCP_NODELAY on kernel sockets, so small frames stall ~40 ms behind the client's delayed
ACK; re-arming TCP_QUICKACK after every receive removes the stall. websocket-client's
pure-Python UTF-8 check caps text frames at ~5 MB/s, hence ``skip_utf8_validation``
(JSON parsing rejects bad UTF-8 anyway) and the binary v1 subprotocol when offered.
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

import websocket

from studiorunner.errors import JupyterHTTPError, LoginFailed
from studiorunner.jupyter.kernel_protocol import V1_SUBPROTOCOL, decode_frame, encode_frame

logger = logging.getLogger(__name__)

_TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class ChannelClosed(Exception):
    """The kernel WebSocket closed or dropped (or could not be opened at all)."""


def _safe_path(url: str) -> str:
    """The URL without query string, userinfo or fragment: safe to log."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}{parts.path}"


class KernelChannel:
    """One open kernel WebSocket. Single-threaded: one caller sends and receives."""

    def __init__(self, ws: websocket.WebSocket, *, subprotocol: str | None, where: str,
                 read_timeout: float) -> None:
        self._ws = ws
        self.subprotocol = subprotocol
        self.where = where
        self._read_timeout = read_timeout
        self._closed = False

    @classmethod
    def open(cls, url: str, *, headers: dict[str, str], timeout: float = 30.0) -> KernelChannel:
        """Connect to ``url`` (``ws(s)://…/api/kernels/{id}/channels?session_id=…``).

        Raises :class:`LoginFailed` on 401/403, :class:`JupyterHTTPError` on another HTTP
        status (404: no such kernel), :class:`ChannelClosed` when the connection fails.
        """
        where = _safe_path(url)
        sockopt: list[tuple[int, int, int]] = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        ws = websocket.WebSocket(skip_utf8_validation=True, sockopt=sockopt)
        header = dict(headers)
        has_origin = any(k.lower() == "origin" for k in header)
        try:
            ws.connect(url, header=header, subprotocols=[V1_SUBPROTOCOL], timeout=timeout,
                       suppress_origin=has_origin)
        except websocket.WebSocketBadStatusException as e:
            status = e.status_code
            _close_quietly(ws)
            if status in (401, 403):
                raise LoginFailed(
                    f"kernel WebSocket handshake to {where} was refused: HTTP {status}"
                    " (login expired, wrong XSRF token or Origin?)",
                    path=where, status=status) from None
            raise JupyterHTTPError(
                f"kernel WebSocket handshake to {where} failed: HTTP {status}"
                + (" (no such kernel)" if status == 404 else ""),
                method="GET", path=where, status=status) from None
        except (OSError, websocket.WebSocketException) as e:
            _close_quietly(ws)
            # The exception text may quote the URL, so only its type is passed on.
            raise ChannelClosed(f"could not open kernel WebSocket {where}: {type(e).__name__}") from None
        chosen = ws.getsubprotocol()
        subprotocol = V1_SUBPROTOCOL if chosen == V1_SUBPROTOCOL else None
        channel = cls(ws, subprotocol=subprotocol, where=where, read_timeout=timeout)
        channel._quickack()
        logger.debug("kernel WebSocket open: %s (subprotocol %s)", where, subprotocol or "legacy JSON")
        return channel

    @property
    def closed(self) -> bool:
        return self._closed

    def send(self, msg: dict[str, Any]) -> None:
        """Send one message on its ``msg["channel"]``."""
        if self._closed:
            raise ChannelClosed(f"kernel WebSocket {self.where} is closed")
        payload = encode_frame(msg, self.subprotocol)
        opcode = websocket.ABNF.OPCODE_BINARY if isinstance(payload, bytes) else websocket.ABNF.OPCODE_TEXT
        try:
            self._ws.sock.settimeout(self._read_timeout)
            self._ws.send(payload, opcode)
        except (OSError, websocket.WebSocketException) as e:
            self._drop()
            raise ChannelClosed(f"kernel WebSocket {self.where} dropped while sending: {type(e).__name__}") from None

    def recv(self, timeout: float) -> dict[str, Any] | None:
        """The next message, or None when nothing arrives within ``timeout`` seconds.

        Raises :class:`ChannelClosed` when the server closes the socket or it drops.
        """
        if self._closed:
            raise ChannelClosed(f"kernel WebSocket {self.where} is closed")
        end = time.monotonic() + max(0.0, timeout)
        while True:
            if not self._readable(max(0.0, end - time.monotonic())):
                return None
            try:
                # Once a frame has started, read it whole: a timeout mid-frame would leave
                # websocket-client's frame state half-consumed.
                self._ws.sock.settimeout(self._read_timeout)
                opcode, frame = self._ws.recv_data_frame(True)
            except (OSError, websocket.WebSocketException) as e:
                self._drop()
                raise ChannelClosed(f"kernel WebSocket {self.where} dropped: {type(e).__name__}") from None
            self._quickack()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                self._drop()
                raise ChannelClosed(f"kernel WebSocket {self.where} was closed by the server")
            if opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                data = frame.data
                if opcode == websocket.ABNF.OPCODE_TEXT and isinstance(data, bytes):
                    data = data.decode("utf-8")
                return decode_frame(data, self.subprotocol)
            # ping/pong: websocket-client answered the ping; keep waiting.

    def close(self) -> None:
        """Close the socket. jupyter_server then buffers the kernel's messages for our session_id."""
        if self._closed:
            return
        self._closed = True
        try:
            self._ws.close(timeout=1.0)
        except Exception:  # noqa: BLE001 - closing a broken socket must not raise
            _close_quietly(self._ws)

    def __enter__(self) -> KernelChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --

    def _readable(self, timeout: float) -> bool:
        sock = self._ws.sock
        if sock is None:
            self._drop()
            raise ChannelClosed(f"kernel WebSocket {self.where} is closed")
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True  # decrypted bytes already waiting inside the TLS layer
        try:
            ready, _, _ = select.select([sock], [], [], timeout)
        except (OSError, ValueError):
            self._drop()
            raise ChannelClosed(f"kernel WebSocket {self.where} dropped") from None
        return bool(ready)

    def _quickack(self) -> None:
        if _TCP_QUICKACK is None or self._ws.sock is None:
            return
        try:
            self._ws.sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
        except OSError:
            pass  # not a TCP socket (e.g. a test double) or not supported

    def _drop(self) -> None:
        self._closed = True
        _close_quietly(self._ws)


def _close_quietly(ws: websocket.WebSocket) -> None:
    try:
        ws.shutdown()
    except Exception:  # noqa: BLE001
        pass
