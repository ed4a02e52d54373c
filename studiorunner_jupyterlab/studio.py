"""The SageMaker Studio side: the JupyterLab lifecycle configuration script that installs and
enables the backend in a space (the README shows it; the stack can create it, opt-in)."""

from __future__ import annotations

import shlex

#: SageMaker Distribution's own Notebook Jobs front end: its *Create job* form asks for the
#: settings of a SageMaker training job (image, instance type, role), which this backend does not use.
SAGEMAKER_LAB_EXTENSION = "@amzn/sagemaker-jupyter-scheduler"


def lifecycle_script(*, stack: str, region: str | None = None, targets: list[str] | tuple[str, ...] = (),
                     package: str = "studio-runner", target_spaces: dict[str, tuple[str, str]] | None = None) -> str:
    """The JupyterLab lifecycle configuration: runs as the space's user when its JupyterLab app
    starts, before JupyterLab loads its extensions. ``target_spaces``: studio-space targets'
    (domain id, space name), so that in such a space its own target is the default."""
    enable = ["python", "-m", "studiorunner_jupyterlab", "enable", "--stack", stack]
    if region:
        enable += ["--region", region]
    for target in targets:
        enable += ["--target", target]
    for target, (domain, space) in sorted((target_spaces or {}).items()):
        enable += ["--target-space", f"{target}={domain}/{space}"]
    return "\n".join([
        "#!/bin/bash",
        "# Studio Runner: Notebook Jobs in this space's JupyterLab run by the state machine.",
        "set -eux",
        "export PATH=/opt/conda/bin:$PATH",
        "# JupyterLab and jupyter-scheduler come with SageMaker Distribution; the backend beside them",
        f"pip install --quiet {shlex.quote(package)}",
        "# the one configuration, in ~/.jupyter/jupyter_server_config.json: Jupyter reads it after the",
        "# image's, so SageMaker's Notebook Jobs backend steps aside (enable fails, naming the file, if not)",
        shlex.join(enable),
        "# SageMaker's own Create-job form asks for training-job settings this backend does not use",
        f"jupyter labextension disable --level=user {SAGEMAKER_LAB_EXTENSION} || true",
        "",
    ])
