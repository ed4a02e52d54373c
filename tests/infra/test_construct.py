"""The StudioRunner construct used by another CDK app: two copies (dev, prod) in one account,
one of them on the app's own bucket, and a role of the app allowed to start runs."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template
from constructs import Construct

from infra.bundling import lambda_code
from infra.config import load_config
from infra.studio_runner import StudioRunner
from tests.infra.conftest import ROOT

CONTEXT: dict[str, Any] = {
    "targets": {"space": {"type": "studio-space", "domain_id": "d-abc123", "user_profile": "alice",
                          "space_name": "analytics"}},
    "default_target": "space",
}


class TeamStack(cdk.Stack):
    """What a team's own app would write: its bucket, its role, and Studio Runner composed in."""

    def __init__(self, scope: Construct, id_: str, *, prefix: str, own_bucket: bool) -> None:
        super().__init__(scope, id_, env=cdk.Environment(account="123456789012", region="eu-west-1"))
        bucket = s3.Bucket(self, "TeamData", enforce_ssl=True, event_bridge_enabled=True) if own_bucket else None
        self.runner = StudioRunner(self, "Notebooks", config=load_config(CONTEXT), code=lambda_code(bundle=False),
                                   resource_prefix=prefix, bucket=bucket)
        self.scheduler = iam.Role(self, "TeamScheduler", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
        self.runner.grant_start_execution(self.scheduler)


@pytest.fixture(scope="module")
def team_app(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Template]:
    flags = {k: v for k, v in json.loads((ROOT / "cdk.json").read_text())["context"].items() if k.startswith("@")}
    app = cdk.App(context=flags, outdir=str(tmp_path_factory.mktemp("team") / "cdk.out"))
    dev = TeamStack(app, "TeamDev", prefix="team-dev", own_bucket=True)
    prod = TeamStack(app, "TeamProd", prefix="team-prod", own_bucket=False)
    app.synth()
    return {"dev": Template.from_stack(dev), "prod": Template.from_stack(prod), "dev_stack": dev}


def _names(template: Template, type_: str, key: str) -> set[str]:
    return {r["Properties"][key] for r in template.find_resources(type_).values() if key in r["Properties"]}


def test_dev_and_prod_copies_name_their_resources_apart(team_app):
    dev, prod = team_app["dev"], team_app["prod"]
    assert _names(dev, "AWS::StepFunctions::StateMachine", "StateMachineName") == {"team-dev-runs"}
    assert _names(prod, "AWS::StepFunctions::StateMachine", "StateMachineName") == {"team-prod-runs"}
    for kind, key in (("AWS::SNS::Topic", "TopicName"), ("AWS::CloudWatch::Dashboard", "DashboardName"),
                      ("AWS::CloudWatch::Alarm", "AlarmName"), ("AWS::Events::Rule", "Name")):
        dev_names, prod_names = _names(dev, kind, key), _names(prod, kind, key)
        assert dev_names and prod_names and not dev_names & prod_names, kind
        assert all(n.startswith("team-dev-") for n in dev_names), dev_names
    # The functions' metrics carry the prefix as their service dimension.
    dev.has_resource_properties("AWS::Lambda::Function", {"Environment": {"Variables": Match.object_like(
        {"POWERTOOLS_SERVICE_NAME": "team-dev"})}})


def test_the_construct_uses_the_apps_own_bucket_and_creates_none(team_app):
    dev, prod = team_app["dev"], team_app["prod"]
    buckets = dev.find_resources("AWS::S3::Bucket")
    assert len(buckets) == 1
    (team_bucket,) = buckets
    dev.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "studiorunner.steps.run_cells.handler",
        "Environment": {"Variables": Match.object_like({"STUDIO_RUNNER_BUCKET": {"Ref": team_bucket}})}})
    # Without a bucket of its own the construct brings its bucket and the access-log bucket.
    prod.resource_count_is("AWS::S3::Bucket", 2)


def test_grant_start_execution_lets_the_apps_role_start_runs_and_nothing_else(team_app):
    dev = team_app["dev"]
    stack = team_app["dev_stack"]
    role = stack.get_logical_id(stack.scheduler.node.default_child)
    machine = next(iter(dev.find_resources("AWS::StepFunctions::StateMachine")))
    dev.has_resource_properties("AWS::IAM::Policy", {
        "Roles": [{"Ref": role}],
        "PolicyDocument": {"Statement": [{"Action": "states:StartExecution", "Effect": "Allow",
                                          "Resource": {"Ref": machine}}], "Version": "2012-10-17"}})
    assert stack.runner.bucket is not None and stack.runner.topic is not None
