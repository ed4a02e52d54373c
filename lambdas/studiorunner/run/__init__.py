"""The run, step by step: one module per state of the state machine."""

from studiorunner.run.cleanup import cleanup
from studiorunner.run.prepare import prepare
from studiorunner.run.run_cells import run_cells
from studiorunner.run.run_commands import run_commands
from studiorunner.run.services import SAFETY_MARGIN_SECONDS, Services
from studiorunner.run.start_kernel import start_kernel
from studiorunner.run.start_target import start_target

__all__ = ["SAFETY_MARGIN_SECONDS", "Services", "cleanup", "prepare", "run_cells", "run_commands", "start_kernel",
           "start_target"]
