#!/usr/bin/env python3
"""The Studio Runner CDK app.

Context is read once, here: ``studio_runner`` (the deployment's configuration, validated by
``infra.config``); ``studio_runner:stack_id`` and ``studio_runner:resource_prefix`` (so a
dev and a prod copy can share an account: ``-c studio_runner:stack_id=StudioRunnerDev
-c studio_runner:resource_prefix=studio-runner-dev``); and ``studio_runner:bundle``
(``false`` ships ``lambdas/`` without installing its requirements: for quick template
checks, never for a deploy).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# infra/ reads the library's catalog and target schema, which live in lambdas/ as deployed.
# Appended, so a path set up before (a bundle's) still comes first.
sys.path.append(str(Path(__file__).resolve().parent / "lambdas"))

import aws_cdk as cdk  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from infra.bundling import RENDER, lambda_code  # noqa: E402
from infra.config import CONTEXT_KEY, ConfigError, load_config  # noqa: E402
from infra.stack import DEFAULT_STACK_ID, StudioRunnerStack  # noqa: E402
from infra.studio_runner import DEFAULT_RESOURCE_PREFIX  # noqa: E402


def main() -> None:
    app = cdk.App()
    try:
        config = load_config(app.node.try_get_context(CONTEXT_KEY))
    except ConfigError as error:
        sys.exit(f"studio-runner: {error}")
    bundle = str(app.node.try_get_context("studio_runner:bundle")).lower() != "false"
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    stack_id = app.node.try_get_context("studio_runner:stack_id") or DEFAULT_STACK_ID
    prefix = app.node.try_get_context("studio_runner:resource_prefix") or DEFAULT_RESOURCE_PREFIX
    StudioRunnerStack(
        app, stack_id, config=config, code=lambda_code(bundle=bundle), resource_prefix=prefix,
        render_code=lambda_code(bundle=bundle, variant=RENDER),
        env=cdk.Environment(account=account, region=region) if account and region else None,
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()


if __name__ == "__main__":
    main()
