"""What `cdk deploy` would create, read from the synthesized template."""

from __future__ import annotations

import json
import re
from typing import Any

from aws_cdk.assertions import Capture, Match
from cfnlint.api import ManualArgs, lint_file

from infra.bundling import RUNTIME
from studiorunner.catalog import STEPS
from studiorunner.naming import is_valid_name, schedule_run_prefix
from tests.infra.conftest import ROOT

HANDLERS = {step.handler for step in STEPS} | {
    f"studiorunner.steps.{name}.handler" for name in (
        "s3_trigger", "execution_ended", "render_page", "notify", "webhook")}


def resources(template_json: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template_json["Resources"].items() if v["Type"] == type_}


def _resolve_definition(prop: Any, substitutions: dict[str, Any], fake_arn) -> str:
    """The DefinitionString as Step Functions will see it, with fake ARNs for the functions."""
    text = prop if isinstance(prop, str) else "".join(
        p if isinstance(p, str) else json.dumps(p) for p in prop["Fn::Join"][1])
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", fake_arn(name, value))
    return text


def _function_by_logical_id(template_json) -> dict[str, dict[str, Any]]:
    return resources(template_json, "AWS::Lambda::Function")


def test_the_definition_is_the_file_with_function_arns_substituted_and_the_run_deadline(synthesized):
    machines = resources(synthesized.template_json, "AWS::StepFunctions::StateMachine")
    assert len(machines) == 1
    props = next(iter(machines.values()))["Properties"]
    substitutions = props["DefinitionSubstitutions"]
    functions = _function_by_logical_id(synthesized.template_json)

    # Each placeholder is the ARN of the function with the matching handler.
    expected_handler = {step.placeholder: step.handler for step in STEPS}
    assert set(substitutions) == set(expected_handler)
    for placeholder, value in substitutions.items():
        logical_id = value["Fn::GetAtt"][0]
        assert value == {"Fn::GetAtt": [logical_id, "Arn"]}
        assert functions[logical_id]["Properties"]["Handler"] == expected_handler[placeholder]

    deployed = json.loads(_resolve_definition(props["DefinitionString"], substitutions,
                                              lambda name, _: f"arn:aws:lambda:eu-west-1:123456789012:function:{name}"))
    source = synthesized.definition_path.read_text()
    for name in substitutions:
        source = source.replace("${" + name + "}", f"arn:aws:lambda:eu-west-1:123456789012:function:{name}")
    expected = json.loads(source)
    expected["TimeoutSeconds"] = synthesized.config.max_run_hours * 3600
    assert deployed == expected
    assert "${" not in json.dumps(deployed)


def test_the_state_machine_is_standard_traced_and_logs_everything(synthesized):
    synthesized.template.has_resource_properties("AWS::StepFunctions::StateMachine", {
        "StateMachineType": "STANDARD",
        "TracingConfiguration": {"Enabled": True},
        "LoggingConfiguration": Match.object_like({"Level": "ALL", "IncludeExecutionData": True,
                                                   "Destinations": Match.any_value()}),
    })


def test_the_definition_is_valid_asl(synthesized, tmp_path):
    """cfn-lint's E3601 validates a state machine definition against the ASL schema."""
    props = next(iter(resources(synthesized.template_json, "AWS::StepFunctions::StateMachine").values()))["Properties"]
    definition = _resolve_definition(props["DefinitionString"], props["DefinitionSubstitutions"],
                                      lambda name, _: f"arn:aws:lambda:eu-west-1:123456789012:function:{name}")
    template = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"Machine": {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {"RoleArn": "arn:aws:iam::123456789012:role/runner", "Definition": json.loads(definition)}}}}
    path = tmp_path / "asl.json"
    path.write_text(json.dumps(template))
    matches = lint_file(path, ManualArgs(regions=["eu-west-1"]))
    assert [str(m) for m in matches] == []


