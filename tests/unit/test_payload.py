"""The payload schema: bad input fails with a named error that lists every problem."""

import pytest

from studiorunner.config import RunnerConfig
from studiorunner.errors import PayloadInvalid, TargetNotAllowed
from studiorunner.payload import RunSpec, validate_payload


def test_full_payload_is_accepted():
    spec = validate_payload({
        "target": "analytics-space",
        "notebook": "reports/daily.ipynb",
        "parameters": {"run_date": "2026-11-22", "alpha": 0.5},
        "kernel": {"name": "python3", "instance_type": "ml.t3.medium"},
        "timeouts": {"cell_seconds": 3600, "run_seconds": 86400},
        "cleanup": {"app": "if_created"},
    })
    assert spec.notebook == "reports/daily.ipynb"
    assert spec.parameters == {"run_date": "2026-11-22", "alpha": 0.5}
    assert spec.kernel_name == "python3" and spec.instance_type == "ml.t3.medium"
    assert spec.timeouts.cell_seconds == 3600


def test_unknown_keys_are_errors_with_their_names():
    with pytest.raises(PayloadInvalid) as info:
        validate_payload({"notebook": "a.ipynb", "parmeters": {}, "timeouts": {"cell": 3}})
    message = str(info.value)
    assert "'parmeters'" in message and "timeouts.'cell'" in message


def test_every_problem_is_listed_at_once():
    with pytest.raises(PayloadInvalid) as info:
        validate_payload({"notebook": "a.txt", "notebook_s3": "s3://bucket/k.ipynb", "cleanup": {"app": "sometimes"},
                          "parameters": {"": 1}})
    problems = info.value.facts["problems"]
    assert len(problems) == 4


@pytest.mark.parametrize("payload", [
    {},
    [],
    {"notebook": "/etc/passwd.ipynb"},
    {"notebook": "../up.ipynb"},
    {"notebook_s3": "https://example.com/x.ipynb"},
    {"notebook": "a.ipynb", "timeouts": {"cell_seconds": -1}},
    {"notebook": "a.ipynb", "timeouts": {"cell_seconds": True}},
    {"notebook": "a.ipynb", "allow_errors": "yes"},
    {"commands": ["ls", ""]},
])
def test_invalid_payloads(payload):
    with pytest.raises(PayloadInvalid):
        validate_payload(payload)


def test_run_seconds_past_the_state_machine_limit_is_a_payload_error():
    with pytest.raises(PayloadInvalid, match="state machine stops every run after 3600"):
        validate_payload({"notebook": "a.ipynb", "timeouts": {"run_seconds": 7200}}, max_run_seconds=3600)


def test_commands_alone_are_a_run():
    spec = validate_payload({"commands": ["pip list"]})
    assert spec.commands == ["pip list"] and spec.notebook is None


def test_targets_come_only_from_config():
    config = RunnerConfig.from_env({
        "STUDIO_RUNNER_TARGETS": '{"a": {"type": "studio-space", "domain_id": "d-1", "user_profile": "u", "space_name": "s"}}',
        "STUDIO_RUNNER_DEFAULT_TARGET": "a",
        "STUDIO_RUNNER_BUCKET": "b",
    })
    assert config.target(None).space_name == "s"
    with pytest.raises(TargetNotAllowed, match="'elsewhere' is not configured .*configured: a"):
        config.target("elsewhere")


def test_config_rejects_incomplete_targets():
    with pytest.raises(ValueError, match="needs space_name"):
        RunnerConfig.from_env({"STUDIO_RUNNER_TARGETS": '{"a": {"type": "studio-space", "domain_id": "d", "user_profile": "u"}}'})


@pytest.mark.parametrize("payload, expected", [
    ({"notebook": 42}, "'notebook' must be a path ending in .ipynb, got 42"),
    ({"notebook_s3": ["s3://b/k.ipynb"]}, "'notebook_s3' must look like"),
    ({"notebook": "a.ipynb", "parameters": {"x": "\ud800"}}, "parameter 'x' contains U+D800"),
    ({"notebook": "a.ipynb", "parameters": {"x": {"deep": ["ok", "\udfff"]}}}, "contains U+DFFF"),
    ({"notebook": "a.ipynb", "parameters": {"x": float("nan")}}, "parameter 'x' is nan"),
    ({"notebook": "a.ipynb", "timeouts": {"cell_seconds": float("inf")}}, "'timeouts.cell_seconds' must be a positive"),
    ({"commands": ["echo a\x00b"]}, "command 1 contains a NUL character"),
    ({"commands": ["echo \ud800"]}, "command 1 contains U+D800"),
    ({"notebook": "a\x00.ipynb"}, "'notebook' contains a NUL character"),
])
def test_values_that_cannot_travel_are_refused_up_front(payload, expected):
    """Found by issue 9: these passed validation and failed after the app had started."""
    with pytest.raises(PayloadInvalid) as info:
        validate_payload(payload)
    assert expected in str(info.value)


