"""The one target schema (studiorunner.config): what each type needs, named errors."""

from __future__ import annotations

import pytest

from studiorunner.catalog import TARGET_KINDS
from studiorunner.config import TargetConfig, TargetConfigError

SPACE = {"type": "studio-space", "domain_id": "d-abc123", "user_profile": "alice", "space_name": "lab"}


def test_every_type_round_trips_through_its_configuration_form():
    examples = {
        "studio-space": SPACE,
        "studio-classic": {"type": "studio-classic", "domain_id": "d-abc123", "user_profile": "alice",
                           "region": "eu-west-1"},
        "notebook-instance": {"type": "notebook-instance", "name": "my-instance"},
        "jupyter": {"type": "jupyter", "url": "https://jupyter.example.com/lab",
                    "token_secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jt-AbC"},
    }
    assert set(examples) == set(TARGET_KINDS)
    for kind, raw in examples.items():
        config = TargetConfig.from_dict("t", raw)
        assert config.type == kind
        assert config.to_dict() == raw
        assert TargetConfig.from_dict("t", config.to_dict()) == config


def test_a_jupyter_target_needs_no_token_secret():
    # A server started with --ServerApp.token='' (SageMaker Distribution's way) has no token.
    config = TargetConfig.from_dict("plain", {"type": "jupyter", "url": "http://127.0.0.1:8888/jupyterlab/default/"})
    assert config.token_secret_arn is None and config.url == "http://127.0.0.1:8888/jupyterlab/default"


@pytest.mark.parametrize("raw, key, words", [
    ({**SPACE, "type": "studio"}, "type", "must be one of"),
    ({k: v for k, v in SPACE.items() if k != "space_name"}, "space_name", "needs space_name"),
    ({**SPACE, "spacename": "lab"}, "spacename", "is not a key of a studio-space target"),
    ({**SPACE, "domain_id": "abc"}, "domain_id", "SageMaker domain id"),
    ({**SPACE, "region": "europe"}, "region", "region name"),
    ({**SPACE, "user_profile": 7}, "user_profile", "non-empty string"),
    ({"type": "jupyter", "url": "ftp://x"}, "url", "http(s)://"),
    ({"type": "jupyter", "url": "https://x", "token_secret_arn": "my-token"}, "token_secret_arn", "Secrets Manager"),
    ({"type": "notebook-instance", "name": "bad_name"}, "name", "SageMaker name"),
])
def test_a_bad_target_names_its_key(raw, key, words):
    with pytest.raises(TargetConfigError, match="target 't' key") as caught:
        TargetConfig.from_dict("t", raw)
    assert caught.value.key == key and words in caught.value.problem
    assert isinstance(caught.value, ValueError)


def test_target_names_stay_plain():
    with pytest.raises(TargetConfigError, match="1-63 letters"):
        TargetConfig.from_dict("a/b", SPACE)
