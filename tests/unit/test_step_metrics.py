"""Run metrics per target (lambdas/studiorunner/steps/_metrics.py): what the dashboard and alarms read."""

from __future__ import annotations

import json

import pytest

from studiorunner.run.state import Outcome
from studiorunner.steps import _metrics
from studiorunner.steps._runtime import metrics


@pytest.fixture
def emf():
    metrics.clear_metrics()
    yield lambda: metrics.serialize_metric_set()
    metrics.clear_metrics()


def _values(blob: dict) -> dict:
    names = [m["Name"] for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    return {name: blob[name] for name in names}  # Powertools writes each value as a list


def test_a_failed_run_with_a_cleanup_problem_counts_failure_duration_and_cleanup_failure(emf):
    _metrics.record_outcome(Outcome.from_dict({"status": "FAILED", "error": "CellError", "result": {
        "target": "analytics", "duration_seconds": 42.5,
        "cleanup": {"actions": [], "kept": [], "problems": ["could not stop the app"]}}}))
    blob = emf()
    assert blob["target"] == "analytics" and blob["service"]
    assert ["service", "target"] == sorted(blob["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0])
    assert _values(blob) == {"RunsFailed": [1.0], "RunDurationSeconds": [42.5], "CleanupFailures": [1.0]}
    json.dumps(blob)


def test_a_succeeded_run_counts_success_and_no_cleanup_failure(emf):
    _metrics.record_outcome(Outcome.from_dict({"status": "SUCCEEDED", "result": {
        "target": "nb", "duration_seconds": 3.0, "cleanup": {"actions": ["deleted"], "kept": []}}}))
    assert _values(emf()) == {"RunsSucceeded": [1.0], "RunDurationSeconds": [3.0]}


def test_a_run_without_a_target_records_nothing(emf):
    _metrics.record(_metrics.RUNS_STARTED, 1, target=None)
    assert metrics.metric_set == {} and "target" not in metrics.dimension_set
