"""cdk-nag acknowledgements: each names one finding and says why it is acceptable."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import IConstruct


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding (``RuleId`` or ``RuleId[FindingId]``) on ``scope``."""
    if len(reason) < 20:
        raise ValueError(f"an acknowledgement of {finding} needs a real reason")
    Validations.of(scope).acknowledge(Acknowledgment(id=finding, reason=reason))


def arn_ref(element: IConstruct) -> str:
    """How cdk-nag spells ``Fn::GetAtt [<logical id>, Arn]`` inside a finding id."""
    return f"<{Stack.of(element).get_logical_id(element)}.Arn>"


def resource_finding(scope: IConstruct, value: str) -> str:
    """How cdk-nag spells a (possibly tokenised) resource ARN inside an IAM5 finding id."""
    resolved = Stack.of(scope).resolve(value)
    if isinstance(resolved, str):
        return resolved
    parts = resolved["Fn::Join"][1] if isinstance(resolved, dict) and "Fn::Join" in resolved else [resolved]
    rendered = []
    for part in parts:
        if isinstance(part, str):
            rendered.append(part)
        elif "Ref" in part:
            rendered.append(f"<{part['Ref']}>")
        elif "Fn::GetAtt" in part:
            rendered.append(f"<{part['Fn::GetAtt'][0]}.{part['Fn::GetAtt'][1]}>")
        else:
            raise ValueError(f"cannot name {part!r} in a cdk-nag finding")
    return "".join(rendered)


def acknowledge_wildcard_resources(scope: IConstruct, statements: list[iam.PolicyStatement], reason: str) -> None:
    """Acknowledge IAM5 for each resource pattern (``*``/``?``) of ``statements`` on ``scope``."""
    for statement in statements:
        for resource in statement.resources:
            text = resource_finding(scope, resource)
            if "*" in text or "?" in text:
                acknowledge(scope, f"AwsSolutions-IAM5[Resource::{text}]", reason)
