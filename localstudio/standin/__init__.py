"""The Studio stand-in: a real jupyter_server + ipykernel that behaves like SageMaker
Studio where Studio Runner depends on it, plus the SageMaker API calls moto lacks.

    with StandIn(root=path, flavor="studio-space") as s:
        s.jupyter_url, s.sagemaker_endpoint, s.set_faults(...), s.state()
"""

from .process import StandIn, StandInError, serve
from .world import FLAVORS, IDENTITY

__all__ = ["FLAVORS", "IDENTITY", "StandIn", "StandInError", "serve"]
