"""Knobs for what cannot be a default of the stand-in: a proxy in front of it that behaves
as Studio's proxy might (REAL-STUDIO K3).

:class:`StandInProxy` is a TCP proxy on 127.0.0.1 in front of the stand-in's server, with
two knobs:

* ``strip_ws_query``: the query string of every WebSocket upgrade request is dropped, so
  jupyter_server never sees the kernel WebSocket's ``session_id`` and replays nothing
  on a reconnect (whether Studio's proxy passes it on is not known);
* ``drop_ws_every``: every WebSocket is cut (both TCP directions shut) that many seconds
  after it opened, as an idle-timeout or a restarting proxy would.

Plain HTTP requests go through one per connection (the proxy adds ``Connection: close``:
the server closes after its answer), so the proxy never has to parse a body. :func:`proxied` gives a view of a :class:`StandIn`
whose addresses are the proxy's, to hand to :class:`~localstudio.local_stack.LocalStack`::

    with StandIn(root) as standin, proxied(standin, strip_ws_query=True, drop_ws_every=3) as view, \\
            LocalStack(view) as stack:
        ...
"""

from __future__ import annotations

import contextlib
import logging
import re
import select
import socket
import threading
from collections.abc import Iterator
from typing import Any

logger = logging.getLogger(__name__)

_HEAD_LIMIT = 64 * 1024
_UPGRADE = re.compile(rb"^upgrade:\s*websocket\s*$", re.IGNORECASE | re.MULTILINE)
_CONNECTION = re.compile(rb"^(connection|keep-alive):[^\r\n]*\r\n", re.IGNORECASE | re.MULTILINE)


def _read_head(sock: socket.socket) -> tuple[bytes, bytes] | None:
    """(head up to and including the blank line, what followed it), or None if the peer went away."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk or len(data) > _HEAD_LIMIT:
            return None
        data += chunk
    end = data.index(b"\r\n\r\n") + 4
    return data[:end], data[end:]


def _connection_close(head: bytes) -> bytes:
    head = _CONNECTION.sub(b"", head)
    return head[:-2] + b"Connection: close\r\n\r\n"


def _strip_query(head: bytes) -> bytes:
    line, rest = head.split(b"\r\n", 1)
    method, target, version = line.split(b" ", 2)
    return b" ".join((method, target.split(b"?", 1)[0], version)) + b"\r\n" + rest


class StandInProxy:
    """A TCP proxy ``127.0.0.1:port`` → ``upstream``; see the module docstring for its knobs."""

    def __init__(self, upstream_port: int, *, upstream_host: str = "127.0.0.1", strip_ws_query: bool = False,
                 drop_ws_every: float | None = None) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.strip_ws_query = strip_ws_query
        self.drop_ws_every = drop_ws_every
        self.websockets_opened = 0
        self.websockets_dropped = 0
        self.queries_stripped = 0
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self.port = 0

    def __enter__(self) -> StandInProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> StandInProxy:
        # One port on each of the stand-in's hosts (API, sign-in, app: REAL-STUDIO L1/L2), so the
        # URLs the stand-in hands out keep their host; each connection goes on to its own host.
        from localstudio.standin.world import HOSTS

        listener = self._listen("127.0.0.1", 0)
        self._listener, self.port = listener, listener.getsockname()[1]
        self._listeners = [listener] + [self._listen(host, self.port) for host in sorted(set(HOSTS.values()))
                                        if host != "127.0.0.1"]
        for sock in self._listeners:
            threading.Thread(target=self._accept, args=(sock,), name="standin-proxy", daemon=True).start()
        return self

    @staticmethod
    def _listen(host: str, port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(64)
        return listener

    def stop(self) -> None:
        self._stopping.set()
        for listener in getattr(self, "_listeners", [self._listener]):
            if listener is not None:
                with contextlib.suppress(OSError):
                    listener.close()
        with self._lock:
            for sock in list(self._open):
                _shut(sock)

    # -- connections --

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            got = _read_head(client)
            if got is None:
                return
            head, rest = got
            websocket = bool(_UPGRADE.search(head))
            if websocket and self.strip_ws_query and b"?" in head.split(b"\r\n", 1)[0]:
                head = _strip_query(head)
                self.queries_stripped += 1
            if not websocket:
                head = _connection_close(head)
            # to the stand-in's own host the client reached (the proxy listens on each of them)
            upstream = socket.create_connection((client.getsockname()[0], self.upstream[1]), timeout=30)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._open.update((client, upstream))
            upstream.sendall(head + rest)
            if websocket:
                self.websockets_opened += 1
                if self.drop_ws_every:
                    timer = threading.Timer(self.drop_ws_every, self._drop, args=(client, upstream))
                    timer.daemon = True
                    timer.start()
            self._pipe(client, upstream, answer_head=not websocket)
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    _shut(sock)
                    with self._lock:
                        self._open.discard(sock)

    def _drop(self, client: socket.socket, upstream: socket.socket) -> None:
        with self._lock:
            if client not in self._open:
                return
        self.websockets_dropped += 1
        logger.info("stand-in proxy: dropping a WebSocket after %.1f s", self.drop_ws_every or 0)
        _shut(client)
        _shut(upstream)

    def _pipe(self, client: socket.socket, upstream: socket.socket, *, answer_head: bool) -> None:
        """Copy bytes both ways until one side closes; with ``answer_head``, the answer's head
        gets ``Connection: close`` (so the client never sends a second request on it)."""
        peers = {client: upstream, upstream: client}
        head: bytes | None = b"" if answer_head else None
        while not self._stopping.is_set():
            try:
                ready, _, _ = select.select(list(peers), [], [], 1.0)
            except (OSError, ValueError):
                return
            for sock in ready:
                try:
                    data = sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                if sock is upstream and head is not None:
                    head += data
                    if b"\r\n\r\n" not in head:
                        continue
                    end = head.index(b"\r\n\r\n") + 4
                    data, head = _connection_close(head[:end]) + head[end:], None
                try:
                    peers[sock].sendall(data)
                except OSError:
                    return


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class ProxiedStandIn:
    """A :class:`StandIn` seen through a :class:`StandInProxy`: its addresses are the proxy's;
    everything else (faults, state, token, identity) is the stand-in's own."""

    def __init__(self, standin: Any, proxy: StandInProxy) -> None:
        self._standin, self.proxy = standin, proxy

    def __getattr__(self, name: str) -> Any:
        return getattr(self._standin, name)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port}"

    @property
    def jupyter_url(self) -> str:
        return self.base_url + self._standin.jupyter_url[len(self._standin.base_url):]

    @property
    def sagemaker_endpoint(self) -> str:
        return self.base_url + self._standin.sagemaker_endpoint[len(self._standin.base_url):]


@contextlib.contextmanager
def proxied(standin: Any, *, strip_ws_query: bool = False, drop_ws_every: float | None = None) -> Iterator[ProxiedStandIn]:
    """A proxy in front of a started ``standin``, and the view of it to use instead."""
    with StandInProxy(standin.port, strip_ws_query=strip_ws_query, drop_ws_every=drop_ws_every) as proxy:
        yield ProxiedStandIn(standin, proxy)