def test_every_lambda_runs_the_python_the_bundle_tests_run_on(synthesized):
    """`make test-bundle` runs the Lambda-side tests on 3.13 (tests/infra/bundle_plugin.py
    refuses any other): the runtime deployed must be that one."""
    from tests.infra.bundle_plugin import RUNTIME_VERSION

    assert RUNTIME.name == "python{}.{}".format(*RUNTIME_VERSION)
    assert f"PYENV_VERSION={RUNTIME_VERSION[0]}.{RUNTIME_VERSION[1]}" in (ROOT / "Makefile").read_text()
    functions = _function_by_logical_id(synthesized.template_json)
    assert {f["Properties"]["Handler"] for f in functions.values()} == HANDLERS
    for fn in functions.values():
        props = fn["Properties"]
        assert props["Runtime"] == RUNTIME.name
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert "LoggingConfig" in props  # its own log group, with retention (next test)


def test_every_function_logs_to_a_group_with_the_configured_retention(synthesized):
    groups = resources(synthesized.template_json, "AWS::Logs::LogGroup")
    functions = _function_by_logical_id(synthesized.template_json)
    for fn in functions.values():
        group = fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert groups[group]["Properties"]["RetentionInDays"] == 14


def test_step_functions_get_the_run_environment(synthesized):
    targets_json = Capture()
    for step in STEPS:
        synthesized.template.has_resource_properties("AWS::Lambda::Function", {
            "Handler": step.handler,
            "MemorySize": 2048,
            "Timeout": 840 if step.name in ("RunCells", "RunCommands") else 300,
            "Environment": {"Variables": {
                "STUDIO_RUNNER_TARGETS": targets_json,
                "STUDIO_RUNNER_DEFAULT_TARGET": "analytics-space",
                "STUDIO_RUNNER_BUCKET": {"Ref": Match.any_value()},
                "STUDIO_RUNNER_MAX_RUN_SECONDS": str(12 * 3600),
                "POWERTOOLS_SERVICE_NAME": "studio-runner",
                "POWERTOOLS_METRICS_NAMESPACE": "StudioRunner",
            }},
        })
    from tests.infra.conftest import CONTEXT
    assert json.loads(targets_json.as_string()) == CONTEXT["targets"]


def test_each_schedule_starts_a_run_named_for_it_in_its_time_zone(synthesized):
    """Issue 10: a schedule's runs are named ``<schedule>-<scheduler execution id>``, so the
    universal target calls StartExecution with the name (the Step Functions target cannot)."""
    for entry in synthesized.config.schedules:
        target = Capture()
        synthesized.template.has_resource_properties("AWS::Scheduler::Schedule", {
            # Named, in the stack's own group: the CLI lists them as the stack's (issue 15).
            "Name": entry.name,
            "GroupName": "studio-runner-stack-schedules",
            "ScheduleExpression": entry.expression,
            "ScheduleExpressionTimezone": entry.timezone,
            "State": "ENABLED",
            "Target": target,
            "Description": Match.string_like_regexp(entry.name) if not entry.description else entry.description,
        })
        assert _joined(target.as_object()["Arn"]) == "arn:aws:scheduler:::aws-sdk:sfn:startExecution"
        assert target.as_object()["RetryPolicy"]["MaximumRetryAttempts"] == 3
        assert "DeadLetters" in target.as_object()["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
        request = json.loads(_joined(target.as_object()["Input"]))
        assert request["StateMachineArn"] == "STATE_MACHINE_ARN"
        assert request["Name"] == f"{entry.name}-<aws.scheduler.execution-id>"
        assert json.loads(request["Input"]) == {**entry.payload, "schedule": {"name": entry.name, "overlap": "skip"}}
        # Scheduler puts in its id; the name Step Functions gets is one it accepts
        name = request["Name"].replace("<aws.scheduler.execution-id>", "d32c5kddcf5bb8c3")
        assert is_valid_name(name)
    synthesized.template.resource_count_is("AWS::Scheduler::Schedule", len(synthesized.config.schedules))
    synthesized.template.has_resource_properties("AWS::IAM::Policy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Action": "states:StartExecution", "Effect": "Allow",
                           "Resource": {"Ref": Match.string_like_regexp("StateMachine")}})])}})


