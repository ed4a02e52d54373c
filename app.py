#!/usr/bin/env python3
"""The Studio Runner CDK app.

Context is read once, here: ``studio_runner`` (the deployment's configuration, validated by
``infra.config``) and ``studio_runner:bundle`` (``false`` ships ``lambdas/`` without
installing its requirements: for quick template checks, never for a deploy).
"""

from __future__ import annotations

import os
import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.bundling import lambda_code
from infra.config import CONTEXT_KEY, ConfigError, load_config
from infra.stack import StudioRunnerStack


def main() -> None:
    app = cdk.App()
    try:
        config = load_config(app.node.try_get_context(CONTEXT_KEY))
    except ConfigError as error:
        sys.exit(f"studio-runner: {error}")
    bundle = str(app.node.try_get_context("studio_runner:bundle")).lower() != "false"
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    StudioRunnerStack(
        app, "StudioRunner", config=config, code=lambda_code(bundle=bundle),
        env=cdk.Environment(account=account, region=region) if account and region else None,
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()


if __name__ == "__main__":
    main()
