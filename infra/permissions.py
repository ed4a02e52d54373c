"""IAM statements that let the steps reach the configured targets, and nothing else.

``CreatePresignedDomainUrl`` and ``CreatePresignedNotebookInstanceUrl`` are code execution
as that user, so every statement names the configured ARNs; no SageMaker action is ever
granted on ``*`` (a template test checks it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from infra.config import Target
from infra.nag import acknowledge, resource_finding

# Apps are what the steps start, poll and delete; AddTags because CreateApp with Tags
# (how a run marks the app it started) needs it; ListTags to read that mark, so the last of
# overlapping runs stops an app an earlier run started.
APP_ACTIONS = ["sagemaker:DescribeApp", "sagemaker:CreateApp", "sagemaker:DeleteApp", "sagemaker:AddTags",
               "sagemaker:ListTags"]
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
        if target.type == "studio-space":
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
        elif target.type == "studio-classic":
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
        elif target.type == "notebook-instance":
            # IAM matches notebook instance ARNs in lower case.
            statements.append(iam.PolicyStatement(
                sid=f"{sid}Instance", actions=NOTEBOOK_INSTANCE_ACTIONS,
                resources=[f"{prefix}:notebook-instance/{target.instance_name.lower()}"]))
        elif target.type == "jupyter":
            arn = target.token_secret_arn
            if arn is None:
                continue  # a server without a token: nothing to read
            statements.append(iam.PolicyStatement(
                sid=f"{sid}Token", actions=["secretsmanager:GetSecretValue"],
                resources=[arn if _FULL_SECRET_ARN.search(arn) else f"{arn}-??????"]))
        else:  # pragma: no cover - config.load_config admits no other type
            raise TypeError(f"unknown target type {target.type!r}")
    return statements


def grant_bucket(role: iam.IRole, bucket: s3.IBucket, *, write: bool, prefix: str | None = None) -> None:
    """The bucket grant every function gets, with its cdk-nag acknowledgements (one place)."""
    objects = f"{prefix}*" if prefix else "*"
    if write:
        bucket.grant_read_write(role, objects)
    else:
        bucket.grant_read(role, objects)
    resource = resource_finding(role, bucket.arn_for_objects(objects))
    acknowledge(role, f"AwsSolutions-IAM5[Resource::{resource}]",
                "Object-level access to the Studio Runner bucket only, under keys chosen per run "
                f"(runs/<run_id>/…, the inbox{': ' + prefix if prefix else ''}).")
    read = ["s3:GetObject*", "s3:GetBucket*", "s3:List*"]
    for action in read + (["s3:DeleteObject*", "s3:Abort*"] if write else []):
        acknowledge(role, f"AwsSolutions-IAM5[Action::{action}]",
                    "CDK's grantRead/grantReadWrite on the Studio Runner bucket only: these wildcard "
                    "actions are scoped to that bucket and its objects.")
