"""The kinds Studio Runner knows, in one place: the state machine's steps and the kinds of target.

Standard library only, so everything reads it: the Lambda steps and the library, ``infra/``
(functions, IAM, warnings at synth), ``localstudio/`` (the local stack and the stand-in) and
the CLI (choices, the words ``watch`` prints). A new step or a new kind of target starts
here; what cannot be data (a target's behaviour, a kernel hook) is named by a dotted path
(``"module:attribute"``) and imported only by whoever calls it (:func:`resolve`).

A new target kind: its entry in :data:`TARGET_KINDS`, its :class:`~studiorunner.targets.base.Target`
(``implementation``), a check in ``config._KEY_CHECKS`` for any new configuration key, the
stand-in's part if it should be played locally, its tests and its README row.
A new step: its entry in :data:`STEPS`, its handler ``lambdas/studiorunner/steps/<module>.py``, its Task in
``statemachine/runner.asl.json``, its code in ``studiorunner/run/`` and its part of the typed
state (``run/state.py``), with their tests.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["STEPS", "STEP_RESULT_PATHS", "TARGET_KINDS", "TARGET_KIND_NAMES", "Grant", "StandInFlavor",
           "StepInfo", "TargetKind", "kind", "resolve", "step"]


# ---- steps ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepInfo:
    """One Task state of ``statemachine/runner.asl.json`` and the Lambda handler behind it."""

    name: str  # the state's name in the ASL; its Resource is ${<name>FunctionArn}
    module: str  # the handler is ``studiorunner.steps.<module>.handler`` (lambdas/studiorunner/steps/<module>.py)
    result_path: str  # where its result lands in the state ($.<result_path>)
    uses_target: bool  # logs in to the target (so needs its permissions); Prepare only validates
    description: str
    #: What ``studio-runner watch`` says while the run is in this step, and the ASL's other
    #: states (Choice, Wait, Map…) that belong to it.
    phase: str = ""
    companions: tuple[str, ...] = ()
    #: Does the user's work, for as long as one Lambda invocation allows (RunCells, RunCommands);
    #: other steps log in, start or poll and return within minutes.
    long_running: bool = False
    #: Polled through a Wait loop: while its result is ``status: pending``, ``watch`` shows its ``detail``.
    polled: bool = False
    #: ``watch`` shows its result's ``message`` instead of the phase (AcquireSlot's queue position).
    says_message: bool = False

    @property
    def handler(self) -> str:
        return f"studiorunner.steps.{self.module}.handler"

    @property
    def placeholder(self) -> str:
        return f"{self.name}FunctionArn"

    @property
    def states(self) -> tuple[str, ...]:
        """Every ASL state that belongs to this step (its Task first)."""
        return (self.name, *self.companions)


#: The state machine's steps, in the order a run meets them: the one list the library,
#: ``infra/``, the local stack and the CLI read; tests/unit/test_catalog.py checks
#: runner.asl.json against it.
STEPS: tuple[StepInfo, ...] = (
    # A schedule's run only (payload ``schedule``, overlap skip or queue), before anything starts.
    StepInfo("CheckOverlap", "check_overlap", "overlap", False,
             "a schedule's fire: skip it or wait while the schedule's previous run still runs",
             phase="checking the schedule's previous run",
             companions=("IsScheduled?", "Overlap?", "WaitForPrevious", "Skipped"), says_message=True),
    # Prepare's result becomes ``run`` through its ResultSelector (its ResultPath is "$").
    StepInfo("Prepare", "prepare", "run", False, "validate the payload and plan the run",
             phase="preparing", companions=("Start", "IsBatch?")),
    StepInfo("AcquireSlot", "acquire_slot", "slot", False,
             "take one of the target's concurrency slots, or wait for one",
             phase="waiting for a slot", companions=("SlotAcquired?", "WaitForSlot"), says_message=True),
    StepInfo("StartTarget", "start_target", "target", True, "start or poll the target",
             phase="starting the target", companions=("TargetReady?", "WaitForTarget"), polled=True),
    StepInfo("RunCommands", "run_commands", "commands", True, "run shell commands in a terminal",
             phase="running shell commands", companions=("HasCommands?",), long_running=True),
    StepInfo("StartKernel", "start_kernel", "kernel", True, "start or poll the kernel",
             phase="starting a kernel", companions=("HasNotebook?", "KernelReady?", "WaitForKernel"), polled=True),
    StepInfo("RunCells", "run_cells", "cursor", True, "execute the notebook's cells",
             phase="running cells", companions=("MoreCells?",), long_running=True),
    StepInfo("Cleanup", "cleanup", "outcome", True, "remove what the run started",
             phase="cleaning up",
             # WaitToRetry/StartAttempt: a failed run with retry attempts left starts its next attempt.
             companions=("Succeeded?", "Done", "Failed", "CleanupCrashed", "WaitToRetry", "StartAttempt")),
    # A failed run whose kernel is held for a resume (studiorunner/run/hold.py): the state machine
    # owns the hold's timer, so a held kernel is released even if nobody ever resumes it.
    StepInfo("CheckHold", "check_hold", "hold", True, "keep a failed run's kernel for a resume, then let it go",
             phase="held for a resume", companions=("HoldOver?", "WaitWhileHeld")),
    # A batch (parameter_sets / runs): plan it, run one child execution per item (a Map), summarise.
    StepInfo("PlanBatch", "plan_batch", "batch", False, "validate a batch and name its child runs",
             phase="running a batch", companions=("BatchMode?", "RunBatchInline", "RunBatchDistributed")),
    StepInfo("SummarizeBatch", "summarize_batch", "outcome", False, "collect how each child run of a batch ended",
             phase="running a batch"),
)

#: Where each step's result lands in the state (without "$.").
STEP_RESULT_PATHS: dict[str, str] = {s.name: s.result_path for s in STEPS}


def step(name: str) -> StepInfo:
    """The step called ``name`` (KeyError when there is none)."""
    for info in STEPS:
        if info.name == name:
            return info
    raise KeyError(f"no step {name!r} (steps: {', '.join(s.name for s in STEPS)})")


# ---- target kinds ------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """One IAM statement the steps need on a target of this kind (``infra/permissions.py`` builds it).

    ``resources`` are ARN templates filled from the target: ``{arn}`` is
    ``arn:<partition>:<service>:<region>:<account>``, and every key of the target's
    configuration form (``domain_id``, ``space_name``, ``name``…) plus ``name_lower`` (IAM
    matches notebook instance ARNs in lower case) and ``secret_pattern`` (the token
    secret's ARN, ``-??????`` added to a partial one). A statement whose template names a
    key the target does not set is left out (a ``jupyter`` server without a token).
    """

    sid: str  # appended to the target's own Sid prefix ("Target<Name>")
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    service: str = "sagemaker"


@dataclass(frozen=True)
class StandInFlavor:
    """How the local stand-in (``localstudio/standin``) plays a target of this kind."""

    #: Jupyter's base_url behind Studio's proxy.
    base_url: str = "/"
    #: The SageMaker app that serves Jupyter (None: an instance, or a plain server) and whose
    #: name it carries: "space_name" or "user_profile".
    server_app: str | None = None
    app_owner: str = "space_name"
    #: The run's Jupyter server lives and dies with a notebook instance (Start/StopNotebookInstance).
    notebook_instance: bool = False
    #: Kernels run on KernelGateway apps of their own (Studio Classic).
    kernel_gateway_apps: bool = False
    #: How a person logs in: "presigned-domain-url", "presigned-notebook-instance-url" or "token".
    login: str = "presigned-domain-url"
    #: The configuration keys of a target pointing at the stand-in, from its identity
    #: (``standin.world.IDENTITY`` plus ``jupyter_url``).
    config_from_identity: Mapping[str, str] = field(default_factory=dict)


#: The IAM actions on apps: what the steps start, poll and delete; AddTags because CreateApp
#: with Tags (how a run marks the app it started) needs it; ListTags to read that mark, so the
#: last of overlapping runs stops an app an earlier run started.
APP_ACTIONS = ("sagemaker:DescribeApp", "sagemaker:CreateApp", "sagemaker:DeleteApp", "sagemaker:AddTags",
               "sagemaker:ListTags")
_PROFILE = "{arn}:user-profile/{domain_id}/{user_profile}"


@dataclass(frozen=True)
class TargetKind:
    """One kind of target: its configuration, its limits, its permissions, its local stand-in."""

    name: str  # the ``type`` in cdk.json
    description: str
    required: tuple[str, ...]  # configuration keys besides ``type``
    optional: tuple[str, ...] = ("region",)
    #: ``max_concurrent_runs`` when a target sets none (None: no limit, no slot is taken).
    default_max_concurrent_runs: int | None = None
    #: The :class:`~studiorunner.targets.base.Target` that drives it ("module:Class").
    implementation: str = ""
    #: StartKernel's hook ("module:function"): creates the run's kernel and session on this kind
    #: (see ``run/start_kernel.py``); None: an ordinary ``POST api/sessions``.
    kernel_start: str | None = None
    #: The payload may choose the kernel's instance type (``kernel.instance_type``).
    kernel_instance_type: bool = False
    grants: tuple[Grant, ...] = ()
    #: Said at ``cdk synth`` for every target of this kind (``{name}``: the target's name), under
    #: this id (what ``Annotations.acknowledge_warning`` takes).
    deploy_warning: str | None = None
    deploy_warning_id: str = ""
    standin: StandInFlavor = field(default_factory=StandInFlavor)

    @property
    def keys(self) -> tuple[str, ...]:
        return (*self.required, *self.optional)


TARGET_KINDS: Mapping[str, TargetKind] = {k.name: k for k in (
    TargetKind(
        "studio-space", "a SageMaker Studio space (its JupyterLab app)",
        # instance_type: what CreateApp runs the space's app on (else the space's default).
        required=("domain_id", "user_profile", "space_name"), optional=("region", "instance_type"),
        # A space is one machine, often with a person working on it.
        default_max_concurrent_runs=1,
        implementation="studiorunner.targets.studio:StudioSpaceTarget",
        grants=(
            # The presigned URL is authorised on the user profile; the space ARN is listed too so
            # a space-scoped authorisation of the same call is also satisfied.
            Grant("Login", ("sagemaker:CreatePresignedDomainUrl",), (_PROFILE, "{arn}:space/{domain_id}/{space_name}")),
            Grant("Describe", ("sagemaker:DescribeSpace", "sagemaker:DescribeDomain", "sagemaker:DescribeUserProfile"),
                  ("{arn}:space/{domain_id}/{space_name}", "{arn}:domain/{domain_id}", _PROFILE)),
            Grant("Apps", APP_ACTIONS, ("{arn}:app/{domain_id}/{space_name}/*",)),
        ),
        standin=StandInFlavor(
            base_url="/jupyterlab/default/", server_app="JupyterLab", app_owner="space_name",
            config_from_identity={"domain_id": "domain_id", "user_profile": "user_profile",
                                  "space_name": "space_name", "region": "region"}),
    ),
    TargetKind(
        "studio-classic", "a Studio Classic user profile (retired by AWS: existing apps only)",
        required=("domain_id", "user_profile"),
        # Each Classic run gets a KernelGateway app of its own.
        default_max_concurrent_runs=None,
        implementation="studiorunner.targets.studio:StudioClassicTarget",
        kernel_start="studiorunner.run.classic_kernel:start_kernel",
        kernel_instance_type=True,
        grants=(
            Grant("Login", ("sagemaker:CreatePresignedDomainUrl",), (_PROFILE,)),
            Grant("Describe", ("sagemaker:DescribeDomain", "sagemaker:DescribeUserProfile"),
                  ("{arn}:domain/{domain_id}", _PROFILE)),
            Grant("Apps", APP_ACTIONS, ("{arn}:app/{domain_id}/{user_profile}/*",)),
        ),
        deploy_warning=(
            "studio-runner: target {name!r} is studio-classic. AWS has retired Studio Classic: new "
            "JupyterServer and KernelGateway apps can no longer be created, so a run works only while "
            "this user profile's Classic apps still exist (a run that would have to create one fails "
            "with TargetFailed). Move to a studio-space target."),
        deploy_warning_id="studio-runner:studio-classic-retired",
        standin=StandInFlavor(
            base_url="/jupyter/default/", server_app="JupyterServer", app_owner="user_profile",
            kernel_gateway_apps=True,
            config_from_identity={"domain_id": "domain_id", "user_profile": "user_profile", "region": "region"}),
    ),
    TargetKind(
        "notebook-instance", "a SageMaker notebook instance",
        required=("name",),
        # One machine, often with a person working on it.
        default_max_concurrent_runs=1,
        implementation="studiorunner.targets.notebook_instance:NotebookInstanceTarget",
        grants=(
            Grant("Instance", ("sagemaker:DescribeNotebookInstance", "sagemaker:StartNotebookInstance",
                               "sagemaker:StopNotebookInstance", "sagemaker:CreatePresignedNotebookInstanceUrl"),
                  ("{arn}:notebook-instance/{name_lower}",)),
        ),
        standin=StandInFlavor(notebook_instance=True, login="presigned-notebook-instance-url",
                              config_from_identity={"name": "notebook_instance", "region": "region"}),
    ),
    TargetKind(
        "jupyter", "any Jupyter server reachable over HTTP(S)",
        # No token_secret_arn: a server started with --ServerApp.token='' (as SageMaker
        # Distribution starts one) has no token, and the steps send none.
        required=("url",), optional=("token_secret_arn", "region"),
        # A plain Jupyter server's size is unknown to us.
        default_max_concurrent_runs=None,
        implementation="studiorunner.targets.jupyter:JupyterTarget",
        grants=(Grant("Token", ("secretsmanager:GetSecretValue",), ("{secret_pattern}",), service="secretsmanager"),),
        standin=StandInFlavor(login="token", config_from_identity={"url": "jupyter_url"}),
    ),
)}

#: The kinds' names, in the order the documentation and ``--target`` list them.
TARGET_KIND_NAMES: tuple[str, ...] = tuple(TARGET_KINDS)


def kind(name: str) -> TargetKind:
    """The target kind called ``name`` (KeyError naming the known kinds when there is none)."""
    try:
        return TARGET_KINDS[name]
    except KeyError:
        raise KeyError(f"no target kind {name!r} (kinds: {', '.join(TARGET_KIND_NAMES)})") from None


def resolve(dotted: str) -> Any:
    """The object a ``"module:attribute"`` path names (imported now, not when the catalog is)."""
    module, _, attribute = dotted.partition(":")
    return getattr(importlib.import_module(module), attribute)
