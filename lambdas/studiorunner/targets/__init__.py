"""Where notebooks run: SageMaker Studio spaces, Studio Classic, notebook instances, plain Jupyter."""

from __future__ import annotations

from studiorunner.config import TargetConfig
from studiorunner.targets.base import ReleaseReport, Target, TargetProgress, next_wait
from studiorunner.targets.jupyter import JupyterTarget
from studiorunner.targets.notebook_instance import NotebookInstanceTarget
from studiorunner.targets.studio import StudioClassicTarget, StudioSpaceTarget

__all__ = ["ReleaseReport", "Target", "TargetProgress", "next_wait", "target_for"]

_TYPES: dict[str, type[Target]] = {
    "studio-space": StudioSpaceTarget,
    "studio-classic": StudioClassicTarget,
    "notebook-instance": NotebookInstanceTarget,
    "jupyter": JupyterTarget,
}


def target_for(config: TargetConfig, *, clients=None) -> Target:
    """The Target implementation for a configured target (``clients``: a (service, region) -> boto3 client cache)."""
    return _TYPES[config.type](config, clients=clients)
