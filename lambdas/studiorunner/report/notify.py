"""Tell people a run ended: its record gathered, one message published to the runs topic.

Called once per ended execution (an EventBridge rule on the state machine's status changes
invokes the Notify Lambda). The record is read, not rebuilt from the event's text: the
execution (DescribeExecution), the last state its steps handed on (its history, as
ExecutionEnded reads it) and the executed notebook.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from studiorunner.report.message import Message, message, record_from
from studiorunner.run.aborted import history_events, state_from_history
from studiorunner.store import NotebookStore

log = logging.getLogger(__name__)

TOPIC_ENV = "STUDIO_RUNNER_TOPIC_ARN"


def _json(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return None


def console_url(execution_arn: str) -> str:
    region = execution_arn.split(":")[3]
    return (f"https://{region}.console.aws.amazon.com/states/home?region={region}"
            f"#/v2/executions/details/{execution_arn}")


def run_message(execution_arn: str, *, stepfunctions: Any, store: NotebookStore,
                default_target: str | None = None) -> Message:
    """The message for the ended execution ``execution_arn``, from its record (a payload that
    names no target ran on ``default_target``)."""
    described = stepfunctions.describe_execution(executionArn=execution_arn)
    execution = {**described, "input": _json(described.get("input")), "output": _json(described.get("output"))}
    try:
        state = state_from_history(history_events(stepfunctions, execution_arn))
    except Exception as exc:  # noqa: BLE001 — the execution's own description still makes a message
        log.warning("could not read the execution's history: %s", type(exc).__name__)
        state = {}
    output = execution["output"] if isinstance(execution["output"], dict) else {}
    raw_outcome = state.get("outcome")
    outcome: dict[str, Any] = raw_outcome if isinstance(raw_outcome, dict) else {}
    raw_run = state.get("run")
    run: dict[str, Any] = raw_run if isinstance(raw_run, dict) else {}
    uri = output.get("output_notebook") or (outcome.get("result") or {}).get("output_notebook") or run.get("output_uri")
    notebook = None
    if uri:
        try:
            notebook = store.read(uri)
        except Exception as exc:  # noqa: BLE001 — a run that never wrote one is still reported
            log.info("no executed notebook to read (%s)", type(exc).__name__)
    record = record_from(execution=execution, state=state, notebook=notebook, console_url=console_url(execution_arn))
    record.target = record.target or default_target
    return message(record)


def publish(sns: Any, topic_arn: str, msg: Message) -> str:
    """Publish ``msg`` with its attributes; the SNS message id."""
    answer = sns.publish(
        TopicArn=topic_arn, Subject=msg.subject, Message=msg.body,
        MessageAttributes={key: {"DataType": "String", "StringValue": value} for key, value in msg.attributes.items()})
    return answer["MessageId"]