def test_nul_in_a_parameter_value_is_fine():
    # it becomes a '\x00' escape in the injected Python source
    assert validate_payload({"notebook": "a.ipynb", "parameters": {"x": "a\x00b"}}).parameters == {"x": "a\x00b"}


def test_a_payload_too_large_for_the_state_is_refused_naming_the_limit():
    parameters = {f"p{i}": i for i in range(10_000)}  # ~148 KB: would ride in every state
    with pytest.raises(PayloadInvalid) as info:
        validate_payload({"notebook": "a.ipynb", "parameters": parameters})
    message = str(info.value)
    assert "64 KiB" in message and "256 KiB" in message
    assert len(message) < 1000
    validate_payload({"notebook": "a.ipynb", "parameters": {f"p{i}": i for i in range(2_000)}})


def test_a_long_list_of_problems_is_cut_short():
    with pytest.raises(PayloadInvalid) as info:
        validate_payload({"notebook": "a.ipynb", "parameters": {f"p{i}": float("nan") for i in range(500)}})
    assert "and 480 more problem(s)" in str(info.value)
    assert info.value.facts["problem_count"] == 500


def test_output_formats_default_to_the_notebook_and_may_add_html():
    assert validate_payload({"notebook": "a.ipynb"}).output_formats == ["notebook"]
    spec = validate_payload({"notebook": "a.ipynb", "output_formats": ["html", "notebook", "html"]})
    assert spec.output_formats == ["notebook", "html"]
    assert RunSpec.from_dict(spec.to_dict()).output_formats == ["notebook", "html"]


@pytest.mark.parametrize("formats, words", [
    (["html"], 'must include "notebook": the executed notebook is the run\'s record'),
    (["notebook", "pdf"], "unknown format(s) ['pdf']"),
    ("html", "must be a non-empty list"),
    ([], "must be a non-empty list"),
    ([["notebook"]], "unknown format(s)"),
])
def test_bad_output_formats_are_refused_before_anything_starts(formats, words):
    with pytest.raises(PayloadInvalid) as info:
        validate_payload({"notebook": "a.ipynb", "output_formats": formats})
    assert words in str(info.value)


def test_html_needs_a_notebook_to_render():
    with pytest.raises(PayloadInvalid, match="a commands-only run has none"):
        validate_payload({"commands": ["ls"], "output_formats": ["notebook", "html"]})


@pytest.mark.parametrize("name", ["class", "café", "my.var"])
def test_parameter_names_are_left_to_the_notebooks_language(name):
    """One check of names, by the notebook's language (studiorunner.translators), not a second one
    here: 'class' is no Python variable but an R one; 'café' is a Python identifier."""
    assert validate_payload({"notebook": "a.ipynb", "parameters": {name: 1}}).parameters == {name: 1}


@pytest.mark.parametrize("name, why", [
    ("", "must be a non-empty string"), ("a\ud800", "lone surrogate"),
    # by every translator's own rule (studiorunner.translators): refused before a batch starts its runs
    ("a-b", "not a variable name in any kernel language"), ("not an identifier", "in any kernel language")])
def test_parameter_names_no_language_can_take(name, why):
    with pytest.raises(PayloadInvalid, match=why):
        validate_payload({"notebook": "a.ipynb", "parameters": {name: 1}})


def test_html_report_asks_for_the_page_without_code_and_needs_the_page():
    spec = validate_payload({"notebook": "a.ipynb", "output_formats": ["notebook", "html"], "html_report": True})
    assert spec.html_report is True and RunSpec.from_dict(spec.to_dict()).html_report is True
    assert validate_payload({"notebook": "a.ipynb"}).html_report is False
    with pytest.raises(PayloadInvalid, match="add \"html\" to 'output_formats'"):
        validate_payload({"notebook": "a.ipynb", "html_report": True})
    with pytest.raises(PayloadInvalid, match="'html_report' must be true or false"):
        validate_payload({"notebook": "a.ipynb", "output_formats": ["notebook", "html"], "html_report": "yes"})
