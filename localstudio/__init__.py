"""Studio Runner without AWS: a stand-in of SageMaker Studio built on a real jupyter_server,
the state machine executed by moto's Step Functions interpreter, and a CLI over both.
"""

import os
import sys
from pathlib import Path

# The Lambda code (handlers in ``steps``, the library ``studiorunner``) lives in lambdas/,
# laid out as it is deployed; make it importable as the Lambda runtime would.
# STUDIO_RUNNER_LAMBDA_PATH names the built bundle instead (`make test-bundle`).
_LAMBDAS = os.environ.get("STUDIO_RUNNER_LAMBDA_PATH") or str(Path(__file__).resolve().parent.parent / "lambdas")
if _LAMBDAS not in sys.path:
    sys.path.insert(0, _LAMBDAS)
