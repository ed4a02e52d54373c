"""RunCommands: the payload's shell commands in a Jupyter terminal."""

from __future__ import annotations

import json

from studiorunner.errors import StudioRunnerError
from studiorunner.jupyter.connection import TerminalChannel
from studiorunner.run.context import StepContext
from studiorunner.run.state import CommandsReport, present
from studiorunner.store import open_text_upload
from studiorunner.terminal.commands import CommandResult, summary
from studiorunner.terminal.commands import run_commands as run_in_terminal
from studiorunner.terminal.session import TerminalSession


def run_commands(ctx: StepContext, *, remaining_seconds: float) -> CommandsReport:
    """Run the payload's shell commands in a Jupyter terminal; save their log beside the notebook.

    The terminal lives only inside this invocation (deleted in ``finally``), so a failing
    command never leaves one behind; commands must each finish within one invocation.
    """

    spec = ctx.spec
    http = ctx.target().login()
    budget = ctx.budget(remaining_seconds)
    timeout = min(spec.timeouts.command_seconds or budget, budget)
    log_uri = present(ctx.run.commands_log_uri, "run.commands_log_uri")
    summary_uri = log_uri.rsplit("/", 1)[0] + "/commands.json"
    # commands.log streams to S3 as the commands print (issue 21.3: never the whole log in memory)
    store = ctx.services.notebooks()
    log_text, results = open_text_upload(store, log_uri, content_type="text/plain; charset=utf-8"), list[CommandResult]()

    def open_channel(path: str) -> TerminalChannel:
        ws = http.websocket(path)
        return TerminalChannel.open(ws.url, headers=ws.headers)

    session = TerminalSession(rest=http, open_channel=open_channel)
    try:
        session.create()
        run_in_terminal(session, spec.commands, timeout=timeout, allow_failure=spec.allow_command_errors,
                        log=log_text, results=results)
    except StudioRunnerError as exc:
        # Where the log is, as a fact: Cleanup's cause names it (from the run record).
        exc.facts.setdefault("command_log", log_uri)
        raise
    finally:
        try:
            session.close(delete=True)
        finally:
            log_text.close()
            store.write_bytes(summary_uri, json.dumps(summary(results), indent=1).encode(), content_type="application/json")
    return CommandsReport(results=summary(results), log_uri=log_uri)
