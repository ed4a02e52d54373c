"""The concurrency slots (issue 11.1) in the synthesized template: the table, its grants, the wait loop."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match

from infra.concurrency import TABLE_ENV


def _resources(template_json: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template_json["Resources"].items() if v["Type"] == type_}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_of(template_json: dict[str, Any], handler: str) -> str:
    for fn in _resources(template_json, "AWS::Lambda::Function").values():
        if fn["Properties"]["Handler"] == handler:
            return fn["Properties"]["Role"]["Fn::GetAtt"][0]
    raise AssertionError(f"no function with handler {handler}")


def _statements_of(template_json: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [statement for policy in _resources(template_json, "AWS::IAM::Policy").values()
            if role in {r["Ref"] for r in policy["Properties"]["Roles"]}
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]]


def _table(template_json: dict[str, Any]) -> str:
    tables = _resources(template_json, "AWS::DynamoDB::GlobalTable")
    assert len(tables) == 1, tables
    return next(iter(tables))


def test_one_slots_table_keyed_by_target_on_demand_encrypted_with_recovery(synthesized):
    synthesized.template.has_resource_properties("AWS::DynamoDB::GlobalTable", {
        "KeySchema": [{"AttributeName": "target", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "target", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
        "Replicas": [Match.object_like({"PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True}})],
    })


def test_steps_that_take_or_give_back_slots_know_the_table(synthesized):
    table = _table(synthesized.template_json)
    for handler in ("studiorunner.steps.acquire_slot.handler", "studiorunner.steps.cleanup.handler", "studiorunner.steps.execution_ended.handler"):
        synthesized.template.has_resource_properties("AWS::Lambda::Function", {
            "Handler": handler,
            "Environment": {"Variables": Match.object_like({TABLE_ENV: {"Ref": table}})},
        })


def test_slot_grants_are_item_reads_and_conditional_updates_on_that_table_only(synthesized):
    template_json = synthesized.template_json
    table = _table(template_json)
    for handler in ("studiorunner.steps.acquire_slot.handler", "studiorunner.steps.cleanup.handler", "studiorunner.steps.execution_ended.handler"):
        dynamodb = [s for s in _statements_of(template_json, _role_of(template_json, handler))
                    if any(a.startswith("dynamodb:") for a in _as_list(s["Action"]))]
        assert dynamodb, handler
        for statement in dynamodb:
            assert sorted(_as_list(statement["Action"])) == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
            assert _as_list(statement["Resource"]) == [{"Fn::GetAtt": [table, "Arn"]}]
    # Only those three functions touch the table.
    for fn in _resources(template_json, "AWS::Lambda::Function").values():
        handler = fn["Properties"]["Handler"]
        if handler in ("studiorunner.steps.acquire_slot.handler", "studiorunner.steps.cleanup.handler", "studiorunner.steps.execution_ended.handler"):
            continue
        statements = _statements_of(template_json, fn["Properties"]["Role"]["Fn::GetAtt"][0])
        assert not any(a.startswith("dynamodb:") for s in statements for a in _as_list(s["Action"])), handler


def test_acquire_slot_may_check_on_holders_of_this_state_machine_only(synthesized):
    template_json = synthesized.template_json
    statements = _statements_of(template_json, _role_of(template_json, "studiorunner.steps.acquire_slot.handler"))
    describe = [s for s in statements if "states:DescribeExecution" in _as_list(s["Action"])]
    assert len(describe) == 1 and _as_list(describe[0]["Action"]) == ["states:DescribeExecution"]
    resource = json.dumps(describe[0]["Resource"])
    assert ":execution:" in resource and "GetAtt" in resource and "Name" in resource, resource


def test_the_definition_waits_for_a_slot_before_starting_the_target(synthesized):
    definition = json.loads(synthesized.definition_path.read_text())
    states = definition["States"]
    assert states["Prepare"]["Next"] == "AcquireSlot"
    acquire = states["AcquireSlot"]
    assert acquire["Resource"] == "${AcquireSlotFunctionArn}" and acquire["ResultPath"] == "$.slot"
    assert acquire["Parameters"]["execution.$"] == "$$.Execution.Id"  # the holder, for DescribeExecution
    assert acquire["Catch"][0]["Next"] == "Cleanup"
    choice = states[acquire["Next"]]
    assert choice["Type"] == "Choice" and choice["Default"] == "StartTarget"
    wait = states[choice["Choices"][0]["Next"]]
    assert wait["Type"] == "Wait" and wait["SecondsPath"] == "$.slot.wait_seconds" and wait["Next"] == "AcquireSlot"


def test_a_batch_runs_children_of_this_state_machine_through_an_inline_or_a_distributed_map(synthesized):
    states = json.loads(synthesized.definition_path.read_text())["States"]
    # A schedule's fire checks its overlap first (the batch is the fire), then IsBatch?.
    assert states["Start"]["Next"] == "IsScheduled?" and states["IsScheduled?"]["Default"] == "IsBatch?"
    maps = {name: s for name, s in states.items() if s["Type"] == "Map"}
    assert sorted(maps) == ["RunBatchDistributed", "RunBatchInline"]
    assert maps["RunBatchDistributed"]["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED",
                                                                               "ExecutionType": "STANDARD"}
    for state in maps.values():
        assert state["MaxConcurrencyPath"] == "$.batch.max_concurrency" and state["Next"] == "SummarizeBatch"
        child = state["ItemProcessor"]["States"]["RunChild"]
        assert child["Resource"] == "arn:aws:states:::states:startExecution.sync:2"
        assert child["Catch"][0]["Next"] == "ChildFailed"  # one failing child does not stop the others
    assert states["SummarizeBatch"]["Next"] == "Succeeded?"


def test_the_state_machine_may_start_and_watch_only_its_own_children(synthesized):
    template_json = synthesized.template_json
    machine = next(iter(_resources(template_json, "AWS::StepFunctions::StateMachine").values()))
    role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    statements = _statements_of(template_json, role)
    start = [s for s in statements if "states:StartExecution" in _as_list(s["Action"])]
    assert len(start) == 1 and len(_as_list(start[0]["Resource"])) == 1
    assert ":stateMachine:" in json.dumps(start[0]["Resource"])
    events = [s for s in statements if any(a.startswith("events:") for a in _as_list(s["Action"]))]
    assert events and all("StepFunctionsGetEventsForStepFunctionsExecutionRule" in json.dumps(s["Resource"])
                          for s in events)
    summarize = _statements_of(template_json, _role_of(template_json, "studiorunner.steps.summarize_batch.handler"))
    assert [_as_list(s["Action"]) for s in summarize if any(a.startswith("states:") for a in _as_list(s["Action"]))] \
        == [["states:DescribeExecution"]]
