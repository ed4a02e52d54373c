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
from studiorunner import catalog

# A full secret ARN ends with '-' and six random characters; a partial one needs the wildcard.
_FULL_SECRET_ARN = re.compile(r":secret:.+-[A-Za-z0-9]{6}$")


def target_statements(targets: Iterable[Target], *, partition: str, region: str,
                      account: str) -> list[iam.PolicyStatement]:
    """Statements for every configured target (its kind's grants in the catalog); ``region``
    applies where a target sets none."""
    statements: list[iam.PolicyStatement] = []
    for target in targets:
        sid = "Target" + "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", target.name))
        values = _template_values(target)
        for grant in catalog.kind(target.type).grants:
            values["arn"] = f"arn:{partition}:{grant.service}:{target.region or region}:{account}"
            try:
                resources = [template.format_map(values) for template in grant.resources]
            except KeyError:
                continue  # the target does not set what this grant is for (a jupyter server without a token)
            statements.append(iam.PolicyStatement(sid=f"{sid}{grant.sid}", actions=list(grant.actions),
                                                  resources=resources))
    return statements


def _template_values(target: Target) -> dict[str, str]:
    """What a grant's ARN templates may name: the target's configuration, plus two derived forms."""
    values = {key: value for key, value in target.to_dict().items() if isinstance(value, str)}
    if target.instance_name:
        values["name_lower"] = target.instance_name.lower()  # IAM matches notebook instance ARNs in lower case
    if target.token_secret_arn:
        arn = target.token_secret_arn
        values["secret_pattern"] = arn if _FULL_SECRET_ARN.search(arn) else f"{arn}-??????"
    return values


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
