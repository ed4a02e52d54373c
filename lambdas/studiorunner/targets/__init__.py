"""Where notebooks run: SageMaker Studio spaces, Studio Classic, notebook instances, plain Jupyter.

Which class drives which kind is the catalog's (``studiorunner.catalog.TARGET_KINDS``): a
kind's module is imported when a target of that kind is first used.
"""

from __future__ import annotations

from typing import Any

from studiorunner import catalog
from studiorunner.config import TargetConfig
from studiorunner.targets.base import ReleaseReport, Target, TargetProgress, next_wait

__all__ = ["ReleaseReport", "Target", "TargetProgress", "next_wait", "target_class", "target_for"]


def target_class(kind: str) -> type[Target]:
    """The Target implementation of a kind of target (the catalog names it)."""
    cls = catalog.resolve(catalog.kind(kind).implementation)
    if not (isinstance(cls, type) and issubclass(cls, Target)):
        raise TypeError(f"the catalog's implementation of {kind!r} is not a Target: {cls!r}")
    return cls


def target_for(config: TargetConfig, *, clients: Any = None) -> Target:
    """The Target implementation for a configured target (``clients``: a (service, region) -> boto3 client cache)."""
    return target_class(config.type)(config, clients=clients)

