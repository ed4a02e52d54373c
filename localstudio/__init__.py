"""Studio Runner without AWS: a stand-in of SageMaker Studio built on a real jupyter_server,
the state machine executed by moto's Step Functions interpreter, and a CLI over both.
"""

import os
import sys
from pathlib import Path

# The Lambda code (the library ``studiorunner``, its handlers in ``studiorunner.steps``) lives in lambdas/,
# laid out as it is deployed; make it importable as the Lambda runtime would.
# STUDIO_RUNNER_LAMBDA_PATH names the built bundle instead (`make test-bundle`).
_LAMBDAS = os.environ.get("STUDIO_RUNNER_LAMBDA_PATH") or str(Path(__file__).resolve().parent.parent / "lambdas")
if _LAMBDAS not in sys.path and Path(_LAMBDAS).is_dir():  # installed: studiorunner is a package of its own
    sys.path.insert(0, _LAMBDAS)

# jsonschema imports rfc3987_syntax when it is installed (jupyter_server's dependencies
# install it; the Lambda bundle does not have it), and that module builds a grammar at
# import: 2.5-3.1 s of every local process here (the CLI, the stand-in's server, each test
# worker), measured with `python -X importtime`. It only adds jsonschema's "iri" format
# checks, which neither nbformat's schema nor jupyter_server's event schemas use. Left
# out, a local process imports what the Lambda runtime imports.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
