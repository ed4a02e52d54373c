"""Opt-in: the JupyterLab lifecycle configuration that installs and enables the Notebook Jobs
backend (studiorunner_jupyterlab/) in a SageMaker Studio space. The stack creates it; attaching
it to a space or a domain stays the administrator's choice (README: Notebook Jobs in JupyterLab)."""

from __future__ import annotations

from aws_cdk import Fn, Stack
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.config import JupyterLabLifecycle
from studiorunner_jupyterlab.studio import lifecycle_script


class JupyterLabJobs(Construct):
    def __init__(self, scope: Construct, id_: str, *, config: JupyterLabLifecycle, resource_prefix: str,
                 target_spaces: dict[str, tuple[str, str]]) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        script = lifecycle_script(stack=stack.stack_name, region=stack.region, targets=config.targets,
                                  package=config.package, target_spaces=target_spaces)
        self.lifecycle_config = sagemaker.CfnStudioLifecycleConfig(
            self, "LifecycleConfig", studio_lifecycle_config_app_type="JupyterLab",
            studio_lifecycle_config_name=f"{resource_prefix}-jupyterlab-jobs",
            studio_lifecycle_config_content=Fn.base64(script))
        self.arn: str = self.lifecycle_config.attr_studio_lifecycle_config_arn
