"""cdk.json context validation: a mistake stops synth with the key named."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from infra.config import ConfigError, VpcPlacement, load_config
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
    assert config.targets["nb"].type == "notebook-instance" and config.targets["nb"].instance_name == "My-Instance"
    assert config.targets["lab"].type == "jupyter"
    assert config.targets["legacy"].region == "us-east-1"
    assert [s.timezone for s in config.schedules] == ["Europe/Paris", "America/New_York"]
    assert config.max_run_seconds == 12 * 3600
    assert config.targets_context == CONTEXT["targets"]
    assert config.notify_on_success is True
    assert config.vpc == VpcPlacement(vpc_id="vpc-0a1b2c3d4e5f60718",
                                      subnet_ids=("subnet-0a1b2c3d4e5f60718", "subnet-0a1b2c3d4e5f60719"),
                                      security_group_ids=("sg-0a1b2c3d4e5f60718",))


def test_the_targets_are_the_librarys_schema():
    """One schema (issue 12): a jupyter target without a token is valid for both sides."""
    from studiorunner.config import TargetConfig

    raw = {"targets": {"open": {"type": "jupyter", "url": "http://10.0.0.5:8888/jupyterlab/default"}},
           "default_target": "open"}
    config = load_config(raw)
    assert config.targets["open"] == TargetConfig.from_dict("open", raw["targets"]["open"])
    assert config.targets_context["open"] == TargetConfig.from_dict("open", raw["targets"]["open"]).to_dict()


def test_defaults_apply_to_a_minimal_context():
    config = load_config({"targets": {"nb": {"type": "notebook-instance", "name": "x"}}, "default_target": "nb"})
    assert (config.inbox_prefix, config.lambda_memory_mb, config.run_cells_timeout_seconds,
            config.log_retention_days, config.max_run_hours, config.notification_email,
            config.notify_on_success, config.vpc) == ("inbox/", 1024, 900, 30, 24, None, False, None)
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
    ("notify_on_success", "yes", "studio_runner.notify_on_success"),
    ("vpc.vpc_id", "my-vpc", "studio_runner.vpc.vpc_id"),
    ("vpc.subnet_ids", [], "studio_runner.vpc.subnet_ids"),
    ("vpc.security_group_ids", ["sg-0a1b2c3d4e5f60718", "default"], "studio_runner.vpc.security_group_ids[1]"),
    ("vpc.availability_zones", ["eu-west-1a"], "studio_runner.vpc.availability_zones"),
])
def test_a_bad_value_names_its_key(path, value, key):
    with pytest.raises(ConfigError) as raised:
        load_config(_with(path, value))
    assert raised.value.key == key
    assert str(raised.value).startswith(f"cdk.json context {key}: ")


def test_a_missing_context_says_where_to_put_it():
    with pytest.raises(ConfigError, match="add a 'studio_runner' object"):
        load_config(None)
