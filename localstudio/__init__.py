"""Studio Runner without AWS: a stand-in of SageMaker Studio built on a real jupyter_server,
the state machine executed by moto's Step Functions interpreter, and a CLI over both.
"""

import sys
from pathlib import Path

# The Lambda code (handlers in ``steps``, the library ``studiorunner``) lives in lambdas/,
# laid out as it is deployed; make it importable as the Lambda runtime would.
_LAMBDAS = str(Path(__file__).resolve().parent.parent / "lambdas")
if _LAMBDAS not in sys.path:
    sys.path.insert(0, _LAMBDAS)
