"""Shell commands in a Jupyter terminal, through the state machine (issue 5)."""

from __future__ import annotations

import json

from e2e_support import write_notebook


def _log(env, execution) -> str:
    run_id = execution.arn.rsplit(":", 1)[-1]
    return env.stack.s3.get_object(Bucket="studio-runner-local", Key=f"runs/{run_id}/commands.log")["Body"].read().decode()


def test_commands_then_notebook(local_env):
    env = local_env("studio-space")
    path = write_notebook(env.root, "n.ipynb", "print(open('made-by-command.txt').read().strip())")
    execution = env.run({"commands": ["echo hello > made-by-command.txt", "cat made-by-command.txt"], "notebook": path})

    assert execution.succeeded, (execution.error, execution.cause)
    commands = execution.output["commands"]
    assert [c["exit_status"] for c in commands] == [0, 0]
    assert env.output(execution).cells[0].outputs[0].text == "hello\n"
    assert "hello" in _log(env, execution)
    assert env.running()["terminals"] == [] and env.running()["kernels"] == []


def test_commands_alone_with_colours_and_unicode(local_env):
    env = local_env("studio-space")
    execution = env.run({"commands": ["printf '\\033[31mrouge\\033[0m ünïcødé ✓\\n'", "pwd"]})
    assert execution.succeeded, (execution.error, execution.cause)
    assert execution.output["output_notebook"] is None
    log = _log(env, execution)
    assert "rouge ünïcødé ✓" in log and "\x1b[" not in log
    summary = json.loads(env.stack.s3.get_object(
        Bucket="studio-runner-local", Key=f"runs/{execution.arn.rsplit(':', 1)[-1]}/commands.json")["Body"].read())
    assert [c["exit_status"] for c in summary] == [0, 0]
    assert "studio-runner-start-kernel" not in execution.invocations


def test_failing_command_is_command_failed_and_terminal_gone(local_env):
    env = local_env("studio-space")
    path = write_notebook(env.root, "n.ipynb", "print('should not run')")
    execution = env.run({"commands": ["echo about to fail", "exit_three() { return 3; }; exit_three", "echo never"],
                         "notebook": path})
    assert execution.status == "FAILED"
    assert execution.error == "CommandFailed"
    assert "3" in execution.cause and "exit_three" in execution.cause
    assert "studio-runner-start-kernel" not in execution.invocations
    assert env.running()["terminals"] == []
    assert "echo never" not in _log(env, execution).split("exit_three", 1)[1]


def test_hanging_command_is_command_timeout(local_env):
    env = local_env("studio-space")
    execution = env.run({"commands": ["sleep 600"], "timeouts": {"command_seconds": 2}})
    assert execution.status == "FAILED"
    assert execution.error == "CommandTimeout"
    assert env.running()["terminals"] == []


def test_allowed_command_failure_carries_on(local_env):
    env = local_env("studio-space")
    execution = env.run({"commands": ["false", "echo after"], "allow_command_errors": True})
    assert execution.succeeded, (execution.error, execution.cause)
    assert [c["exit_status"] for c in execution.output["commands"]] == [1, 0]


def test_exec_past_command_seconds_is_command_timeout(local_env):
    # Issue 9: `exec sleep` replaces the shell, so the Ctrl-C at the deadline ends the
    # terminal too; that ended as CommandFailed ("the shell exited").
    env = local_env("studio-space")
    execution = env.run({"commands": ["exec sleep 100000"], "timeouts": {"command_seconds": 2}})
    assert execution.status == "FAILED"
    assert execution.error == "CommandTimeout", (execution.error, execution.cause)
    assert env.running()["terminals"] == []


def test_failed_command_cause_names_it_without_output_secrets_or_escapes(local_env):
    # Issue 9: the cause carried the last 20 output lines (into the Step Functions history
    # and the failure e-mail), missed user:token@host and KEY=value secrets, and passed
    # raw ESC bytes on.
    env = local_env("studio-space")
    command = ("export API_TOKEN=tok123; printf '\x1b]0;title\x07'; echo printed $((6 * 7)); "
               "echo https://bob:ghp_secret42@git.example/x.git; exit_four() { return 4; }; exit_four")
    execution = env.run({"commands": [command]})
    assert execution.error == "CommandFailed"
    cause = execution.cause
    assert "exit status 4" in cause and "exit_four" in cause and "commands.log" in cause
    assert "printed 42" not in cause
    assert "tok123" not in cause and "ghp_secret42" not in cause and "\x1b" not in cause and "\x07" not in cause
    log = _log(env, execution)
    assert "printed 42" in log  # the output stays in the private bucket's log, redacted
    assert "tok123" not in log and "ghp_secret42" not in log and "\x1b" not in log


def test_transient_websocket_handshake_failures_are_ridden_out(local_env):
    # Issue 9: one 503 (or 401) on the kernel WebSocket handshake in StartKernel failed the
    # run (REST calls were retried, the handshake was not). Terminal and kernel sockets
    # now open through one connection module that retries them.
    env = local_env("studio-space", faults={"http_errors": [
        {"path_regex": r"/api/kernels/[^/]+/channels$", "status": 503, "count": 2},
        {"path_regex": r"/api/kernels/[^/]+/channels$", "status": 401, "count": 1},
        {"path_regex": r"/terminals/websocket/", "status": 502, "count": 1},
    ]})
    path = write_notebook(env.root, "n.ipynb", "print('ran')")
    execution = env.run({"commands": ["echo ok"], "notebook": path})
    assert execution.succeeded, (execution.error, execution.cause)
    assert env.output(execution).cells[0].outputs[0].text == "ran\n"
    assert all(rule["count"] == 0 for rule in env.standin.set_faults()["http_errors"])
