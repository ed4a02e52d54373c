"""Every WebSocket the library opens: kernels (``/api/kernels/{id}/channels``) and
terminals (``/terminals/websocket/{name}``), over websocket-client.

One place decides how a socket is opened, read and closed; the kernel and terminal
channels below add only their message encoding (:mod:`~studiorunner.jupyter.kernel_protocol`,
:mod:`~studiorunner.jupyter.terminal_protocol`):

* **Handshake errors are mapped once.** 401/403 is :class:`LoginFailed`, any other HTTP
  status :class:`JupyterHTTPError` (method, path, status), a connection that could not be
  made :class:`ChannelClosed`. Messages name the path only: never the query string
  (``session_id``), cookies, tokens or XSRF headers, and never websocket-client's own
  text, which may quote the URL or ``Set-Cookie``.
* **A failed handshake is retried here and nowhere else**: 502/503/504 (a proxy or app
  restarting — REST calls ride these out in :mod:`~studiorunner.jupyter.http`) with a
  short backoff inside a time budget, and a 401 once (a login cookie the proxy has not
  accepted yet). A second 401, or a 403, is a login that does not work.
* **The same socket for everyone** (measured in bench/, see bench/README.md): jupyter_server does
  not set TCP_NODELAY, so small frames stall ~40 ms behind our delayed ACK; re-arming
  TCP_QUICKACK after every receive removes the stall. websocket-client's pure-Python
  UTF-8 check caps text frames at ~5 MB/s, hence ``skip_utf8_validation`` (JSON parsing
  rejects bad UTF-8 anyway). A receive waits with ``select`` and then reads a *whole*
  frame: a timeout in the middle of a frame would leave websocket-client's framing
  half-consumed.
* **Timeouts are recognised one way**: :func:`is_timeout`.
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import websocket

from studiorunner.errors import JupyterHTTPError, LoginFailed
from studiorunner.jupyter import terminal_protocol
from studiorunner.jupyter.kernel_protocol import V1_SUBPROTOCOL, decode_frame, encode_frame
from studiorunner.redact import safe_url

logger = logging.getLogger(__name__)

_TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only

RETRY_STATUSES = frozenset({502, 503, 504})
HANDSHAKE_RETRY_SECONDS = 10.0  # a proxy restarting; longer outages are the state machine's to wait out
_BACKOFF_FIRST, _BACKOFF_CAP = 0.25, 4.0


class ChannelClosed(Exception):
    """The WebSocket closed or dropped (or could not be opened at all)."""


def is_timeout(exc: BaseException) -> bool:
    """True for the exceptions that mean "nothing arrived in time" (socket or websocket-client)."""
    return isinstance(exc, (TimeoutError, websocket.WebSocketTimeoutException))


class WebSocketConnection:
    """One open WebSocket, read and written in whole frames. Single-threaded."""

    def __init__(self, ws: websocket.WebSocket, *, where: str, what: str, frame_timeout: float,
                 quickack: bool = True) -> None:
        self._ws = ws
        self.where = where  # safe_url of the socket: no query string
        self.what = what  # "kernel WebSocket", "terminal WebSocket": for messages
        self._frame_timeout = frame_timeout
        self._quickack_on = quickack and _TCP_QUICKACK is not None
        self._closed = False
        chosen = ws.getsubprotocol()
        self.subprotocol: str | None = chosen if isinstance(chosen, str) else None

    @classmethod
    def open(cls, url: str, *, headers: dict[str, str], timeout: float = 30.0, what: str = "WebSocket",
             subprotocols: list[str] | None = None, retry_seconds: float = HANDSHAKE_RETRY_SECONDS,
             quickack: bool = True, sleep: Callable[[float], None] = time.sleep) -> WebSocketConnection:
        """Connect to ``url`` (``ws(s)://…``), retrying a transient handshake failure.

        ``timeout`` bounds each handshake and the reading of one frame; ``retry_seconds``
        bounds the retries (backoff 0.25 s doubling to 4 s, or the server's Retry-After).
        Raises :class:`LoginFailed` on 401 (twice)/403, :class:`JupyterHTTPError` on another
        HTTP status, :class:`ChannelClosed` when no connection could be made.
        """
        where = safe_url(url)
        give_up_at = time.monotonic() + max(0.0, retry_seconds)
        attempt = 0
        unauthorized = 0
        while True:
            attempt += 1
            try:
                return cls._connect(url, headers=headers, timeout=timeout, where=where, what=what,
                                    subprotocols=subprotocols, quickack=quickack)
            except _HandshakeRefused as refused:
                status = refused.status
                unauthorized += status == 401
                retryable = status in RETRY_STATUSES or (status == 401 and unauthorized == 1)
                pause = refused.retry_after if refused.retry_after is not None else \
                    min(_BACKOFF_CAP, _BACKOFF_FIRST * 2 ** (attempt - 1))
                pause = min(pause, _BACKOFF_CAP)
                if not retryable or time.monotonic() + pause > give_up_at:
                    raise _handshake_error(what, where, status, attempt) from None
                logger.info("%s handshake to %s answered HTTP %s; retrying in %.2f s (attempt %d)",
                            what, where, status, pause, attempt)
                # A short, bounded pause inside one invocation: the state machine's Waits
                # are for minutes, a proxy restarting takes seconds.
                sleep(pause)

    @classmethod
    def _connect(cls, url: str, *, headers: dict[str, str], timeout: float, where: str, what: str,
                 subprotocols: list[str] | None, quickack: bool) -> WebSocketConnection:
        ws = websocket.WebSocket(skip_utf8_validation=True,
                                 sockopt=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        header = dict(headers)
        try:
            ws.connect(url, header=header, subprotocols=subprotocols, timeout=timeout,
                       suppress_origin=any(k.lower() == "origin" for k in header))
        except websocket.WebSocketBadStatusException as e:
            _shutdown_quietly(ws)
            raise _HandshakeRefused(e.status_code, _retry_after(e)) from None
        except (OSError, websocket.WebSocketException) as e:
            _shutdown_quietly(ws)
            how = "timed out" if is_timeout(e) else type(e).__name__
            # The exception's text may quote the URL, so only its kind is passed on.
            raise ChannelClosed(f"could not open {what} {where}: {how}") from None
        connection = cls(ws, where=where, what=what, frame_timeout=timeout, quickack=quickack)
        connection._quickack()
        logger.debug("%s open: %s (subprotocol %s)", what, where, connection.subprotocol or "none")
        return connection

    @property
    def closed(self) -> bool:
        return self._closed

    def send(self, payload: str | bytes) -> None:
        """Send one frame (binary for bytes, text for str)."""
        if self._closed:
            raise ChannelClosed(f"{self.what} {self.where} is closed")
        opcode = websocket.ABNF.OPCODE_BINARY if isinstance(payload, bytes) else websocket.ABNF.OPCODE_TEXT
        try:
            self._ws.sock.settimeout(self._frame_timeout)  # type: ignore[union-attr]  # closed: None, caught below
            self._ws.send(payload, opcode)
        except (OSError, websocket.WebSocketException, AttributeError) as e:
            self._drop()
            raise ChannelClosed(f"{self.what} {self.where} dropped while sending: {type(e).__name__}") from None

    def recv(self, timeout: float | None) -> str | bytes | None:
        """The next data frame (text as str), or None when nothing arrives within ``timeout``
        seconds (None: wait for ever). Raises :class:`ChannelClosed` when the server closes
        the socket or it drops."""
        if self._closed:
            raise ChannelClosed(f"{self.what} {self.where} is closed")
        end = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            if not self._readable(None if end is None else max(0.0, end - time.monotonic())):
                return None
            try:
                # Once a frame has started, read it whole (see the module doc).
                self._ws.sock.settimeout(self._frame_timeout)  # type: ignore[union-attr]  # closed: None, caught
                opcode, frame = self._ws.recv_data_frame(True)
            except (OSError, websocket.WebSocketException) as e:
                self._drop()
                how = "a frame stalled" if is_timeout(e) else type(e).__name__
                raise ChannelClosed(f"{self.what} {self.where} dropped: {how}") from None
            self._quickack()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                self._drop()
                raise ChannelClosed(f"{self.what} {self.where} was closed by the server")
            if opcode == websocket.ABNF.OPCODE_TEXT:
                data = frame.data
                return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
            if opcode == websocket.ABNF.OPCODE_BINARY:
                return frame.data
            # ping/pong: websocket-client answered the ping; keep waiting.

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._ws.close(timeout=1.0)
        except Exception:  # noqa: BLE001 - closing a broken socket must not raise
            _shutdown_quietly(self._ws)

    # -- internals --

    def _readable(self, timeout: float | None) -> bool:
        sock = self._ws.sock
        if sock is None:
            self._drop()
            raise ChannelClosed(f"{self.what} {self.where} is closed")
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True  # decrypted bytes already waiting inside the TLS layer
        try:
            ready, _, _ = select.select([sock], [], [], timeout)
        except (OSError, ValueError):
            self._drop()
            raise ChannelClosed(f"{self.what} {self.where} dropped") from None
        return bool(ready)

    def _quickack(self) -> None:
        if not self._quickack_on or self._ws.sock is None or _TCP_QUICKACK is None:
            return
        try:
            self._ws.sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
        except OSError:
            pass  # not a TCP socket (e.g. a test double) or not supported

    def _drop(self) -> None:
        self._closed = True
        _shutdown_quietly(self._ws)


class KernelChannel:
    """A kernel's WebSocket: Jupyter messages as dicts, in v1 binary frames when the server
    offers that subprotocol, else legacy JSON."""

    def __init__(self, connection: WebSocketConnection) -> None:
        self._connection = connection
        self.subprotocol = V1_SUBPROTOCOL if connection.subprotocol == V1_SUBPROTOCOL else None
        self.where = connection.where

    @classmethod
    def open(cls, url: str, *, headers: dict[str, str], timeout: float = 30.0,
             retry_seconds: float = HANDSHAKE_RETRY_SECONDS, quickack: bool = True) -> KernelChannel:
        """Connect to ``ws(s)://…/api/kernels/{id}/channels?session_id=…``.

        Raises :class:`LoginFailed` on 401/403, :class:`JupyterHTTPError` on another HTTP
        status (404: no such kernel), :class:`ChannelClosed` when the connection fails.
        ``quickack=False`` is for the benchmark that shows what the re-arm is worth.
        """
        return cls(WebSocketConnection.open(url, headers=headers, timeout=timeout, what="kernel WebSocket",
                                            subprotocols=[V1_SUBPROTOCOL], retry_seconds=retry_seconds,
                                            quickack=quickack))

    @property
    def closed(self) -> bool:
        return self._connection.closed

    def send(self, msg: dict[str, Any]) -> None:
        """Send one message on its ``msg["channel"]``."""
        self._connection.send(encode_frame(msg, self.subprotocol))

    def recv(self, timeout: float) -> dict[str, Any] | None:
        """The next message, or None when nothing arrives within ``timeout`` seconds."""
        frame = self._connection.recv(timeout)
        return None if frame is None else decode_frame(frame, self.subprotocol)

    def close(self) -> None:
        """Close the socket. jupyter_server then buffers the kernel's messages for our session_id."""
        self._connection.close()

    def __enter__(self) -> KernelChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TerminalChannel:
    """A terminal's WebSocket: terminado's JSON arrays (``["stdin", text]``, ``["stdout", text]``)."""

    def __init__(self, connection: WebSocketConnection) -> None:
        self._connection = connection
        self.where = connection.where

    @classmethod
    def open(cls, url: str, *, headers: dict[str, str], timeout: float = 30.0,
             retry_seconds: float = HANDSHAKE_RETRY_SECONDS) -> TerminalChannel:
        """Connect to ``ws(s)://…/terminals/websocket/{name}``; errors as :meth:`KernelChannel.open`."""
        return cls(WebSocketConnection.open(url, headers=headers, timeout=timeout, what="terminal WebSocket",
                                            retry_seconds=retry_seconds))

    def send(self, message: list[Any]) -> None:
        self._connection.send(terminal_protocol.encode_message(message))

    def recv(self, timeout: float | None) -> list[Any] | None:
        """The next terminado message, or None when nothing arrives within ``timeout``
        seconds. Frames that are not terminado's format are skipped."""
        end = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            frame = self._connection.recv(None if end is None else max(0.0, end - time.monotonic()))
            if frame is None:
                return None
            message = terminal_protocol.decode_message(frame)
            if message is not None:
                return message

    def close(self) -> None:
        self._connection.close()


class _HandshakeRefused(Exception):
    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(status)
        self.status = status
        self.retry_after = retry_after


def _retry_after(exc: websocket.WebSocketBadStatusException) -> float | None:
    headers = getattr(exc, "resp_headers", None) or {}
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: use our own backoff


def _handshake_error(what: str, where: str, status: int, attempts: int) -> Exception:
    tried = f" ({attempts} attempts)" if attempts > 1 else ""
    if status in (401, 403):
        return LoginFailed(
            f"{what} handshake to {where} was refused: HTTP {status}{tried}"
            " (login expired, wrong XSRF token or Origin?)",
            method="GET", path=where, status=status)
    return JupyterHTTPError(
        f"{what} handshake to {where} failed: HTTP {status}{tried}" + (" (not found)" if status == 404 else ""),
        method="GET", path=where, status=status)


def _shutdown_quietly(ws: websocket.WebSocket) -> None:
    try:
        ws.shutdown()
    except Exception:  # noqa: BLE001
        pass
