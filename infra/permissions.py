"""IAM statements that let the steps reach the configured targets, and nothing else.

``CreatePresignedDomainUrl`` and ``CreatePresignedNotebookInstanceUrl`` are code execution
as that user, so every statement names the configured ARNs; no SageMaker action is ever
granted on ``*`` (a template test checks it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from aws_cdk import aws_iam as iam

from infra.config import (
    JupyterTarget,
    NotebookInstanceTarget,
    StudioClassicTarget,
    StudioSpaceTarget,
    Target,
)

# Apps are what the steps start, poll and delete; AddTags because CreateApp with Tags
# (how a run marks the app it started) needs it.
APP_ACTIONS = ["sagemaker:DescribeApp", "sagemaker:CreateApp", "sagemaker:DeleteApp", "sagemaker:AddTags"]
NOTEBOOK_INSTANCE_ACTIONS = [
    "sagemaker:DescribeNotebookInstance",
    "sagemaker:StartNotebookInstance",
    "sagemaker:StopNotebookInstance",
    "sagemaker:CreatePresignedNotebookInstanceUrl",
]
# A full secret ARN ends with '-' and six random characters; a partial one needs the wildcard.
_FULL_SECRET_ARN = re.compile(r":secret:.+-[A-Za-z0-9]{6}$")


def target_statements(targets: Iterable[Target], *, partition: str, region: str,
                      account: str) -> list[iam.PolicyStatement]:
    """Statements for every configured target; ``region`` applies where a target sets none."""
    statements: list[iam.PolicyStatement] = []
    for target in targets:
        sid = "Target" + "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", target.name))
        prefix = f"arn:{partition}:sagemaker:{target.region or region}:{account}"
        if isinstance(target, StudioSpaceTarget):
            profile = f"{prefix}:user-profile/{target.domain_id}/{target.user_profile}"
            space = f"{prefix}:space/{target.domain_id}/{target.space_name}"
            statements += [
                # The presigned URL is authorised on the user profile; the space ARN is listed
                # too so a space-scoped authorisation of the same call is also satisfied.
                iam.PolicyStatement(sid=f"{sid}Login", actions=["sagemaker:CreatePresignedDomainUrl"],
                                    resources=[profile, space]),
                iam.PolicyStatement(sid=f"{sid}Describe",
                                    actions=["sagemaker:DescribeSpace", "sagemaker:DescribeDomain",
                                             "sagemaker:DescribeUserProfile"],
                                    resources=[space, f"{prefix}:domain/{target.domain_id}", profile]),
                iam.PolicyStatement(sid=f"{sid}Apps", actions=APP_ACTIONS,
                                    resources=[f"{prefix}:app/{target.domain_id}/{target.space_name}/*"]),
            ]
        elif isinstance(target, StudioClassicTarget):
            profile = f"{prefix}:user-profile/{target.domain_id}/{target.user_profile}"
            statements += [
                iam.PolicyStatement(sid=f"{sid}Login", actions=["sagemaker:CreatePresignedDomainUrl"],
                                    resources=[profile]),
                iam.PolicyStatement(sid=f"{sid}Describe",
                                    actions=["sagemaker:DescribeDomain", "sagemaker:DescribeUserProfile"],
                                    resources=[f"{prefix}:domain/{target.domain_id}", profile]),
                iam.PolicyStatement(sid=f"{sid}Apps", actions=APP_ACTIONS,
                                    resources=[f"{prefix}:app/{target.domain_id}/{target.user_profile}/*"]),
            ]
        elif isinstance(target, NotebookInstanceTarget):
            # IAM matches notebook instance ARNs in lower case.
            statements.append(iam.PolicyStatement(
                sid=f"{sid}Instance", actions=NOTEBOOK_INSTANCE_ACTIONS,
                resources=[f"{prefix}:notebook-instance/{target.instance_name.lower()}"]))
        elif isinstance(target, JupyterTarget):
            arn = target.token_secret_arn
            statements.append(iam.PolicyStatement(
                sid=f"{sid}Token", actions=["secretsmanager:GetSecretValue"],
                resources=[arn if _FULL_SECRET_ARN.search(arn) else f"{arn}-??????"]))
        else:  # pragma: no cover - config.load_config admits no other type
            raise TypeError(f"unknown target type {type(target).__name__}")
    return statements
