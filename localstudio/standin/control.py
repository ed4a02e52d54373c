"""What tests steer: the control endpoints (state, fault knobs, killing a kernel, idle
shutdown) and the kernel WebSocket that the server drops on the ``drop_websockets_after_seconds`` knob
(and that loses a rate-limited cell's idle on ``iopub_idle_lost_when_rate_limited``)."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

from jupyter_server.services.kernels.websocket import KernelWebsocketHandler
from tornado import web
from tornado.ioloop import IOLoop

from .shared import StandInState

# ---- kernel WebSockets that can be dropped ----------------------------------------------


class DroppableKernelWebsocketHandler(KernelWebsocketHandler):
    """The kernel WebSocket, closed by the server after drop_websockets_after_seconds."""

    def initialize(self, state: StandInState) -> None:
        self.state = state
        self._drop_handle: object | None = None

    async def open(self, kernel_id: str) -> None:  # type: ignore[override]
        after = self.state.faults.drop_websockets_after_seconds
        if after is not None:
            self._drop_handle = IOLoop.current().call_later(after, self._drop)
        self._lose_idle_when_rate_limited(kernel_id)
        await super().open(kernel_id)

    def _lose_idle_when_rate_limited(self, kernel_id: str) -> None:
        """The ``iopub_idle_lost_when_rate_limited`` knob (see Faults): a cell whose output the
        rate limiter dropped loses its idle. Wraps what the connection subscribes to its
        streams, before it subscribes."""
        connection, state = self.connection, self.state
        forward, limit_rate = connection.handle_outgoing_message, connection._limit_rate
        dropped = {"since_idle": False}

        def noting_limit_rate(channel: Any, msg: Any, msg_list: Any) -> bool:
            limited = bool(limit_rate(channel, msg, msg_list))
            dropped["since_idle"] = dropped["since_idle"] or limited
            return limited

        def handle(stream: Any, msg_list: list[Any]) -> None:
            channel = stream if isinstance(stream, str) else getattr(stream, "channel", None)
            if state.faults.iopub_idle_lost_when_rate_limited and channel == "iopub":
                _, parts = connection.session.feed_identities(msg_list)
                header = connection.session.unpack(parts[1])
                if header.get("msg_type") == "status":
                    content = connection.session.unpack(parts[4])
                    execution_state = content.get("execution_state")
                    if execution_state == "idle" and dropped["since_idle"]:
                        dropped["since_idle"] = False
                        # reset the limiter as the idle would have, then lose the idle
                        limit_rate("iopub", {"header": header, "content": content, "parent_header": None}, parts[1:])
                        state.idle_lost.add(kernel_id)
                        self.log.info("stand-in fault: lost a rate-limited cell's status idle")
                        return
                    if execution_state == "idle":
                        dropped["since_idle"] = False
                    if execution_state == "busy" and \
                            connection.session.unpack(parts[2]).get("msg_type") == "execute_request":
                        state.idle_lost.discard(kernel_id)  # (a nudge's kernel_info is not tracked)
            forward(stream, msg_list)

        connection._limit_rate = noting_limit_rate
        connection.handle_outgoing_message = handle

    def _drop(self) -> None:
        self._drop_handle = None
        if self.ws_connection is not None:
            self.log.info("stand-in fault: dropping kernel WebSocket %s", self.kernel_id)
            self.close(1001, "stand-in fault: drop_websockets_after_seconds")

    def on_close(self) -> None:
        if self._drop_handle is not None:
            IOLoop.current().remove_timeout(self._drop_handle)
            self._drop_handle = None
        super().on_close()


# ---- control endpoints ------------------------------------------------------------------


class _ControlHandler(web.RequestHandler):
    """Plain handlers for tests; the stand-in only listens on 127.0.0.1."""

    def initialize(self, state: StandInState) -> None:
        self.state = state

    def check_xsrf_cookie(self) -> None:
        """Control calls come from test code, not from a browser page."""

    def reply(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload, default=str))


class StateHandler(_ControlHandler):
    async def get(self) -> None:
        self.reply(await self.state.snapshot())


class FaultsHandler(_ControlHandler):
    def get(self) -> None:
        self.reply(self.state.faults.to_dict())

    def post(self) -> None:
        try:
            knobs = json.loads(self.request.body or b"{}")
            if not isinstance(knobs, dict):
                raise ValueError("body must be a JSON object of knobs")
            self.state.faults.update(knobs)
        except (ValueError, TypeError) as e:
            self.reply({"message": str(e)}, 400)
            return
        self.reply(self.state.faults.to_dict())


class IdleShutdownHandler(_ControlHandler):
    def post(self) -> None:
        self.reply({"stopped": self.state.world.idle_shutdown()})


class KillKernelHandler(_ControlHandler):
    def post(self, kernel_id: str) -> None:
        try:
            kernel = self.state.kernel_manager.get_kernel(kernel_id)
        except KeyError:
            self.reply({"message": f"no kernel {kernel_id}"}, 404)
            return
        process = getattr(getattr(kernel, "provisioner", None), "process", None)
        if process is None:
            self.reply({"message": f"kernel {kernel_id} has no local process"}, 409)
            return
        os.kill(process.pid, signal.SIGKILL)
        self.reply({"killed": kernel_id, "pid": process.pid})