def test_a_long_schedule_name_still_makes_valid_run_names():
    prefix = schedule_run_prefix("a-very-long-schedule-name-for-the-quarterly-finance-report.v2")
    assert is_valid_name(prefix + "d" * 38)
    assert prefix.startswith("a-very-long-schedule-name") and prefix.endswith("-")


def _joined(value) -> str:
    """A template string with its references put in: the partition ``aws``, the state machine's ARN."""
    if isinstance(value, str):
        return value
    names = {"AWS::Partition": "aws"}
    return "".join(p if isinstance(p, str) else names.get(p.get("Ref"), "STATE_MACHINE_ARN")
                   for p in value["Fn::Join"][1])


def test_the_s3_trigger_rule_matches_created_objects_under_the_inbox(synthesized):
    function = Capture()
    synthesized.template.has_resource_properties("AWS::Events::Rule", {
        "EventPattern": {
            "source": ["aws.s3"],
            "detail-type": ["Object Created"],
            "detail": {"bucket": {"name": [{"Ref": Match.any_value()}]},
                       "object": {"key": [{"prefix": "uploads/"}]}},
        },
        "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [function, "Arn"]}})],
    })
    trigger = synthesized.template_json["Resources"][function.as_string()]["Properties"]
    assert trigger["Handler"] == "studiorunner.steps.s3_trigger.handler"
    assert set(trigger["Environment"]["Variables"]) >= {
        "STUDIO_RUNNER_STATE_MACHINE_ARN", "STUDIO_RUNNER_INBOX_PREFIX", "STUDIO_RUNNER_BUCKET"}
    assert trigger["Environment"]["Variables"]["STUDIO_RUNNER_INBOX_PREFIX"] == "uploads/"


