"""Fan-out planning and summarising (run/batch.py), without AWS: a fake Step Functions and store."""

from __future__ import annotations

import json

import pytest

from studiorunner.config import RunnerConfig
from studiorunner.errors import PayloadInvalid
from studiorunner.run.batch import INLINE_MAX_ITEMS, child_name, is_batch, plan_batch, summarize_batch
from studiorunner.run.services import Services

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:runner"
SPACE = {"type": "studio-space", "domain_id": "d-abc", "user_profile": "alice", "space_name": "s"}


class FakeStore:
    def __init__(self) -> None:
        self.written: dict[str, bytes] = {}

    def write_bytes(self, uri: str, data: bytes, *, content_type: str = "") -> None:
        self.written[uri] = data


class FakeSfn:
    def __init__(self, executions: dict[str, dict]) -> None:
        self.executions = executions

    def describe_execution(self, executionArn: str) -> dict:
        name = executionArn.rsplit(":", 1)[-1]
        if name not in self.executions:
            raise KeyError(name)
        return self.executions[name]


def services() -> Services:
    config = RunnerConfig.from_env({"STUDIO_RUNNER_TARGETS": json.dumps({"space": SPACE}),
                                    "STUDIO_RUNNER_DEFAULT_TARGET": "space", "STUDIO_RUNNER_BUCKET": "b"})
    return Services(config=config, store=FakeStore())


def plan(payload: dict, execution: str = "batch-1") -> dict:
    return plan_batch(payload, services(), execution=execution, state_machine=MACHINE)


def test_parameter_sets_merge_over_the_base_parameters():
    batch = plan({"notebook": "n.ipynb", "parameters": {"a": 1, "b": 2}, "parameter_sets": [{"b": 3}, {"c": 4}],
                  "max_concurrency": 8})
    assert [i["payload"]["parameters"] for i in batch["items"]] == [{"a": 1, "b": 3}, {"a": 1, "b": 2, "c": 4}]
    assert [i["name"] for i in batch["items"]] == ["batch-1-0", "batch-1-1"]
    assert all("parameter_sets" not in i["payload"] and "max_concurrency" not in i["payload"] for i in batch["items"])
    assert batch["max_concurrency"] == 2 and batch["distributed"] is False
    assert batch["result_uri"] == "s3://b/runs/batch-1/batch.json"


def test_runs_are_whole_payloads():
    batch = plan({"runs": [{"notebook": "a.ipynb"}, {"notebook": "b.ipynb", "parameters": {"x": 1}}]})
    assert [i["payload"] for i in batch["items"]] == [{"notebook": "a.ipynb"},
                                                      {"notebook": "b.ipynb", "parameters": {"x": 1}}]


def test_many_items_or_high_concurrency_take_the_distributed_map():
    sets = [{"x": i} for i in range(INLINE_MAX_ITEMS + 1)]
    assert plan({"notebook": "n.ipynb", "parameter_sets": sets})["distributed"] is True
    assert plan({"notebook": "n.ipynb", "parameter_sets": sets[:41], "max_concurrency": 41})["distributed"] is True
    assert plan({"notebook": "n.ipynb", "parameter_sets": sets[:40], "max_concurrency": 40})["distributed"] is False


@pytest.mark.parametrize("payload, problem", [
    ({"notebook": "n.ipynb", "parameter_sets": []}, "'parameter_sets' must be a non-empty list"),
    ({"notebook": "n.ipynb", "parameter_sets": [1]}, "'parameter_sets' must be a non-empty list"),
    ({"notebook": "n.ipynb", "parameter_sets": [{}], "runs": [{}]}, "not both"),
    ({"notebook": "n.ipynb", "runs": [{"notebook": "a.ipynb"}]}, "move ['notebook'] into each run"),
    ({"runs": [{"notebook": "a.ipynb", "runs": []}]}, "run 0: a batch's runs cannot be batches"),
    ({"runs": [{"notebook": "a.ipynb"}, {"notebok": "b.ipynb"}]}, "run 1: Invalid payload"),
    ({"runs": [{"notebook": "a.ipynb", "target": "elsewhere"}]}, "run 0: Target 'elsewhere' is not configured"),
    ({"notebook": "n.ipynb", "parameter_sets": [{}], "max_concurrency": 0}, "'max_concurrency' must be"),
    ({"notebook": "n.ipynb", "parameter_sets": [{}], "tolerated_failure_percentage": 101}, "from 0 to 100"),
    ({"notebook": "n.ipynb", "parameter_sets": [{}] * 501}, "at most 500"),
])
def test_bad_batches_are_payload_invalid_naming_the_problem(payload, problem):
    with pytest.raises(PayloadInvalid) as raised:
        plan(payload)
    assert problem in str(raised.value)


