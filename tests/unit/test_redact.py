"""The one redaction helper: URLs the library builds, and free text (commands, their output)."""

from __future__ import annotations

import pytest

from studiorunner.redact import redact, safe_url, without_controls


def test_safe_url_keeps_scheme_host_port_and_path_only():
    assert safe_url("wss://u:pw@h.example:8443/api/kernels/k/channels?session_id=s&token=t#f") == \
        "wss://h.example:8443/api/kernels/k/channels"
    assert safe_url("https://h/auth?token=abc") == "https://h/auth"


@pytest.mark.parametrize("text, shown", [
    ("see https://h/p?token=abc&x=1 now", "see https://h/p?… now"),
    ("-H 'Authorization: token abc123'", "-H 'Authorization: …'"),
    ("git clone https://bob:ghp_abc@github.com/x/y.git", "git clone https://…@github.com/x/y.git"),
    ("psql postgres://app:pw@db:5432/x", "psql postgres://…@db:5432/x"),
    ("export API_TOKEN=abc123; run", "export API_TOKEN=…; run"),
    ("AWS_SECRET_ACCESS_KEY='a b' tool", "AWS_SECRET_ACCESS_KEY='…' tool"),
    ('db_password="hunter2"', 'db_password="…"'),
    ("tool --password=hunter2 --user=me", "tool --password=… --user=me"),
    ("client_secret: s3cr3t", "client_secret: …"),
    # what is not a secret stays
    ("PATH=/usr/bin PWD=/home/me author=ann user@host", "PATH=/usr/bin PWD=/home/me author=ann user@host"),
])
def test_redact(text, shown):
    assert redact(text) == shown


def test_without_controls_shows_escape_bytes_and_keeps_tabs_and_newlines():
    assert without_controls("a\x1b[31mb\tc\nd\x07\x9b") == "a\\x1b[31mb\tc\nd\\x07\\x9b"


# ---- log records: what botocore and urllib3 print at DEBUG (issue 20 fault 7) --------------

def test_a_bytes_header_value_is_redacted_whole_not_just_its_b():
    from studiorunner.redact import redact_secrets

    line = "Sending http request: <AWSPreparedRequest headers={'X-Amz-Security-Token': b'IQoJb3JpZ2luX2VjEJr//abc+def=='}>"
    assert "IQoJ" not in redact_secrets(line) and "<redacted>" in redact_secrets(line)
    canonical = "CanonicalRequest:\nPUT\n/\n\nhost:s3.amazonaws.com\nx-amz-security-token:IQoJb3JpZ2luX2VjEJr\n"
    assert "IQoJ" not in redact_secrets(canonical)


def test_secrets_managers_answer_at_debug_keeps_no_secret_string():
    from studiorunner.redact import redact_secrets

    body = ('Response body:\nb\'{"ARN":"arn:aws:secretsmanager:eu-west-1:1:secret:lab","Name":"lab",'
            '"SecretString":"{\\\\"token\\\\": \\\\"s3cr3t-t0ken-value\\\\"}","VersionId":"v1"}\'')
    assert "s3cr3t" not in redact_secrets(body)
    assert "arn:aws:secretsmanager" in redact_secrets(body)  # the rest of the line stays readable


def test_a_remembered_secret_is_redacted_in_any_logger_message_and_extra(caplog):
    import logging

    from studiorunner.redact import quiet_secrets_in_logs, remember_secret

    remember_secret("plain-token-no-pattern-knows-0042")
    quiet_secrets_in_logs()
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("some.library.nobody.filtered").warning(
            "got %s", "plain-token-no-pattern-knows-0042", extra={"url": "x/plain-token-no-pattern-knows-0042"})
    record = caplog.records[-1]
    assert "plain-token" not in record.getMessage() and "plain-token" not in record.url