def test_the_bucket_sends_events_to_eventbridge_and_is_private_and_encrypted(synthesized):
    synthesized.template.has_resource_properties("AWS::S3::Bucket", {
        "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}},
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                           "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
        "LoggingConfiguration": Match.object_like({"DestinationBucketName": Match.any_value()}),
        "LifecycleConfiguration": {"Rules": Match.array_with([
            Match.object_like({"AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}),
            Match.object_like({"Prefix": "runs/", "ExpirationInDays": 90, "Status": "Enabled"}),
        ])},
    })


def test_every_bucket_denies_requests_without_tls(synthesized):
    policies = resources(synthesized.template_json, "AWS::S3::BucketPolicy")
    buckets = resources(synthesized.template_json, "AWS::S3::Bucket")
    assert {p["Properties"]["Bucket"]["Ref"] for p in policies.values()} == set(buckets)
    for policy in policies.values():
        assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                   and s["Principal"] == {"AWS": "*"} for s in policy["Properties"]["PolicyDocument"]["Statement"])


def _statements(template_json) -> list[dict[str, Any]]:
    found = []
    for resource in template_json["Resources"].values():
        props = resource.get("Properties", {})
        docs = [props.get("PolicyDocument")] + [p.get("PolicyDocument") for p in props.get("Policies", [])]
        for doc in filter(None, docs):
            found += doc["Statement"]
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_iam_statement_grants_a_sagemaker_action_on_everything(synthesized):
    statements = _statements(synthesized.template_json)
    sagemaker = [s for s in statements if any(str(a).startswith("sagemaker:") for a in _as_list(s["Action"]))]
    assert sagemaker, "the target permissions are missing"
    for statement in sagemaker:
        assert statement["Effect"] == "Allow"
        for resource in _as_list(statement["Resource"]):
            assert resource != "*"
            text = json.dumps(resource)
            assert re.search(r"(user-profile|space|app|domain|notebook-instance)/", text), text


def _join(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "".join(p if isinstance(p, str) else f"<{json.dumps(p)}>" for p in value["Fn::Join"][1])


def test_presigned_urls_are_allowed_only_for_the_configured_users_spaces_and_instances(synthesized):
    statements = _statements(synthesized.template_json)
    login = {_join(r) for s in statements if "sagemaker:CreatePresignedDomainUrl" in _as_list(s["Action"])
             for r in _as_list(s["Resource"])}
    partition = '<{"Ref": "AWS::Partition"}>'
    assert login == {
        f"arn:{partition}:sagemaker:eu-west-1:123456789012:user-profile/d-abc123/alice",
        f"arn:{partition}:sagemaker:eu-west-1:123456789012:space/d-abc123/analytics",
        f"arn:{partition}:sagemaker:us-east-1:123456789012:user-profile/d-abc123/bob",
    }
    instances = {_join(r) for s in statements
                 if "sagemaker:CreatePresignedNotebookInstanceUrl" in _as_list(s["Action"])
                 for r in _as_list(s["Resource"])}
    assert instances == {f"arn:{partition}:sagemaker:eu-west-1:123456789012:notebook-instance/my-instance"}
    apps = {_join(r) for s in statements if "sagemaker:CreateApp" in _as_list(s["Action"])
            for r in _as_list(s["Resource"])}
    assert apps == {f"arn:{partition}:sagemaker:eu-west-1:123456789012:app/d-abc123/analytics/*",
                    f"arn:{partition}:sagemaker:us-east-1:123456789012:app/d-abc123/bob/*"}
    secrets = {_join(r) for s in statements if "secretsmanager:GetSecretValue" in _as_list(s["Action"])
               for r in _as_list(s["Resource"])}
    from tests.infra.conftest import WEBHOOK_SECRET_ARN  # the Webhook function's own, read by nothing else

    assert secrets == {"arn:aws:secretsmanager:eu-west-1:123456789012:secret:jupyter-token-??????", WEBHOOK_SECRET_ARN}





def test_prepare_and_the_s3_trigger_cannot_reach_any_target(synthesized):
    functions = _function_by_logical_id(synthesized.template_json)
    roles_without_targets = {fn["Properties"]["Role"]["Fn::GetAtt"][0] for fn in functions.values()
                             if fn["Properties"]["Handler"] in ("studiorunner.steps.prepare.handler", "studiorunner.steps.s3_trigger.handler")}
    for policy in resources(synthesized.template_json, "AWS::IAM::Policy").values():
        if {r["Ref"] for r in policy["Properties"]["Roles"]} & roles_without_targets:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                assert not any(a.startswith(("sagemaker:", "secretsmanager:")) for a in _as_list(statement["Action"]))


def test_aborted_and_timed_out_runs_are_cleaned_up_and_failures_notified(synthesized):
    cleaner = Capture()
    synthesized.template.has_resource_properties("AWS::Events::Rule", {
        "EventPattern": {"source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"],
                         "detail": {"stateMachineArn": [{"Ref": Match.any_value()}],
                                    "status": ["ABORTED", "TIMED_OUT"]}},
        "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [cleaner, "Arn"]}})],
    })
    assert synthesized.template_json["Resources"][cleaner.as_string()]["Properties"]["Handler"] == \
        "studiorunner.steps.execution_ended.handler"
    synthesized.template.has_resource_properties("AWS::IAM::Policy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Action": ["states:DescribeExecution", "states:GetExecutionHistory"]})])}})

    synthesized.template.has_resource("AWS::SNS::Topic", {"Properties": Match.object_like(
        {"TopicName": "studio-runner-runs", "KmsMasterKeyId": Match.any_value()})})
    synthesized.template.has_resource_properties("AWS::SNS::Subscription", {
        "Protocol": "email", "Endpoint": "ops@example.com", "TopicArn": {"Ref": Match.string_like_regexp("NotificationsTopic")}})