def test_child_names_stay_within_80_characters_and_unique():
    long = "x" * 80
    names = {child_name(long, i) for i in range(500)}
    assert len(names) == 500 and all(len(n) <= 80 for n in names)
    assert child_name("a b/c", 3) == "a-b-c-3"
    assert is_batch({"parameter_sets": []}) and not is_batch({"notebook": "n.ipynb"})


def _state(count: int, tolerated: float = 0) -> dict:
    batch = plan({"notebook": "n.ipynb", "parameter_sets": [{"x": i} for i in range(count)],
                  "tolerated_failure_percentage": tolerated})
    return {"batch": batch, "children": [{"name": i["name"], "status": "?"} for i in batch["items"]]}


def _ok(name: str) -> dict:
    return {"status": "SUCCEEDED", "output": json.dumps({"run_id": name, "output_notebook": f"s3://b/runs/{name}/n.ipynb"})}


def test_summary_lists_every_child_and_fails_naming_the_failed_one():
    svc = services()
    sfn = FakeSfn({"batch-1-0": _ok("batch-1-0"),
                   "batch-1-1": {"status": "FAILED", "error": "CellExecutionError", "cause": "Cell 2 raised ZeroDivisionError"},
                   "batch-1-2": _ok("batch-1-2")})
    outcome = summarize_batch(_state(3), svc, sfn=sfn)
    assert outcome["status"] == "FAILED" and outcome["error"] == "BatchFailed"
    assert outcome["cause"].startswith(
        "1 of 3 runs failed (tolerated: 0%): run 1 (batch-1-1) FAILED: CellExecutionError: Cell 2 raised")
    assert outcome["cause"].endswith("batch result: s3://b/runs/batch-1/batch.json")
    saved = json.loads(svc.store.written["s3://b/runs/batch-1/batch.json"])
    assert [r["status"] for r in saved["runs"]] == ["SUCCEEDED", "FAILED", "SUCCEEDED"]
    assert saved["runs"][0]["output"]["output_notebook"] == "s3://b/runs/batch-1-0/n.ipynb"


def test_tolerated_failures_and_children_that_never_started():
    sfn = FakeSfn({"batch-1-0": _ok("batch-1-0"),
                   "batch-1-1": {"status": "FAILED", "error": "CellTimeout", "cause": "slow"}})
    assert summarize_batch(_state(2, tolerated=50), services(), sfn=sfn)["status"] == "SUCCEEDED"
    outcome = summarize_batch(_state(3, tolerated=50), services(), sfn=sfn)  # batch-1-2 never started
    assert outcome["status"] == "FAILED"
    assert "run 2 (batch-1-2) NOT_STARTED" in outcome["cause"]


def test_an_invalid_batch_ends_as_payload_invalid():
    outcome = summarize_batch({"error": {"Error": "PayloadInvalid",
                                         "Cause": json.dumps({"errorMessage": "Invalid batch: run 1: …"})}},
                              services(), sfn=FakeSfn({}))
    assert (outcome["status"], outcome["error"], outcome["cause"]) == ("FAILED", "PayloadInvalid", "Invalid batch: run 1: …")


def test_cli_reads_parameter_sets_from_json_or_yaml_and_checks_each_set(tmp_path):
    from studiorunner_cli.batch import load_parameter_sets, validate_batch
    from studiorunner_cli.parameters import UsageError

    (tmp_path / "sets.json").write_text('[{"x": 1}, {"x": [2, 3]}]')
    (tmp_path / "sets.yaml").write_text("- x: 1\n- {x: 2, y: two}\n")
    (tmp_path / "bad.yaml").write_text("x: 1\n")
    assert load_parameter_sets(str(tmp_path / "sets.json")) == [{"x": 1}, {"x": [2, 3]}]
    assert load_parameter_sets(str(tmp_path / "sets.yaml")) == [{"x": 1}, {"x": 2, "y": "two"}]
    with pytest.raises(UsageError, match="must hold a non-empty list of objects"):
        load_parameter_sets(str(tmp_path / "bad.yaml"))
    with pytest.raises(UsageError, match="set 1: .*parameter name '' must be a non-empty string"):
        validate_batch({"notebook": "n.ipynb", "parameter_sets": [{"ok": 1}, {"": 2}], "max_concurrency": 2})
    validate_batch({"notebook": "n.ipynb", "parameter_sets": [{"ok": 1}], "max_concurrency": 2})
