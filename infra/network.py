"""Optional VPC placement of every Lambda (``vpc`` in cdk.json), from ids: synth stays offline.

``Vpc.from_lookup`` would need an account and credentials at synth; the subnets and security
groups are named by id instead, and the VPC by its attributes. What the functions must reach
from inside the VPC (the Studio and SageMaker API endpoints, S3, Step Functions…) is listed in
the README's "Private networks" section.
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from infra.config import VpcPlacement


class LambdaNetwork(Construct):
    """The configured VPC, subnets and security groups, as every function is placed in them."""

    def __init__(self, scope: Construct, id_: str, *, placement: VpcPlacement) -> None:
        super().__init__(scope, id_)
        subnets = [ec2.Subnet.from_subnet_id(self, f"Subnet{i}", subnet_id)
                   for i, subnet_id in enumerate(placement.subnet_ids)]
        # The availability zones are not needed: the subnets are chosen explicitly below.
        self.vpc = ec2.Vpc.from_vpc_attributes(self, "Vpc", vpc_id=placement.vpc_id, availability_zones=[""])
        self.subnets = ec2.SubnetSelection(subnets=subnets)
        self.security_groups = [
            ec2.SecurityGroup.from_security_group_id(self, f"SecurityGroup{i}", group_id, mutable=False)
            for i, group_id in enumerate(placement.security_group_ids)]