def test_the_page_is_rendered_by_a_function_of_its_own_that_only_cleanup_and_execution_ended_invoke(synthesized):
    from studiorunner.report.render import INVOKE_READ_TIMEOUT_SECONDS, RENDER_TIMEOUT_SECONDS

    functions = _function_by_logical_id(synthesized.template_json)
    [render] = [k for k, f in functions.items()
                if f["Properties"]["Handler"] == "studiorunner.steps.render_page.handler"]
    callers = {f["Properties"]["Handler"] for f in functions.values()
               if (f["Properties"].get("Environment") or {}).get("Variables", {}).get(
                   "STUDIO_RUNNER_RENDER_FUNCTION") == {"Ref": render}}
    assert callers == {"studiorunner.steps.cleanup.handler", "studiorunner.steps.execution_ended.handler"}
    invokers = [p for p in resources(synthesized.template_json, "AWS::IAM::Policy").values()
                for s in p["Properties"]["PolicyDocument"]["Statement"]
                if s["Action"] == "lambda:InvokeFunction" and {"Fn::GetAtt": [render, "Arn"]} in _as_list(s["Resource"])]
    assert len(invokers) == 2
    # Cleanup waits for it (one attempt) inside its own 5 minutes; a whole core to render on.
    props = functions[render]["Properties"]
    assert props["Timeout"] == RENDER_TIMEOUT_SECONDS < INVOKE_READ_TIMEOUT_SECONDS < 300
    assert props["MemorySize"] >= 1769


def test_cdk_nag_aws_solutions_has_no_unacknowledged_findings(synthesized):
    assert synthesized.validation_error is None, str(synthesized.validation_error)
    for report in synthesized.validation_report.get("pluginReports", []):
        assert report.get("conclusion") != "failure", json.dumps(report.get("violations"), indent=1)[:5000]


def test_cdk_nag_acknowledgements_all_carry_a_reason(synthesized):
    acknowledgements = [entry for resource in synthesized.template_json["Resources"].values()
                        for entry in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])]
    assert acknowledgements, "expected the IAM5 acknowledgements in the template metadata"
    for entry in acknowledgements:
        assert len(entry.get("reason", "")) >= 20, entry


def test_cfn_lint_reports_no_errors(synthesized):
    matches = lint_file(synthesized.template_path, ManualArgs(regions=["eu-west-1"]))
    # W3005 (an explicit DependsOn that a reference already implies) is CDK's doing.
    assert [str(m) for m in matches if m.rule.id != "W3005"] == []


def _vpc_context():
    from tests.infra.conftest import CONTEXT
    return CONTEXT["vpc"]


def test_every_function_runs_in_the_configured_vpc(synthesized):
    vpc = _vpc_context()
    functions = _function_by_logical_id(synthesized.template_json)
    assert len(functions) == len(HANDLERS)
    for fn in functions.values():
        assert fn["Properties"]["VpcConfig"] == {"SubnetIds": vpc["subnet_ids"],
                                                 "SecurityGroupIds": vpc["security_group_ids"]}


def test_a_studio_classic_target_is_a_synth_warning(synthesized):
    from aws_cdk.assertions import Annotations
    Annotations.from_stack(synthesized.stack).has_warning(
        "*", Match.string_like_regexp("target 'legacy' is studio-classic.*retired"))


def _queue_alarm_notifies_topic(synthesized, queue_logical_id: str) -> None:
    synthesized.template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "MetricName": "ApproximateNumberOfMessagesVisible", "Namespace": "AWS/SQS",
        "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_logical_id, "QueueName"]}}],
        "AlarmActions": [{"Ref": Match.string_like_regexp("NotificationsTopic")}],
    })


