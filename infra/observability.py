"""What the fleet is doing: a CloudWatch dashboard and the alarms that tell the topic.

The run metrics come from the Lambdas (``lambdas/studiorunner/steps/_metrics.py``, Powertools EMF):
namespace ``StudioRunner``, dimensions ``service`` (the resource prefix) and ``target``.
Alarms: a failed run and a cleanup failure (something the run started may still be running,
and billing) per target, and anything kept in a dead-letter queue (an upload that started
nothing, a cleanup after an abort that failed, a notification not delivered).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

NAMESPACE = "StudioRunner"
# The contract with lambdas/studiorunner/steps/_metrics.py (a test checks both agree).
RUNS_STARTED = "RunsStarted"
RUNS_SUCCEEDED = "RunsSucceeded"
RUNS_FAILED = "RunsFailed"
RUN_DURATION = "RunDurationSeconds"
APP_WAIT = "AppWaitSeconds"
SLOT_WAIT = "SlotWaitSeconds"
CELLS_EXECUTED = "CellsExecuted"
CLEANUP_FAILURES = "CleanupFailures"
RUNS_SKIPPED = "RunsSkipped"
METRIC_NAMES = (RUNS_STARTED, RUNS_SUCCEEDED, RUNS_FAILED, RUN_DURATION, APP_WAIT, SLOT_WAIT, CELLS_EXECUTED,
                CLEANUP_FAILURES, RUNS_SKIPPED)
PERIOD = Duration.minutes(5)


class Observability(Construct):
    """The dashboard ``<prefix>-runs`` and the alarms ``<prefix>-…`` (actions: the topic)."""

    def __init__(self, scope: Construct, id_: str, *, resource_prefix: str, targets: Sequence[str],
                 state_machine: sfn.StateMachine, topic: sns.ITopic,
                 dead_letter_queues: Mapping[str, sqs.IQueue], alarm_topic: sns.ITopic | None = None) -> None:
        super().__init__(scope, id_)
        self.resource_prefix = resource_prefix
        notify = actions.SnsAction(topic)
        # A run's failure (or its cleanup's) already has its own message on ``topic``: the
        # per-target alarms go to the alarms topic, so no one gets a second e-mail for it.
        per_run = actions.SnsAction(alarm_topic) if alarm_topic is not None else notify
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for target in targets:
            for metric_name, what in ((RUNS_FAILED, "failed-runs"), (CLEANUP_FAILURES, "cleanup-failures")):
                alarm = cloudwatch.Alarm(
                    self, f"{target}-{what}", alarm_name=f"{resource_prefix}-{target}-{what}",
                    alarm_description=(
                        f"Studio Runner target {target}: a run failed" if metric_name == RUNS_FAILED else
                        f"Studio Runner target {target}: a run's cleanup failed; its app, instance or kernel "
                        "may still be running (and billing): see the run's cause and stop it by hand"),
                    metric=self.metric(metric_name, target, statistic="Sum", labelled=False),
                    threshold=1, evaluation_periods=1,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
                alarm.add_alarm_action(per_run)
                self.alarms[f"{target}-{what}"] = alarm
        for name, queue in dead_letter_queues.items():
            alarm = cloudwatch.Alarm(
                self, f"{name}-dead-letters", alarm_name=f"{resource_prefix}-{name}-dead-letters",
                alarm_description=f"Studio Runner: something failed and was kept in the {name} dead-letter queue "
                                  f"({queue.queue_name}); read the message to see what",
                metric=queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                threshold=1, evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
            alarm.add_alarm_action(notify)
            self.alarms[f"{name}-dead-letters"] = alarm

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{resource_prefix}-runs")
        self.dashboard.add_widgets(cloudwatch.AlarmStatusWidget(
            title="Alarms", alarms=list(self.alarms.values()), width=24))
        self.dashboard.add_widgets(
            self._graph("Runs started / succeeded / failed / skipped (a schedule's previous run still ran)",
                        (RUNS_STARTED, RUNS_SUCCEEDED, RUNS_FAILED, RUNS_SKIPPED), targets, "Sum"),
            self._graph("Run duration (s)", (RUN_DURATION,), targets, "Average"),
            self._graph("Waiting for the app / for a slot (s)", (APP_WAIT, SLOT_WAIT), targets, "Average"),
        )
        self.dashboard.add_widgets(
            self._graph("Cells executed", (CELLS_EXECUTED,), targets, "Sum"),
            self._graph("Cleanup failures (may still be billing)", (CLEANUP_FAILURES,), targets, "Sum"),
            cloudwatch.GraphWidget(title="Executions (Step Functions)", width=8, left=[
                state_machine.metric_started(period=PERIOD), state_machine.metric_succeeded(period=PERIOD),
                state_machine.metric_failed(period=PERIOD), state_machine.metric_aborted(period=PERIOD),
                state_machine.metric_timed_out(period=PERIOD)]),
        )
        self.dashboard.add_widgets(cloudwatch.GraphWidget(
            title="Kept in dead-letter queues", width=24,
            left=[queue.metric_approximate_number_of_messages_visible(period=PERIOD, label=name)
                  for name, queue in dead_letter_queues.items()]))

    def metric(self, name: str, target: str, *, statistic: str, labelled: bool = True) -> cloudwatch.Metric:
        # No label on an alarm's metric: a label turns the alarm into a metric-math alarm.
        return cloudwatch.Metric(namespace=NAMESPACE, metric_name=name, period=PERIOD, statistic=statistic,
                                 dimensions_map={"service": self.resource_prefix, "target": target},
                                 label=f"{name} {target}" if labelled else None)

    def _graph(self, title: str, names: Sequence[str], targets: Sequence[str], statistic: str) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(title=title, width=8, left=[
            self.metric(name, target, statistic=statistic) for name in names for target in targets])
