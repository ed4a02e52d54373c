"""cdk.json context validation: a mistake stops synth with the key named."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from infra.config import ConfigError, JupyterTarget, NotebookInstanceTarget, load_config
from tests.infra.conftest import CONTEXT

ROOT = Path(__file__).resolve().parents[2]


def _with(path: str, value) -> dict:
    raw = copy.deepcopy(CONTEXT)
    *parents, last = path.split(".")
    node = raw
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return raw


_DELETE = object()


def test_the_shipped_cdk_json_is_valid():
    config = load_config(json.loads((ROOT / "cdk.json").read_text())["context"]["studio_runner"])
    assert config.default_target in config.targets


def test_a_full_context_becomes_typed_targets_and_schedules():
    config = load_config(CONTEXT)
    assert isinstance(config.targets["nb"], NotebookInstanceTarget) and config.targets["nb"].instance_name == "My-Instance"
    assert isinstance(config.targets["lab"], JupyterTarget)
    assert config.targets["legacy"].region == "us-east-1"
    assert [s.timezone for s in config.schedules] == ["Europe/Paris", "America/New_York"]
    assert config.max_run_seconds == 12 * 3600
    assert config.targets_context == CONTEXT["targets"]


def test_defaults_apply_to_a_minimal_context():
    config = load_config({"targets": {"nb": {"type": "notebook-instance", "name": "x"}}, "default_target": "nb"})
    assert (config.inbox_prefix, config.lambda_memory_mb, config.run_cells_timeout_seconds,
            config.log_retention_days, config.max_run_hours, config.notification_email) == \
        ("inbox/", 1024, 900, 30, 24, None)
    assert config.schedules == ()


@pytest.mark.parametrize("path, value, key", [
    ("default_target", "nope", "studio_runner.default_target"),
    ("targets.nb.type", "sagemaker", "studio_runner.targets.nb.type"),
    ("targets.analytics-space.space_name", _DELETE, "studio_runner.targets.analytics-space.space_name"),
    ("targets.analytics-space.domain_id", "abc", "studio_runner.targets.analytics-space.domain_id"),
    ("targets.analytics-space.colour", "blue", "studio_runner.targets.analytics-space.colour"),
    ("targets.legacy.region", "Paris", "studio_runner.targets.legacy.region"),
    ("targets.lab.token_secret_arn", "my-token", "studio_runner.targets.lab.token_secret_arn"),
    ("schedules.0.expression", "every day", "studio_runner.schedules[0].expression"),
    ("schedules.0.expression", "cron(0 6 * * ?)", "studio_runner.schedules[0].expression"),
    ("schedules.0.timezone", "Mars/Olympus", "studio_runner.schedules[0].timezone"),
    ("schedules.1.payload", {"target": "ghost"}, "studio_runner.schedules[1].payload.target"),
    ("schedules.1.name", "daily-report", "studio_runner.schedules[1].name"),
    ("inbox_prefix", "inbox", "studio_runner.inbox_prefix"),
    ("run_cells_timeout_seconds", 3600, "studio_runner.run_cells_timeout_seconds"),
    ("lambda_memory_mb", True, "studio_runner.lambda_memory_mb"),
    ("log_retention_days", 10, "studio_runner.log_retention_days"),
    ("notification_email", "not-an-address", "studio_runner.notification_email"),
    ("max_runs", 3, "studio_runner.max_runs"),
])
def test_a_bad_value_names_its_key(path, value, key):
    with pytest.raises(ConfigError) as raised:
        load_config(_with(path, value))
    assert raised.value.key == key
    assert str(raised.value).startswith(f"cdk.json context {key}: ")


def test_a_missing_context_says_where_to_put_it():
    with pytest.raises(ConfigError, match="add a 'studio_runner' object"):
        load_config(None)
