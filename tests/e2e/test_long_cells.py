"""Issue 8 point 7, end to end: a long cell loses nothing even where nothing is replayed.

Whether Studio's proxy passes the kernel WebSocket's ``session_id`` query parameter is not
known (REAL-STUDIO K3); without it jupyter_server replays nothing on a reconnect. Here a
proxy in front of the stand-in strips the query string of every WebSocket and cuts every
WebSocket after a few seconds, while a cell prints for longer than several RunCells
invocations: what the cell printed while no runner listened must come back from the run's
journal — complete, in order, nothing twice — and the journal must be gone afterwards.
"""

from __future__ import annotations

from pathlib import Path

from e2e_support import Env, assert_nothing_running, stream_text, write_notebook

from localstudio.local_stack import LocalStack
from localstudio.standin import StandIn
from localstudio.standin.proxy import proxied

LINES, EVERY = 60, 0.15  # a 9 s cell


def test_long_cell_behind_a_proxy_that_strips_session_id_and_drops_sockets(tmp_path: Path) -> None:
    root = tmp_path / "home"
    root.mkdir()
    with StandIn(root=root, flavor="studio-space") as standin, \
            proxied(standin, strip_ws_query=True, drop_ws_every=2.5) as view, \
            LocalStack(view, run_cells_budget=3, wait_scale=0.05) as stack:
        env = Env(view, stack, root)  # type: ignore[arg-type]
        path = write_notebook(
            root, "long/proxied.ipynb",
            f"import time\nfor i in range({LINES}):\n    print(i, flush=True)\n    time.sleep({EVERY})",
            "print('next cell')",
        )
        execution = env.run({"notebook": path})

        assert execution.succeeded, (execution.error, execution.cause)
        assert execution.invocations.count("studio-runner-run-cells") >= 3, execution.invocations
        proxy = view.proxy
        assert proxy.queries_stripped >= 3 and proxy.websockets_dropped >= 1, vars(proxy)
        long_cell, next_cell = [c for c in env.output(execution).cells if c.cell_type == "code"]
        assert stream_text(long_cell) == "".join(f"{i}\n" for i in range(LINES))  # complete, in order, once
        assert stream_text(long_cell, "stderr") == ""  # and nothing had to be marked as lost
        assert "output_lost" not in long_cell.metadata.get("studio_runner", {})
        assert stream_text(next_cell) == "next cell\n"
        assert "removed the run's journal" in execution.output["cleanup"]["actions"]
        assert not (root / "studio-runner" / "runs" / execution.output["run_id"]).exists()
        assert_nothing_running(env)
