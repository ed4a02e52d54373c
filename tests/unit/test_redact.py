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
