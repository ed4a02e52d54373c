"""A stand-in for the Lambda runtime's context object, shared by the local stack and the tests."""

from __future__ import annotations

import time

REGION = "us-east-1"
ACCOUNT = "123456789012"


class FakeLambdaContext:
    """Enough of ``LambdaContext`` for Powertools and our handlers; its time runs out for real."""

    def __init__(self, name: str = "studio-runner-test", timeout_seconds: float = 900.0) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        self.memory_limit_in_mb = 1024
        self.aws_request_id = f"local-{time.time_ns()}"
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
