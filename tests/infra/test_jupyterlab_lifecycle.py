"""The opt-in JupyterLab lifecycle configuration (Notebook Jobs run by Studio Runner in a space)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from infra.config import ConfigError, load_config
from tests.infra.conftest import CONTEXT


def _script(template_json: dict[str, Any]) -> str:
    """The script, as CloudFormation will join it (the stack's name and region are references)."""
    configs = [r for r in template_json["Resources"].values() if r["Type"] == "AWS::SageMaker::StudioLifecycleConfig"]
    assert len(configs) == 1
    content = configs[0]["Properties"]["StudioLifecycleConfigContent"]["Fn::Base64"]
    if isinstance(content, str):
        return content
    separator, parts = content["Fn::Join"]
    return separator.join(p if isinstance(p, str) else json.dumps(p) for p in parts)


def test_the_stack_creates_the_lifecycle_configuration_when_asked(synthesized) -> None:
    synthesized.template.has_resource_properties("AWS::SageMaker::StudioLifecycleConfig", {
        "StudioLifecycleConfigAppType": "JupyterLab",
        "StudioLifecycleConfigName": "studio-runner-jupyterlab-jobs",
    })
    script = _script(synthesized.template_json)
    assert script.startswith("#!/bin/bash\n") and "set -eux" in script
    assert "pip install --quiet studio-runner==0.1.0" in script
    assert ("python -m studiorunner_jupyterlab enable --stack StudioRunnerTest --region eu-west-1 "
            "--target analytics-space --target lab --target-space analytics-space=d-abc123/analytics") in script
    assert "jupyter labextension disable --level=user @amzn/sagemaker-jupyter-scheduler" in script
    synthesized.template.has_output("JupyterLabLifecycleConfigArn", {"Value": Match.any_value()})


def test_it_is_opt_in_and_checked_at_synth() -> None:
    without = {k: v for k, v in CONTEXT.items() if k != "jupyterlab_lifecycle_config"}
    assert load_config(without).jupyterlab_lifecycle_config is None
    default = load_config({**without, "jupyterlab_lifecycle_config": {}}).jupyterlab_lifecycle_config
    assert default.package == "studio-runner" and default.targets == ("analytics-space",)
    with pytest.raises(ConfigError, match=r"jupyterlab_lifecycle_config.targets.*'nowhere' is not one of the targets"):
        load_config({**without, "jupyterlab_lifecycle_config": {"targets": ["nowhere"]}})
    with pytest.raises(ConfigError, match=r"jupyterlab_lifecycle_config.pakage.*unknown key"):
        load_config({**without, "jupyterlab_lifecycle_config": {"pakage": "x"}})
