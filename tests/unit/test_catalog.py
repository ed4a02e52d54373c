"""The catalog (studiorunner/catalog.py): the one list of steps and target kinds, checked
against what reads it — the ASL, the handlers, the schema's key checks, the implementations."""

from __future__ import annotations

import ast
import inspect
import json
import sys
from pathlib import Path

import pytest

from studiorunner import catalog
from studiorunner.config import _KEY_CHECKS, TargetConfig
from studiorunner.targets import Target, target_class

ROOT = Path(__file__).resolve().parents[2]
ASL = json.loads((ROOT / "lambdas" / "studiorunner" / "statemachine" / "runner.asl.json").read_text())


def test_the_catalog_imports_only_the_standard_library():
    # infra/, localstudio/ and the CLI read it: it must not pull in boto3, nbformat or the library.
    tree = ast.parse((ROOT / "lambdas" / "studiorunner" / "catalog.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert imported - {"__future__"} <= set(sys.stdlib_module_names)


def test_the_asl_has_exactly_the_steps_of_the_catalog():
    tasks = {name: state for name, state in ASL["States"].items()
             if state["Type"] == "Task" and state["Resource"].startswith("${")}
    assert sorted(tasks) == sorted(step.name for step in catalog.STEPS)
    # The one Task that is not a Lambda: Step Functions starts a retry's next attempt itself.
    others = {name: state["Resource"] for name, state in ASL["States"].items()
              if state["Type"] == "Task" and name not in tasks}
    assert others == {"StartAttempt": "arn:aws:states:::states:startExecution"}
    for step in catalog.STEPS:
        task = tasks[step.name]
        assert task["Resource"] == f"${{{step.placeholder}}}"
        if step.name == "Prepare":  # the whole state is rebuilt around Prepare's result
            assert task["ResultPath"] == "$" and task["ResultSelector"] == {"run.$": "$"}
        else:
            assert task["ResultPath"] == f"$.{step.result_path}"
        assert (ROOT / "lambdas" / "studiorunner" / "steps" / f"{step.module}.py").exists()


def test_every_state_of_the_asl_belongs_to_one_step():
    owners: dict[str, list[str]] = {}
    for step in catalog.STEPS:
        for state in step.states:
            owners.setdefault(state, []).append(step.name)
    assert set(ASL["States"]) == set(owners)
    assert all(len(steps) == 1 for steps in owners.values()), owners


@pytest.mark.parametrize("kind", catalog.TARGET_KIND_NAMES)
def test_each_kind_is_complete(kind):
    entry = catalog.kind(kind)
    assert set(entry.keys) <= set(_KEY_CHECKS), "a new configuration key needs its check in config._KEY_CHECKS"
    assert issubclass(target_class(kind), Target)
    if entry.kernel_start:
        hook = catalog.resolve(entry.kernel_start)
        assert list(inspect.signature(hook).parameters) == ["jupyter", "kernel", "ctx"]
    # The stand-in can play it: the identity it names exists, and the result is a valid target.
    from localstudio.standin.world import IDENTITY

    known = {**IDENTITY, "jupyter_url": "http://127.0.0.1:1/"}
    raw = {"type": kind, **{key: known[source] for key, source in entry.standin.config_from_identity.items()}}
    assert TargetConfig.from_dict("local", raw).type == kind


def test_an_unknown_kind_is_named():
    with pytest.raises(KeyError, match="kinds: studio-space, studio-classic, notebook-instance, jupyter"):
        catalog.kind("studio")
