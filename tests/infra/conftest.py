"""One synthesized Studio Runner stack shared by the template tests (synth takes ~15 s).

Bundling is skipped (``lambda_code(bundle=False)``): these tests read the template, not the
zip; ``test_bundling.py`` and ``make synth`` bundle for real.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# jsii warns on every import that Node 20 is past its end of life (make exports this too).
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from infra.bundling import lambda_code
from infra.config import StudioRunnerConfig, load_config
from infra.runner import DEFINITION
from infra.stack import StudioRunnerStack

ROOT = Path(__file__).resolve().parents[2]
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jupyter-token"
WEBHOOK_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:studio-runner/slack-AbCdEf"
# Used only when statemachine/runner.asl.json is not there yet (it is someone else's file).
PLACEHOLDER_DEFINITION = {
    "StartAt": "Prepare",
    "States": {
        step: {"Type": "Task", "Resource": f"${{{step}FunctionArn}}", **({"Next": nxt} if nxt else {"End": True})}
        for step, nxt in [("Prepare", "StartTarget"), ("StartTarget", "StartKernel"),
                          ("StartKernel", "RunCells"), ("RunCells", "Cleanup"), ("Cleanup", None)]
    },
}

CONTEXT: dict[str, Any] = {
    "targets": {
        "analytics-space": {"type": "studio-space", "domain_id": "d-abc123", "user_profile": "alice",
                            "space_name": "analytics"},
        "legacy": {"type": "studio-classic", "domain_id": "d-abc123", "user_profile": "bob",
                   "region": "us-east-1"},
        "nb": {"type": "notebook-instance", "name": "My-Instance"},
        "lab": {"type": "jupyter", "url": "https://jupyter.example.com", "token_secret_arn": SECRET_ARN},
    },
    "default_target": "analytics-space",
    "schedules": [
        {"name": "daily-report", "expression": "cron(0 6 * * ? *)", "timezone": "Europe/Paris",
         "payload": {"notebook": "reports/daily.ipynb"}},
        {"name": "hourly", "expression": "rate(1 hour)", "timezone": "America/New_York",
         "payload": {"target": "nb", "notebook": "hourly.ipynb", "parameters": {"alpha": 0.5}}},
    ],
    "inbox_prefix": "uploads/",
    "lambda_memory_mb": 2048,
    "run_cells_timeout_seconds": 840,
    "log_retention_days": 14,
    "max_run_hours": 12,
    "runs_retention_days": 90,
    "notification_email": "ops@example.com",
    "notify_on_success": True,
    "notification_webhook_secret_arn": WEBHOOK_SECRET_ARN,
    "alarm_email": "oncall@example.com",
    "jupyterlab_lifecycle_config": {"package": "studio-runner==0.1.0", "targets": ["analytics-space", "lab"]},
    "vpc": {"vpc_id": "vpc-0a1b2c3d4e5f60718", "subnet_ids": ["subnet-0a1b2c3d4e5f60718", "subnet-0a1b2c3d4e5f60719"],
            "security_group_ids": ["sg-0a1b2c3d4e5f60718"]},
}


@dataclass
class Synthesized:
    config: StudioRunnerConfig
    template: Template
    template_json: dict[str, Any]
    template_path: Path
    definition_path: Path
    validation_error: Exception | None
    validation_report: dict[str, Any]
    stack: StudioRunnerStack


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    tmp = tmp_path_factory.mktemp("cdk")
    definition = DEFINITION
    if not definition.exists():
        definition = tmp / "runner.asl.json"
        definition.write_text(json.dumps(PLACEHOLDER_DEFINITION, indent=2))
    # The feature flags of cdk.json, so the test stack is the deployed one.
    flags = {k: v for k, v in json.loads((ROOT / "cdk.json").read_text())["context"].items() if k.startswith("@")}
    app = cdk.App(context=flags, outdir=str(tmp / "cdk.out"))
    config = load_config(CONTEXT)
    stack = StudioRunnerStack(app, "StudioRunnerTest", config=config, code=lambda_code(bundle=False),
                              definition=definition,
                              env=cdk.Environment(account="123456789012", region="eu-west-1"))
    # write_suppressions_to_cloud_formation: the acknowledgements land in the template, where a
    # test can check that each carries its reason.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))
    error: Exception | None = None
    try:
        app.synth()
    except Exception as exc:  # the nag test reports it; the others still read the template
        error = exc
    template_path = tmp / "cdk.out" / f"{stack.artifact_id}.template.json"
    template_json = json.loads(template_path.read_text())
    report_path = tmp / "cdk.out" / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return Synthesized(config=config, template=Template.from_json(template_json), template_json=template_json,
                       template_path=template_path, definition_path=definition, validation_error=error,
                       validation_report=report, stack=stack)
