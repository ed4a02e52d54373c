"""Runtime environments are Studio Runner targets: where the notebook runs."""

from __future__ import annotations

from jupyter_scheduler.environments import EnvironmentManager
from jupyter_scheduler.models import RuntimeEnvironment

from studiorunner_jupyterlab.jobs import FORMAT_LABELS


class TargetEnvironments(EnvironmentManager):
    """The scheduler's targets (jupyter-scheduler makes this class without arguments; the
    scheduler attaches itself when it is made)."""

    def __init__(self) -> None:
        self._scheduler = None

    def attach(self, scheduler) -> None:
        self._scheduler = scheduler

    def list_environments(self) -> list[RuntimeEnvironment]:
        names = self._scheduler.environment_names() if self._scheduler else []
        found = []
        for index, name in enumerate(names):
            label = name if name != "default" else "the deployment's default target"
            found.append(RuntimeEnvironment(
                name=name, label=label + (" (default)" if index == 0 and len(names) > 1 else ""),
                description=f"Studio Runner target {name}: the notebook runs there, in its own kernel",
                file_extensions=["ipynb"], output_formats=list(FORMAT_LABELS), metadata=None,
                compute_types=None, default_compute_type=None, utc_only=False))
        return found

    def manage_environments_command(self) -> str:
        return ""

    def output_formats_mapping(self) -> dict[str, str]:
        return dict(FORMAT_LABELS)
