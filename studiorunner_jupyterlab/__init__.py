"""Studio Runner as a jupyter-scheduler backend: Notebook Jobs in JupyterLab, run by the
state machine (``pip install "studio-runner[jupyterlab]"``).

Enabled by one configuration (``python -m studiorunner_jupyterlab enable`` writes it)::

    {"SchedulerApp": {"scheduler_class": "studiorunner_jupyterlab.scheduler.StudioRunnerScheduler",
                      "environment_manager_class": "studiorunner_jupyterlab.environments.TargetEnvironments",
                      "job_files_manager_class": "studiorunner_jupyterlab.files.RunFilesManager"},
     "StudioRunnerScheduler": {"stack": "StudioRunner", "targets": ["analytics-space"]}}
"""

SCHEDULER = "studiorunner_jupyterlab.scheduler.StudioRunnerScheduler"
ENVIRONMENTS = "studiorunner_jupyterlab.environments.TargetEnvironments"
JOB_FILES = "studiorunner_jupyterlab.files.RunFilesManager"


def server_config(**scheduler: object) -> dict:
    """The jupyter_server configuration that enables the backend (``scheduler``: the
    ``StudioRunnerScheduler`` traits, e.g. ``stack``, ``targets``, ``local``)."""
    return {"SchedulerApp": {"scheduler_class": SCHEDULER, "environment_manager_class": ENVIRONMENTS,
                             "job_files_manager_class": JOB_FILES},
            "StudioRunnerScheduler": dict(scheduler)}