def test_what_eventbridge_invokes_keeps_what_fails_and_tells_the_topic(synthesized):
    """The S3 trigger and ExecutionEnded are invoked asynchronously: a failed delivery (rule
    DLQ) and a failed invocation (on-failure destination) both land in a queue whose alarm
    notifies the topic."""
    functions = _function_by_logical_id(synthesized.template_json)
    for handler in ("studiorunner.steps.s3_trigger.handler", "studiorunner.steps.execution_ended.handler"):
        logical_id = next(k for k, f in functions.items() if f["Properties"]["Handler"] == handler)
        queue = Capture()
        synthesized.template.has_resource_properties("AWS::Events::Rule", {
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [logical_id, "Arn"]},
                                           "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [queue, "Arn"]}}})]})
        synthesized.template.has_resource_properties("AWS::Lambda::EventInvokeConfig", {
            "FunctionName": {"Ref": logical_id},
            "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [queue.as_string(), "Arn"]}}}})
        _queue_alarm_notifies_topic(synthesized, queue.as_string())


def test_one_message_per_ended_run_is_written_by_notify_from_the_runs_record(synthesized):
    """No input transformer over the raw event: a rule on every ended status (SUCCEEDED too with
    notify_on_success) invokes Notify, which reads the record and publishes to the runs topic."""
    functions = _function_by_logical_id(synthesized.template_json)
    [notify] = [k for k, f in functions.items() if f["Properties"]["Handler"] == "studiorunner.steps.notify.handler"]
    queue = Capture()
    synthesized.template.has_resource_properties("AWS::Events::Rule", {
        "EventPattern": Match.object_like({"detail": {"stateMachineArn": [{"Ref": Match.any_value()}],
                                                      "status": ["FAILED", "TIMED_OUT", "ABORTED", "SUCCEEDED"]}}),
        "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [notify, "Arn"]},
                                       "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [queue, "Arn"]}}})]})
    rules = json.dumps(resources(synthesized.template_json, "AWS::Events::Rule"))
    assert "InputTransformer" not in rules and "InputTemplate" not in rules
    synthesized.template.has_resource_properties("AWS::Lambda::EventInvokeConfig", {
        "FunctionName": {"Ref": notify},
        "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [queue.as_string(), "Arn"]}}}})
    _queue_alarm_notifies_topic(synthesized, queue.as_string())
    variables = functions[notify]["Properties"]["Environment"]["Variables"]
    assert "NotificationsTopic" in variables["STUDIO_RUNNER_TOPIC_ARN"]["Ref"]
    assert variables["STUDIO_RUNNER_DEFAULT_TARGET"] == "analytics-space"
    statements = json.dumps([p["Properties"]["PolicyDocument"] for p in
                             resources(synthesized.template_json, "AWS::IAM::Policy").values()
                             if any(r.get("Ref") == functions[notify]["Properties"]["Role"]["Fn::GetAtt"][0]
                                    for r in p["Properties"]["Roles"])])
    for action in ("sns:Publish", "states:DescribeExecution", "states:GetExecutionHistory", "s3:GetObject"):
        assert action in statements, action
    assert "sagemaker:" not in statements and "secretsmanager:" not in statements  # it reaches no target


def test_the_webhook_reads_its_url_from_secrets_manager_and_dead_letters_what_fails(synthesized):
    from tests.infra.conftest import WEBHOOK_SECRET_ARN

    functions = _function_by_logical_id(synthesized.template_json)
    [hook] = [k for k, f in functions.items() if f["Properties"]["Handler"] == "studiorunner.steps.webhook.handler"]
    assert functions[hook]["Properties"]["Environment"]["Variables"]["STUDIO_RUNNER_WEBHOOK_SECRET_ARN"] == \
        WEBHOOK_SECRET_ARN
    queue = Capture()
    synthesized.template.has_resource_properties("AWS::SNS::Subscription", {
        "Protocol": "lambda", "Endpoint": {"Fn::GetAtt": [hook, "Arn"]},
        "TopicArn": {"Ref": Match.string_like_regexp("NotificationsTopic")},
        "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [queue, "Arn"]}}})
    synthesized.template.has_resource_properties("AWS::Lambda::EventInvokeConfig", {
        "FunctionName": {"Ref": hook}, "MaximumRetryAttempts": 2,
        "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [queue.as_string(), "Arn"]}}}})
    _queue_alarm_notifies_topic(synthesized, queue.as_string())
    synthesized.template.has_resource_properties("AWS::IAM::Policy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Action": "secretsmanager:GetSecretValue", "Resource": WEBHOOK_SECRET_ARN})])}})


def test_per_run_alarms_go_to_the_alarms_topic_never_a_second_email_to_the_runs_subscribers(synthesized):
    synthesized.template.has_resource_properties("AWS::SNS::Topic", {"TopicName": "studio-runner-alarms"})
    synthesized.template.has_resource_properties("AWS::SNS::Subscription", {
        "Protocol": "email", "Endpoint": "oncall@example.com",
        "TopicArn": {"Ref": Match.string_like_regexp("NotificationsAlarmTopic")}})
    for alarm in resources(synthesized.template_json, "AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        [action] = props["AlarmActions"]
        per_run = props.get("MetricName") in ("RunsFailed", "CleanupFailures")
        assert ("NotificationsAlarmTopic" in action["Ref"]) is per_run, props["AlarmName"]


def _principal_statements(template_json, type_: str, key: str) -> list[dict[str, Any]]:
    return [s for r in resources(template_json, type_).values() for s in r["Properties"][key]["Statement"]
            if isinstance(s.get("Principal"), dict) and "Service" in s["Principal"] and s["Effect"] == "Allow"]


def test_grants_to_cloudwatch_name_the_alarms_and_the_account(synthesized):
    """Only CloudWatch alarms publish to the topics as a service (EventBridge invokes Notify,
    which publishes with its own role)."""
    topic = _principal_statements(synthesized.template_json, "AWS::SNS::TopicPolicy", "PolicyDocument")
    key = _principal_statements(synthesized.template_json, "AWS::KMS::Key", "KeyPolicy")
    assert {s["Principal"]["Service"] for s in topic} == {"cloudwatch.amazonaws.com"}
    assert {s["Principal"]["Service"] for s in key} == {"cloudwatch.amazonaws.com"}
    for statement in topic + key:
        conditions = statement["Condition"]
        assert conditions["StringEquals"] == {"aws:SourceAccount": "123456789012"}, statement
        source = conditions.get("ArnEquals", conditions.get("ArnLike", {}))["aws:SourceArn"]
        text = " ".join(_join(s) for s in _as_list(source))
        assert re.search(r":events:eu-west-1:123456789012:rule/studio-runner-run-|"
                         r":cloudwatch:eu-west-1:123456789012:alarm:studio-runner-\*", text), text


def test_dashboard_and_alarms_per_target_read_the_metrics_the_lambdas_emit(synthesized):
    from infra import observability
    from studiorunner.steps import _metrics

    assert set(observability.METRIC_NAMES) == set(_metrics.METRIC_NAMES)
    synthesized.template.has_resource_properties("AWS::CloudWatch::Dashboard",
                                                 {"DashboardName": "studio-runner-runs"})
    body = json.dumps(next(iter(resources(synthesized.template_json, "AWS::CloudWatch::Dashboard").values())))
    for name in observability.METRIC_NAMES:
        assert name in body, name
    for target in synthesized.config.targets:
        for metric, alarm in (("RunsFailed", "failed-runs"), ("CleanupFailures", "cleanup-failures")):
            synthesized.template.has_resource_properties("AWS::CloudWatch::Alarm", {
                "AlarmName": f"studio-runner-{target}-{alarm}",
                "Namespace": "StudioRunner", "MetricName": metric, "Statistic": "Sum", "Threshold": 1,
                "Dimensions": [{"Name": "service", "Value": "studio-runner"}, {"Name": "target", "Value": target}],
                "AlarmActions": [{"Ref": Match.string_like_regexp("NotificationsAlarmTopic")}],
            })
