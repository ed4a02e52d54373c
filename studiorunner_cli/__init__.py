"""``studio-runner``: start, follow, list, download and stop notebook runs, on AWS or locally.

Needs boto3 and the client library (``studiorunner``), never the CDK. In a checkout the
library sits in ``lambdas/`` as it is deployed; installed (``pip install .``) it is a
package of its own.
"""

import sys
from pathlib import Path

try:
    import studiorunner  # noqa: F401 - installed
except ImportError:  # a checkout: make lambdas/ importable as the Lambda runtime would
    _LAMBDAS = Path(__file__).resolve().parent.parent / "lambdas"
    if (_LAMBDAS / "studiorunner").is_dir() and str(_LAMBDAS) not in sys.path:
        sys.path.insert(0, str(_LAMBDAS))
