"""The bucket: output notebooks under ``runs/``, uploads under the inbox prefix."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import acknowledge

RUNS_PREFIX = "runs/"


class Storage(Construct):
    """An encrypted, private, SSL-only bucket that sends its events to EventBridge."""

    def __init__(self, scope: Construct, id_: str, *, runs_retention_days: int | None) -> None:
        super().__init__(scope, id_)
        self.access_logs = s3.Bucket(
            self, "AccessLogs",
            # Server access logging delivers only to SSE-S3 buckets.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365),
                                              abort_incomplete_multipart_upload_after=Duration.days(1))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(self.access_logs, "AwsSolutions-S1",
                    "This is the access-log bucket of the Studio Runner bucket; logging it to itself "
                    "would log its own log deliveries.")

        lifecycle = [s3.LifecycleRule(id="AbortIncompleteUploads",
                                      abort_incomplete_multipart_upload_after=Duration.days(1))]
        if runs_retention_days is not None:
            lifecycle.append(s3.LifecycleRule(id="ExpireRuns", prefix=RUNS_PREFIX,
                                              expiration=Duration.days(runs_retention_days)))
        self.bucket = s3.Bucket(
            self, "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="studio-runner/",
            lifecycle_rules=lifecycle,
            # Output notebooks are the product: keep them when the stack goes.
            removal_policy=RemovalPolicy.RETAIN,
        )
        # EventBridge notifications set on the bucket resource itself: `event_bridge_enabled=True`
        # would add a custom-resource Lambda (and its role) just to call PutBucketNotification.
        cfn_bucket: s3.CfnBucket = self.bucket.node.default_child  # type: ignore[assignment]
        cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(event_bridge_enabled=True))
